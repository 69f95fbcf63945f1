"""HTTP/2 on the client side (docs/http2.md) through the real binary: curl
over TLS (ALPN) and h2c with prior knowledge, Debian's python3-h2 for
multiplexing, flow control and bodies, frames written by hand for the
attacks (rapid reset, CONTINUATION flood, oversize header lists, too many
streams, PING floods), h2load for volume, and graceful GOAWAY."""
import hashlib
import http.server
import os
import signal
import socket
import subprocess
import threading

import pytest

from conftest import Backend, EchoHandler, wait_for
from h2client import (ContinuationFrame, GoAwayFrame, H2Client, HeadersFrame, PingFrame, RawH2,
                      RstStreamFrame, tls_context)
from test_tls import certs  # noqa: F401  (the module's CA and leaves)

CONF = """
workers: 1
listeners:
  - name: plain
    address: 127.0.0.1:{port0}
  - name: tls
    address: 127.0.0.1:{port1}
    tls:
      certificates:
        - { cert: %(dir)s/a.crt, key: %(dir)s/a.key }
access_log: { path: stdout }
timeouts: { drain: 5s%(timeouts)s }
%(top)s
upstreams:
  app:
    servers:
      - { address: 127.0.0.1:%(backend)d }
%(more_up)s
routes:
%(more_routes)s
  - { name: local, match: { path: /local }, respond: { status: 200, body: "local\\n" } }
  - { name: app, match: { path_prefix: / }, upstream: app }
"""

ENHANCE_YOUR_CALM = 11
REFUSED_STREAM = 7
PROTOCOL_ERROR = 1


class BodyEcho(EchoHandler):
    """Answers with the request body (chunked or sized) as it came, and its
    SHA-256 in a header."""

    def handle_any(self):
        body = self.read_body()
        if self.path.startswith("/big/"):
            body = os.urandom(int(self.path.split("/")[2]))
        self.server.received.append({"path": self.path, "headers": dict(self.headers.items()),
                                     "body_len": len(body)})
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Sha256", hashlib.sha256(body).hexdigest())
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = handle_any


@pytest.fixture
def h2j(junction, backends, certs):  # noqa: F811
    made = []

    def start(timeouts="", top="", handler=EchoHandler, more_up="", more_routes=""):
        b = Backend("b0", handler)
        made.append(b)
        conf = CONF % {"dir": certs, "timeouts": timeouts, "top": top, "backend": b.port,
                       "more_up": more_up, "more_routes": more_routes}
        j = junction(conf, nports=2)
        j.backend = b
        j.plain, j.tls = j.ports
        j.ctx = tls_context(f"{certs}/ca.crt")
        return j
    yield start
    for b in made:
        b.close()


def curl(*args):
    return subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, timeout=60)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---- clients that behave ----

def test_curl_http2_over_tls_by_alpn(h2j, certs):  # noqa: F811
    j = h2j()
    p = curl("--http2", "--cacert", f"{certs}/ca.crt", "--resolve", f"a.test:{j.tls}:127.0.0.1",
             "-w", "\n%{http_version}", f"https://a.test:{j.tls}/hello?x=1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.endswith("\n2")
    rec = j.backend.received[-1]
    assert rec["path"] == "/hello?x=1"
    headers = {k.lower(): v for k, v in rec["headers"]}
    assert headers["host"] == f"a.test:{j.tls}"
    assert headers["x-forwarded-proto"] == "https"


def test_curl_http11_still_works_on_the_tls_listener(h2j, certs):  # noqa: F811
    j = h2j()
    p = curl("--http1.1", "--cacert", f"{certs}/ca.crt", "--resolve",
             f"a.test:{j.tls}:127.0.0.1", "-w", "\n%{http_version}", f"https://a.test:{j.tls}/x")
    assert p.returncode == 0, p.stderr
    assert p.stdout.endswith("\n1.1")


def test_alpn_offers_h2_first_and_http11_when_h2_is_off(h2j, certs):  # noqa: F811
    def alpn(port):
        p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-alpn",
                            "http/1.1,h2", "-servername", "a.test"], input="",
                           capture_output=True, text=True, timeout=20)
        return [l for l in p.stdout.splitlines() if l.startswith("ALPN")]
    assert alpn(h2j().tls) == ["ALPN protocol: h2"]
    assert alpn(h2j(top="http2: { enabled: false }").tls) == ["ALPN protocol: http/1.1"]


