"""HTTP/1.1 behaviour of the proxy: framing, keep-alive, pipelining, bodies,
malformed requests and upstream failures."""
import http.client
import json
import os
import signal
import socket
import threading

import pytest

from conftest import EchoHandler, raw_request, read_head, recv_until_close, wait_for

BASE = """
workers: 1
listeners:
  - name: public
    address: 127.0.0.1:{port}
access_log: { path: none }
timeouts: { client_header: %s, upstream_connect: 2s, upstream_response: %s }
upstreams:
  app:
    servers:
      - { address: 127.0.0.1:%d }
routes:
  - name: app
    match: { path_prefix: / }
    upstream: app
"""


def conf(port, client_header="10s", upstream_response="30s"):
    return BASE % (client_header, upstream_response, port)


def status_of(raw):
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else None


MALFORMED = {
    "cl_and_te": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "duplicate_cl": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "conflicting_cl": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "cl_not_digits": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc",
    "cl_overflow": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    "space_before_colon": b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    "obs_fold": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
    "bare_cr": b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
    "nul_in_value": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n",
    "ctl_in_name": b"GET / HTTP/1.1\r\nHost: a\r\nX\x01A: b\r\n\r\n",
    "empty_name": b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n",
    "name_not_token": b"GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n",
    "missing_host": b"GET / HTTP/1.1\r\n\r\n",
    "two_hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "fragment": b"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n",
    "bad_version": b"GET / HTTP/1.7\r\nHost: a\r\n\r\n",
    "bad_chunk_size": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_request_gets_400_closes_and_never_reaches_backend(name, junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port))
    out = raw_request(j.port, MALFORMED[name])
    assert status_of(out) == 400, out
    assert b"Connection: close" in out
    assert b.received == []


def test_long_request_line_gets_414(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port))
    out = raw_request(j.port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status_of(out) == 414 and b.received == []


def test_large_header_section_gets_431(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port))
    hdrs = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(40))
    out = raw_request(j.port, b"GET / HTTP/1.1\r\nHost: a\r\n" + hdrs + b"\r\n")
    assert status_of(out) == 431 and b.received == []


def test_unknown_transfer_coding_gets_501(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port))
    out = raw_request(j.port, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
    assert status_of(out) == 501 and b.received == []


def test_keep_alive_reuses_client_and_upstream_connections(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port))
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=10)
    ports = set()
    for i in range(5):
        c.request("GET", "/k/%d" % i)
        r = c.getresponse()
        r.read()
        assert r.status == 200
    c.close()
    assert len(b.received) == 5
    # one upstream connection carried all five (the backend saw one peer port)
    assert len(b.peer_ports) == 1


def test_pipelined_requests_are_answered_in_order(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port))
    reqs = b"".join(b"GET /p/%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(5))
    reqs += b"GET /p/last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    out = raw_request(j.port, reqs)
    paths = [json.loads(part.split(b"\r\n\r\n", 1)[1].split(b"HTTP/1.1")[0])["path"]
             for part in out.split(b"HTTP/1.1 200 OK\r\n")[1:]]
    assert paths == ["/p/0", "/p/1", "/p/2", "/p/3", "/p/4", "/p/last"]


def test_chunked_request_body_is_forwarded(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port))
    body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    out = raw_request(j.port, b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                              b"Connection: close\r\n\r\n" + body)
    rec = json.loads(out.split(b"\r\n\r\n", 1)[1])
    assert rec["body"] == "hello world"