def test_h2c_with_prior_knowledge_and_http11_on_the_same_listener(h2j):
    j = h2j()
    p = curl("--http2-prior-knowledge", "-w", "\n%{http_version}", f"http://127.0.0.1:{j.plain}/a")
    assert p.returncode == 0, p.stderr
    assert p.stdout.endswith("\n2")
    p = curl("-w", "\n%{http_version}", f"http://127.0.0.1:{j.plain}/b")
    assert p.returncode == 0, p.stderr
    assert p.stdout.endswith("\n1.1")
    assert [r["path"] for r in j.backend.received] == ["/a", "/b"]


def test_h2c_is_refused_when_http2_is_off(h2j):
    j = h2j(top="http2: { enabled: false }")
    p = curl("--http2-prior-knowledge", f"http://127.0.0.1:{j.plain}/a")
    assert p.returncode != 0
    assert j.backend.received == []


def test_fifty_streams_multiplexed_on_one_connection(h2j):
    j = h2j()
    c = H2Client(j.plain)
    sids = [c.request(path=f"/s{i}") for i in range(50)]
    c.pump(lambda: all(c.responses[s].done for s in sids))
    for i, s in enumerate(sids):
        r = c.responses[s]
        assert r.status == 200
        assert f'"path": "/s{i}"' in r.data.decode()
    assert len(j.backend.received) == 50
    c.close()


def test_request_headers_are_mapped_for_http11(h2j):
    j = h2j()
    c = H2Client(j.plain)
    r = c.get("/h", headers=[("cookie", "a=1"), ("x-thing", "v"), ("cookie", "b=2")])
    assert r.status == 200
    headers = j.backend.received[-1]["headers"]
    names = [k.lower() for k, _ in headers]
    values = {k.lower(): v for k, v in headers}
    # Cookie crumbs joined into one field, :authority became Host.
    assert names.count("cookie") == 1 and values["cookie"] == "a=1; b=2"
    assert values["host"] == f"127.0.0.1:{j.plain}"
    assert values["x-thing"] == "v"
    assert "x-request-id" in values and "x-forwarded-for" in values
    c.close()


def test_response_is_lower_case_without_connection_fields(h2j):
    j = h2j()
    c = H2Client(j.plain)
    r = c.get("/resp")
    assert r.status == 200
    assert r.headers["x-backend"] == "b0"
    assert "connection" not in r.headers and "keep-alive" not in r.headers
    assert r.headers["content-length"] == str(len(r.data))
    c.close()


def test_local_responses_and_errors_over_h2(h2j):
    j = h2j()
    c = H2Client(j.plain)
    r = c.get("/local")
    assert r.status == 200 and bytes(r.data) == b"local\n"
    r = c.get("/../x%00")
    assert r.status == 400 and b"request_id" in r.data
    r = c.get("/local", method="HEAD")
    assert r.status == 200 and r.data == b"" and r.headers["content-length"] == "6"
    c.close()


def test_upload_and_download_of_4mib_are_byte_exact(h2j):
    j = h2j(handler=BodyEcho)
    c = H2Client(j.tls, tls_ctx=j.ctx)
    body = os.urandom(4 << 20)
    r = c.get("/up", method="POST", body=body)
    assert r.status == 200
    assert hashlib.sha256(bytes(r.data)).digest() == hashlib.sha256(body).digest()
    # Without a content-length the body is sent chunked to the HTTP/1.1 upstream.
    assert j.backend.received[-1]["headers"].get("Transfer-Encoding") == "chunked"
    r = c.get("/up2", method="POST", body=b"abc", headers=[("content-length", "3")])
    assert r.status == 200 and bytes(r.data) == b"abc"
    assert j.backend.received[-1]["headers"].get("Content-Length") == "3"
    c.close()


def test_a_slow_reader_with_a_small_window_gets_the_whole_response(h2j):
    j = h2j(handler=BodyEcho)
    c = H2Client(j.plain, window=16384)
    c.read_slowly = True
    r = c.get("/big/3000000")
    assert r.status == 200
    assert len(r.data) == 3000000
    assert hashlib.sha256(bytes(r.data)).hexdigest() == r.headers["x-sha256"]
    c.close()


def test_curl_upload_over_h2c(h2j, tmp_path):
    j = h2j(handler=BodyEcho)
    f = tmp_path / "up.bin"
    data = os.urandom(5 << 20)
    f.write_bytes(data)
    p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--data-binary", f"@{f}",
                        "-o", str(tmp_path / "down.bin"), f"http://127.0.0.1:{j.plain}/u"],
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "down.bin").read_bytes() == data


def test_h2load_100000_requests_none_failing(h2j):
    j = h2j()
    n = 100000
    p = subprocess.run(["h2load", "-n", str(n), "-c", "10", "-m", "10",
                        f"http://127.0.0.1:{j.plain}/local"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"requests: {n} total, {n} started, {n} done, {n} succeeded, 0 failed" in p.stdout, \
        p.stdout


def test_h2load_over_tls_to_the_upstream(h2j):
    j = h2j()
    n = 2000
    p = subprocess.run(["h2load", "-n", str(n), "-c", "4", "-m", "10",
                        f"https://127.0.0.1:{j.tls}/up"],
                       capture_output=True, text=True, timeout=300)
    assert f"{n} succeeded, 0 failed" in p.stdout, p.stdout + p.stderr
    assert len(j.backend.received) == n


def test_access_log_has_one_line_per_stream(h2j):
    j = h2j()
    c = H2Client(j.plain)
    c.get("/one")
    c.get("/local")
    c.close()
    wait_for(lambda: len(j.access_lines()) >= 2)
    lines = j.access_lines()
    assert [(l["path"], l["status"]) for l in lines] == [("/one", 200), ("/local", 200)]


# ---- timeouts and shutdown ----

def test_an_idle_connection_gets_goaway_and_is_closed(h2j):
    j = h2j(timeouts=", client_idle: 300ms")
    c = H2Client(j.plain)
    assert c.get("/local").status == 200
    c.pump(lambda: c.closed)
    assert c.goaway is not None and c.goaway.error_code == 0


class Slow(EchoHandler):
    gate = threading.Event()

    def handle_any(self):
        self.server.held = getattr(self.server, "held", 0) + 1
        Slow.gate.wait(30)
        EchoHandler.handle_any(self)

    do_GET = handle_any


def test_shutdown_sends_goaway_and_lets_streams_finish(h2j):
    Slow.gate.clear()
    j = h2j(handler=Slow)
    raw = RawH2(j.plain)  # python3-h2 stops reading streams once it sees GOAWAY
    raw.send(raw.headers(1, path="/held"))
    wait_for(lambda: getattr(j.backend, "held", 0) == 1)
    j.proc.send_signal(signal.SIGTERM)
    raw.read_until(lambda fs: raw.goaway() is not None)
    assert raw.goaway().error_code == 0
    assert raw.goaway().last_stream_id == 1
    Slow.gate.set()
    raw.read_until(lambda fs: any(f.stream_id == 1 and "END_STREAM" in f.flags for f in fs))
    heads = [f for f in raw.frames if isinstance(f, HeadersFrame) and f.stream_id == 1]
    assert heads and raw.dec.decode(heads[0].data)[0] == (":status", "200")
    raw.read_until(lambda fs: raw.closed)
    j.proc.wait(timeout=30)


def test_an_upstream_that_dies_mid_response_resets_only_its_stream(h2j, raw_server):
    def behave(srv, conn):
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"p" * 50000)
        conn.close()
    srv = raw_server(behave)
    j = h2j(more_up=f"  dies:\n    servers: [ {{ address: 127.0.0.1:{srv.port} }} ]\n",
            more_routes="  - { name: dies, match: { path: /dies }, upstream: dies }\n")
    c = H2Client(j.plain)
    bad = c.request(path="/dies")
    good = c.request(path="/fine")
    c.pump(lambda: c.responses[bad].done and c.responses[good].done)
    assert c.responses[bad].status == 200 and c.responses[bad].reset is not None
    assert c.responses[good].status == 200 and c.responses[good].ended
    assert c.get("/again").status == 200  # the connection goes on
    c.close()


# ---- attacks ----

def test_rapid_reset_gets_goaway_and_others_are_served(h2j):
    j = h2j()
    before = rss_kib(j.proc.pid)
    for _ in range(3):
        raw = RawH2(j.plain)
        frames = []
        for i in range(1000):
            sid = 1 + 2 * i
            frames += [raw.headers(sid), RstStreamFrame(sid, error_code=8)]
        raw.send(*frames)
        raw.read_until(lambda fs: any(isinstance(f, GoAwayFrame) for f in fs))
        g = raw.goaway()
        assert g.error_code != 0
        assert g.last_stream_id < 1999
        raw.read_until(lambda fs: False if not raw.closed else True)
        raw.close()
    assert j.proc.poll() is None
    c = H2Client(j.plain)
    assert c.get("/after").status == 200
    c.close()
    assert rss_kib(j.proc.pid) < before + 64 * 1024


def test_continuation_flood_gets_goaway(h2j):
    j = h2j()
    before = rss_kib(j.proc.pid)
    raw = RawH2(j.plain)
    block = raw.headers_block("/flood")
    first = HeadersFrame(1, block[:5])
    frames = [first] + [ContinuationFrame(1, b"") for _ in range(100)]
    raw.send(*frames)
    raw.read_until(lambda fs: any(isinstance(f, GoAwayFrame) for f in fs) or raw.closed)
    assert raw.goaway() is not None
    raw.read_until(lambda fs: raw.closed)
    assert j.backend.received == []
    c = H2Client(j.plain)
    assert c.get("/after").status == 200
    c.close()
    assert rss_kib(j.proc.pid) < before + 64 * 1024


def test_oversize_header_list_gets_431_and_the_connection_goes_on(h2j):
    j = h2j()
    c = H2Client(j.plain)
    big = [(f"x-big-{i}", "v" * 4000) for i in range(20)]  # 80 kB decoded > 64 kB
    r = c.get("/big", headers=big)
    assert r.status == 431
    assert c.get("/small").status == 200
    assert [r["path"] for r in j.backend.received] == ["/small"]
    c.close()


def test_an_hpack_bomb_is_stopped_while_decoding(h2j):
    j = h2j()
    raw = RawH2(j.plain)
    # One 4 kB field in the dynamic table, then 2000 one-byte references to it.
    raw.enc.header_table_size = 4096
    block = raw.enc.encode([(":method", "GET"), (":scheme", "http"), (":path", "/bomb"),
                            (":authority", "a.test"), ("x-bomb", "b" * 3000)])
    ref = raw.enc.encode([("x-bomb", "b" * 3000)])
    assert len(ref) <= 2
    f = HeadersFrame(1, block + ref * 2000)
    f.flags.add("END_HEADERS")
    f.flags.add("END_STREAM")
    raw.send(f)
    raw.read_until(lambda fs: any(x.stream_id == 1 and isinstance(x, (HeadersFrame,
                                                                          RstStreamFrame))
                                  for x in fs) or raw.goaway() is not None)
    assert j.backend.received == []
    raw.close()
    assert j.proc.poll() is None
    c = H2Client(j.plain)
    assert c.get("/after").status == 200
    c.close()


def test_streams_beyond_the_limit_are_refused(h2j):
    j = h2j(top="http2: { max_concurrent_streams: 10 }")
    raw = RawH2(j.plain)
    # Eleven requests whose bodies never end: all stay open.
    raw.send(*[raw.headers(1 + 2 * i, end_stream=False, path="/local") for i in range(11)])
    raw.read_until(lambda fs: 21 in raw.resets())
    assert raw.resets()[21] in (REFUSED_STREAM, PROTOCOL_ERROR)
    # One that keeps going beyond the limit gets GOAWAY (nghttp2 makes it a
    # connection error once our SETTINGS are acknowledged; Junction counts
    # refusals too, for a client that never acknowledges them).
    raw.send(*[raw.headers(23 + 2 * i, end_stream=False, path="/local") for i in range(20)])
    raw.read_until(lambda fs: raw.goaway() is not None or raw.closed)
    assert raw.goaway() is not None
    assert raw.goaway().error_code in (PROTOCOL_ERROR, ENHANCE_YOUR_CALM)
    raw.close()
    c = H2Client(j.plain)
    assert c.get("/after").status == 200
    c.close()


def test_ping_flood_gets_goaway(h2j):
    j = h2j(top="http2: { max_control_frames: 100 }")
    raw = RawH2(j.plain)
    raw.send(*[PingFrame(0, opaque_data=b"12345678") for _ in range(5000)])
    raw.read_until(lambda fs: raw.goaway() is not None or raw.closed)
    g = raw.goaway()
    assert g is not None and g.error_code == ENHANCE_YOUR_CALM
    raw.close()
    assert j.proc.poll() is None
    c = H2Client(j.plain)
    assert c.get("/after").status == 200
    c.close()


def test_garbage_after_the_preface_closes_only_that_connection(h2j):
    j = h2j()
    raw = RawH2(j.plain)
    raw.sock.sendall(b"\x00\x00\x04\x99\xff\x00\x00\x00\x01junk" * 10 + os.urandom(1000))
    raw.read_until(lambda fs: raw.closed)
    assert j.proc.poll() is None
    c = H2Client(j.plain)
    assert c.get("/after").status == 200
    c.close()


# ---- found in review ----

def test_reset_uploads_give_the_connection_window_back(h2j):
    """Bodies of queued streams wait in Junction; a client that resets such
    streams must get their bytes back as connection window, or the
    connection's uploads stall for good."""
    Slow.gate.clear()
    held = Backend("held", Slow)
    try:
        j = h2j(more_up="  held:\n    servers: [ { address: 127.0.0.1:%d } ]\n"
                        "    limits: { max_connections: 1, max_pending: 100, queue_timeout: 60s }\n"
                % held.port,
                more_routes="  - { name: held, match: { path_prefix: /held }, upstream: held }\n")
        c = H2Client(j.plain)
        first = c.request("GET", "/held/first")  # takes the only connection
        wait_for(lambda: getattr(held, "held", 0) == 1)
        for i in range(30):  # 30 x 60 kB > the 1 MiB connection window
            sid = c.conn.get_next_available_stream_id()
            c.conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"),
                                      (":authority", c.authority), (":path", "/held/q")])
            for _ in range(4):
                c.conn.send_data(sid, b"z" * 15000)
            c.conn.reset_stream(sid)
            c.flush()
            c.pump(lambda: c.conn.outbound_flow_control_window >= 60000)
        r = c.get("/local", method="POST", body=b"y" * 100000)
        assert r.status == 200
        Slow.gate.set()
        c.pump(lambda: c.responses[first].done)
        c.close()
    finally:
        Slow.gate.set()
        held.close()