class ChunkedHandler(EchoHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for part in (b"abc", b"defgh", b"i" * 5000):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        self.wfile.write(b"0\r\n\r\n")


def test_chunked_response_is_relayed(junction, backends):
    (b,) = backends(1, handler=ChunkedHandler)
    j = junction(conf(b.port))
    r, data = fetch(j.port, "/")
    assert r.status == 200 and data == b"abcdefgh" + b"i" * 5000
    assert r.getheader("Transfer-Encoding") == "chunked"


def fetch(port, path, method="GET", body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def close_delimited(server, conn):
    read_head(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
    conn.close()


def test_close_delimited_response_is_relayed_chunked(junction, raw_server):
    s = raw_server(close_delimited)
    j = junction(conf(s.port))
    r, data = fetch(j.port, "/")
    assert r.status == 200 and data == b"until the end"


class HeadNoBody(EchoHandler):
    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "1234")
        self.end_headers()

    def do_GET(self):
        self.send_response(204)
        self.end_headers()


def test_head_and_204_have_no_body(junction, backends):
    (b,) = backends(1, handler=HeadNoBody)
    j = junction(conf(b.port))
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=10)
    c.request("HEAD", "/")
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Length") == "1234" and r.read() == b""
    c.request("GET", "/")
    r = c.getresponse()
    assert r.status == 204 and r.read() == b""
    c.request("GET", "/")  # the connection is still usable: framing was right
    assert c.getresponse().status == 204
    c.close()


def test_expect_100_continue_gets_interim_response(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port))
    s = socket.create_connection(("127.0.0.1", j.port), timeout=10)
    s.sendall(b"POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    head = s.recv(1024)
    assert head.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    s.sendall(b"hello")
    out = head[25:]
    while b"}" not in out:
        out += s.recv(65536)
    s.close()
    assert b"200 OK" in out and b'"body_len": 5' in out


def test_upstream_refused_gives_502_json(junction):
    import conftest
    port = conftest.free_port()
    j = junction(conf(port), expect_errors=True)
    r, data = fetch(j.port, "/x")
    assert r.status == 502
    assert json.loads(data)["request_id"] == r.getheader("X-Request-Id")


def garbage(server, conn):
    read_head(conn)
    conn.sendall(b"this is not http\r\n\r\n")
    conn.close()


def test_upstream_garbage_gives_502(junction, raw_server):
    s = raw_server(garbage)
    j = junction(conf(s.port), expect_errors=True)
    assert fetch(j.port, "/")[0].status == 502


def reset(server, conn):
    read_head(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()


def test_upstream_reset_gives_502(junction, raw_server):
    s = raw_server(reset)
    j = junction(conf(s.port), expect_errors=True)
    assert fetch(j.port, "/")[0].status == 502


def silent(server, conn):
    read_head(conn)
    server.stop.wait()


def test_slow_upstream_gives_504(junction, raw_server):
    s = raw_server(silent)
    j = junction(conf(s.port, upstream_response="300ms"), expect_errors=True)
    r, data = fetch(j.port, "/")
    assert r.status == 504 and json.loads(data)["error"]


def test_slowloris_gets_408_and_close(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port, client_header="300ms"))
    s = socket.create_connection(("127.0.0.1", j.port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")  # never finished
    out = recv_until_close(s)
    assert status_of(out) == 408 and b.received == []


class BigHandler(EchoHandler):
    def do_GET(self):
        n = int(self.path.rsplit("/", 1)[1])
        self.send_response(200)
        self.send_header("Content-Length", str(n))
        self.end_headers()
        block = b"x" * 65536
        left = n
        while left:
            k = min(left, len(block))
            self.wfile.write(block[:k])
            left -= k

    def do_POST(self):
        n = int(self.headers["Content-Length"])
        got = 0
        while got < n:
            got += len(self.rfile.read(min(65536, n - got)))
        out = str(got).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


SIZE = 256 * 1024 * 1024 if not os.environ.get("JUNCTION_SANITIZED") else 64 * 1024 * 1024


def test_large_download_streams_with_flat_memory(junction, backends):
    (b,) = backends(1, handler=BigHandler)
    j = junction(conf(b.port))
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=60)
    c.request("GET", "/big/%d" % SIZE)
    r = c.getresponse()
    got, peak = 0, 0
    while True:
        chunk = r.read(1 << 20)
        if not chunk:
            break
        got += len(chunk)
        peak = max(peak, rss_kb(j.proc.pid))
    c.close()
    assert got == SIZE
    assert peak < 64 * 1024  # far below the body size: nothing is buffered whole


def test_large_upload_streams_with_flat_memory(junction, backends):
    (b,) = backends(1, handler=BigHandler)
    j = junction(conf(b.port))
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=60)
    c.putrequest("POST", "/up")
    c.putheader("Content-Length", str(SIZE))
    c.endheaders()
    block = b"y" * (1 << 20)
    peak = 0
    for _ in range(SIZE // len(block)):
        c.send(block)
        peak = max(peak, rss_kb(j.proc.pid))
    r = c.getresponse()
    assert r.status == 200 and int(r.read()) == SIZE
    c.close()
    assert peak < 64 * 1024


class SlowOnce(EchoHandler):
    gate = None

    def do_GET(self):
        SlowOnce.gate.wait(20)
        EchoHandler.handle_any(self)


def test_sigterm_finishes_requests_in_flight(junction, backends):
    SlowOnce.gate = threading.Event()
    (b,) = backends(1, handler=SlowOnce)
    j = junction(conf(b.port))
    result = {}

    def client():
        result["r"] = fetch(j.port, "/slow")

    t = threading.Thread(target=client)
    t.start()
    wait_for(lambda: b.active > 0, what="request at the backend")
    j.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: not port_accepting(j.port), what="listener closed")
    SlowOnce.gate.set()
    t.join(30)
    assert result["r"][0].status == 200
    assert j.proc.wait(30) == 0


def port_accepting(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def test_stalled_request_body_gets_408(junction, backends):
    (b,) = backends(1)
    j = junction((BASE % ("10s", "30s", b.port)).replace(
        "timeouts: {", "timeouts: { client_body: 300ms,"))
    s = socket.create_connection(("127.0.0.1", j.port), timeout=20)
    s.sendall(b"POST /slow-body HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhalf")
    out = recv_until_close(s)
    assert status_of(out) == 408


def test_sigint_also_stops_gracefully(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port))
    assert fetch(j.port, "/")[0].status == 200
    assert j.stop(signal.SIGINT) == 0