def test_expect_100_continue_over_h2_keeps_the_framing(h2j):
    j = h2j()
    c = H2Client(j.plain)
    r = c.get("/e", method="POST", headers=[("expect", "100-continue")], body=b"a" * 1000)
    assert r.status == 200 and r.interim == ["100"]
    assert c.get("/after").status == 200
    c.close()


def test_a_client_that_never_opens_its_window_is_closed(h2j):
    j = h2j(timeouts=", client_body: 300ms")
    c = H2Client(j.plain, window=0)
    sids = [c.request("GET", "/local") for _ in range(5)]
    c.pump(lambda: c.closed)
    assert all(c.responses[s].headers is not None for s in sids)
    assert all(not c.responses[s].ended for s in sids)


def test_a_partial_preface_is_timed_out_like_a_slow_header(h2j):
    j = h2j(timeouts=", client_header: 300ms")
    s = socket.create_connection(("127.0.0.1", j.plain), timeout=20)
    s.sendall(b"PRI * HTT")
    got = b""
    while True:  # closed after client_header, not client_idle (60s)
        data = s.recv(4096)
        if not data:
            break
        got += data
    assert got.startswith(b"HTTP/1.1 408 ")
    s.close()


def test_trailers_of_a_chunked_http11_response_reach_an_http2_client(h2j, raw_server):
    def behave(srv, conn):
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n0\r\nX-Sum: 42\r\nGrpc-Status: 0\r\n\r\n")
    srv = raw_server(behave)
    j = h2j(more_up=f"  trail:\n    servers: [ {{ address: 127.0.0.1:{srv.port} }} ]\n",
            more_routes="  - { name: trail, match: { path: /trail }, upstream: trail }\n")
    c = H2Client(j.plain)
    r = c.get("/trail")
    assert r.status == 200 and bytes(r.data) == b"hello"
    assert r.trailers == {"x-sum": "42", "grpc-status": "0"}
    c.close()
