"""HTTP/2 to upstreams (protocol: h2c) and gRPC through the real binary:
HTTP/1.1 clients translated to an h2c server (python3-h2), HTTP/2 clients
with trailers carried, gRPC unary and streaming calls with Debian's
python3-grpcio on both sides, error statuses in trailers, one multiplexed
upstream connection, and the configuration checks."""
import http.client
import json
import os
import subprocess
from concurrent import futures

import grpc
import pytest

from conftest import BIN
from h2client import H2Backend, H2Client, Response, tls_context
from test_tls import certs  # noqa: F401

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
access_log: { path: none }
upstreams:
  h2:
    protocol: h2c
    servers:
      - { address: 127.0.0.1:%(port)d }
routes:
  - { name: all, match: { path_prefix: / }, upstream: h2 }
"""


@pytest.fixture
def h2up(junction, certs):  # noqa: F811
    made = []

    def start(port=None):
        b = None
        if port is None:
            b = H2Backend()
            made.append(b)
            port = b.port
        j = junction(CONF % {"dir": certs, "port": port}, nports=2)
        j.backend = b
        j.plain, j.tls = j.ports
        j.ctx = tls_context(f"{certs}/ca.crt")
        return j
    yield start
    for b in made:
        b.close()


def test_http11_client_to_h2c_upstream(h2up):
    j = h2up()
    c = http.client.HTTPConnection("127.0.0.1", j.plain, timeout=20)
    for i in range(3):
        c.request("GET", f"/a/{i}?q=1", headers={"Host": "svc.test", "X-Thing": "v"})
        r = c.getresponse()
        rec = json.loads(r.read())
        assert r.status == 200
        assert r.getheader("X-Backend") == "h2"
        assert rec["method"] == "GET" and rec["path"] == f"/a/{i}?q=1"
        assert rec["authority"] == "svc.test"
        h = rec["headers"]
        assert h["x-thing"] == "v" and "x-forwarded-for" in h and "x-request-id" in h
        assert "host" not in h and "connection" not in h
    assert j.backend.connections == 1  # one multiplexed connection, reused
    c.close()


def test_http11_bodies_both_ways_are_byte_exact(h2up):
    j = h2up()
    body = os.urandom(1 << 20)
    c = http.client.HTTPConnection("127.0.0.1", j.plain, timeout=60)
    c.request("POST", "/echo", body=body)  # Content-Length
    r = c.getresponse()
    assert r.status == 200 and r.read() == body
    assert j.backend.received[-1]["headers"]["content-length"] == str(len(body))

    def chunks():
        for i in range(0, len(body), 100000):
            yield body[i:i + 100000]
    c.request("PUT", "/echo", body=chunks(), encode_chunked=True)
    r = c.getresponse()
    assert r.status == 200 and r.read() == body
    assert "content-length" not in j.backend.received[-1]["headers"]
    c.close()


def test_http2_client_gets_the_upstream_trailers(h2up):
    j = h2up()
    c = H2Client(j.plain)
    r = c.get("/trailers")
    assert r.status == 200
    assert r.trailers == {"x-checksum": "done", "x-count": "1", "grpc-status": "0"}
    assert json.loads(bytes(r.data))["path"] == "/trailers"
    c.close()


def test_request_trailers_reach_an_http2_upstream(h2up):
    j = h2up()
    c = H2Client(j.plain)
    sid = c.conn.get_next_available_stream_id()
    c.conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"),
                              (":authority", c.authority), (":path", "/t"), ("te", "trailers")])
    c.conn.send_data(sid, b"body")
    c.conn.send_headers(sid, [("x-sum", "42")], end_stream=True)
    c.responses[sid] = Response()
    c.flush()
    c.pump(lambda: c.responses[sid].done)
    assert c.responses[sid].status == 200
    rec = j.backend.received[-1]
    assert rec["body_len"] == 4 and rec["trailers"] == {"x-sum": "42"}
    c.close()


def test_fifty_streams_share_one_upstream_connection(h2up):
    j = h2up()
    c = H2Client(j.tls, tls_ctx=j.ctx)
    sids = [c.request(path=f"/m{i}") for i in range(50)]
    c.pump(lambda: all(c.responses[s].done for s in sids))
    assert all(c.responses[s].status == 200 for s in sids)
    assert sorted(r["path"] for r in j.backend.received) == sorted(f"/m{i}" for i in range(50))
    assert j.backend.connections == 1
    c.close()


def test_many_uploads_multiplexed_both_sides(h2up):
    """Streams of one HTTP/2 client woken by the upstream session while the
    client connection is itself being driven (found in review: a nested
    drive freed streams under the caller's feet)."""
    j = h2up()
    c = H2Client(j.plain)
    bodies = {}
    for batch in range(5):
        for i in range(20):
            body = os.urandom(20000)
            bodies[c.request("POST", "/echo", body=body)] = body
        c.pump(lambda: False if c.conn.open_outbound_streams > 10 else True)
    c.pump(lambda: all(c.responses[s].done for s in bodies))
    for sid, body in bodies.items():
        assert c.responses[sid].status == 200 and bytes(c.responses[sid].data) == body
    c.close()


def test_grpc_web_with_a_length_from_the_upstream_keeps_http11_framing(h2up):
    """The trailers frame makes the body longer than the upstream's
    content-length: the client must get chunked, and the connection go on."""
    j = h2up()
    c = http.client.HTTPConnection("127.0.0.1", j.plain, timeout=20)
    c.request("POST", "/grpclen", body=b"\x00\x00\x00\x00\x00",
              headers={"Content-Type": "application/grpc-web+proto"})
    r = c.getresponse()
    data = r.read()
    assert r.getheader("Content-Length") is None
    assert data[-5 - len("x-checksum:done\r\nx-count:1\r\ngrpc-status:0\r\n"):][0] == 0x80
    assert b"grpc-status:0" in data
    c.request("GET", "/next")
    r = c.getresponse()
    assert r.status == 200 and json.loads(r.read())["path"] == "/next"
    c.close()


def test_a_dead_upstream_gives_502(h2up):
    j = h2up(port=1)  # nothing listens on port 1
    c = http.client.HTTPConnection("127.0.0.1", j.plain, timeout=20)
    c.request("GET", "/x")
    r = c.getresponse()
    assert r.status == 502
    r.read()
    c.close()


def test_h2_over_tls_to_the_upstream(junction, certs):  # noqa: F811
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{certs}/a.crt", f"{certs}/a.key")
    ctx.set_alpn_protocols(["h2"])
    b = H2Backend(tls_ctx=ctx)
    try:
        conf = (CONF % {"dir": certs, "port": b.port}).replace(
            "    protocol: h2c\n",
            f"    protocol: h2\n    tls: {{ ca: {certs}/ca.crt, sni: a.test }}\n")
        j = junction(conf, nports=2)
        c = http.client.HTTPConnection("127.0.0.1", j.ports[0], timeout=20)
        for i in range(3):
            c.request("GET", f"/tls{i}")
            r = c.getresponse()
            assert r.status == 200, j.stderr()
            assert json.loads(r.read())["path"] == f"/tls{i}"
        assert b.connections == 1 and b.alpn == "h2"
        c.close()
    finally:
        b.close()


# ---- gRPC ----

class Grpc:
    """A gRPC server with generic handlers: bytes in, bytes out, no stubs."""

    def __init__(self):
        def unary(req, ctx):
            if req == b"deny":
                ctx.abort(grpc.StatusCode.PERMISSION_DENIED, "no way")
            ctx.set_trailing_metadata((("x-served-by", "grpc"),))
            return b"echo:" + req

        def server_stream(req, ctx):
            for i in range(int(req)):
                yield b"%d" % i

        def client_stream(it, ctx):
            return b"|".join(it)

        def bidi(it, ctx):
            for m in it:
                yield m.upper()

        handlers = {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
            "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        }
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("test.Echo", handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def close(self):
        self.server.stop(None)


@pytest.fixture
def grpc_junction(junction, certs):  # noqa: F811
    g = Grpc()
    j = junction(CONF % {"dir": certs, "port": g.port}, nports=2)
    j.plain, j.tls = j.ports
    yield j
    g.close()


def channels(j, certs):  # noqa: F811
    plain = grpc.insecure_channel(f"127.0.0.1:{j.plain}")
    with open(f"{certs}/ca.crt", "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    tls = grpc.secure_channel(f"127.0.0.1:{j.tls}", creds,
                              options=(("grpc.ssl_target_name_override", "a.test"),))
    return [plain, tls]


def test_grpc_unary_and_streaming_calls(grpc_junction, certs):  # noqa: F811
    for ch in channels(grpc_junction, certs):
        unary = ch.unary_unary("/test.Echo/Unary")
        resp, call = unary.with_call(b"hello", timeout=20)
        assert resp == b"echo:hello"
        assert ("x-served-by", "grpc") in call.trailing_metadata()
        stream = ch.unary_stream("/test.Echo/ServerStream")
        assert list(stream(b"5", timeout=20)) == [b"0", b"1", b"2", b"3", b"4"]
        client = ch.stream_unary("/test.Echo/ClientStream")
        assert client(iter([b"a", b"b", b"c"]), timeout=20) == b"a|b|c"
        bidi = ch.stream_stream("/test.Echo/Bidi")
        assert list(bidi(iter([b"x", b"y"]), timeout=20)) == [b"X", b"Y"]
        ch.close()


def test_grpc_error_status_comes_back_in_trailers(grpc_junction, certs):  # noqa: F811
    for ch in channels(grpc_junction, certs):
        unary = ch.unary_unary("/test.Echo/Unary")
        with pytest.raises(grpc.RpcError) as e:
            unary(b"deny", timeout=20)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert e.value.details() == "no way"
        missing = ch.unary_unary("/test.Echo/Nope")
        with pytest.raises(grpc.RpcError) as e:
            missing(b"x", timeout=20)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
        ch.close()


# ---- configuration ----

def check(tmp_path, upstream):
    conf = tmp_path / "j.yaml"
    conf.write_text("listeners:\n  - { name: l, address: 127.0.0.1:1 }\n"
                    "upstreams:\n  u:\n" + upstream +
                    "    servers: [ { address: 127.0.0.1:2 } ]\n")
    return subprocess.run([BIN, "check", "-c", str(conf)], capture_output=True, text=True,
                          timeout=30)


def test_protocol_configuration_errors(tmp_path):
    p = check(tmp_path, "    protocol: h2\n")
    assert p.returncode != 0 and "5:15: protocol: h2 is HTTP/2 over TLS and needs tls:" in p.stderr
    p = check(tmp_path, "    protocol: h3\n")
    assert p.returncode != 0 and "invalid value 'h3'" in p.stderr
    p = check(tmp_path, "    protocol: h2c\n    health: { interval: 1s }\n")
    assert p.returncode != 0 and "checks of type http speak HTTP/1.1" in p.stderr
    p = check(tmp_path, "    protocol: h2c\n    health: { type: tcp }\n")
    assert p.returncode == 0, p.stderr


# ---- gRPC-Web ----

def grpc_web_call(port, path, message):
    """A gRPC-Web call made by hand over HTTP/1.1: one length-prefixed frame."""
    body = b"\x00" + len(message).to_bytes(4, "big") + message
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request("POST", path, body=body, headers={"Content-Type": "application/grpc-web+proto",
                                                "X-Grpc-Web": "1", "Accept": "*/*"})
    r = c.getresponse()
    data = r.read()
    c.close()
    frames = []
    while data:
        flag, n = data[0], int.from_bytes(data[1:5], "big")
        frames.append((flag, data[5:5 + n]))
        data = data[5 + n:]
    return r, frames


def test_grpc_web_call_gets_its_trailers_in_the_body(grpc_junction):
    r, frames = grpc_web_call(grpc_junction.plain, "/test.Echo/Unary", b"web")
    assert r.status == 200
    assert r.getheader("Content-Type").startswith("application/grpc-web")
    assert r.getheader("Transfer-Encoding") == "chunked"
    assert frames[0] == (0, b"echo:web")
    flag, trailer = frames[-1]
    assert flag == 0x80
    lines = dict(l.split(":", 1) for l in trailer.decode().strip().split("\r\n"))
    assert lines["grpc-status"] == "0"
    assert lines["x-served-by"] == "grpc"


def test_grpc_web_error_status(grpc_junction):
    r, frames = grpc_web_call(grpc_junction.plain, "/test.Echo/Unary", b"deny")
    assert r.status == 200
    # A trailers-only answer: the status is in the head, or in a trailers frame.
    status = r.getheader("grpc-status")
    if status is None:
        lines = dict(l.split(":", 1) for l in frames[-1][1].decode().strip().split("\r\n"))
        status, message = lines["grpc-status"], lines["grpc-message"]
    else:
        message = r.getheader("grpc-message")
    assert status == "7" and message == "no way"


def b64_quanta(text):
    """Decodes base64 made of separately padded parts, quantum by quantum,
    as gRPC-Web text clients do."""
    import base64
    return b"".join(base64.b64decode(text[i:i + 4]) for i in range(0, len(text), 4))


def test_grpc_web_text_bodies_are_base64_both_ways(grpc_junction):
    import base64
    msg = b"text-mode" * 100
    frame = b"\x00" + len(msg).to_bytes(4, "big") + msg
    c = http.client.HTTPConnection("127.0.0.1", grpc_junction.plain, timeout=20)
    c.request("POST", "/test.Echo/Unary", body=base64.b64encode(frame),
              headers={"Content-Type": "application/grpc-web-text", "Accept":
                       "application/grpc-web-text"})
    r = c.getresponse()
    text = r.read()
    c.close()
    assert r.status == 200
    assert r.getheader("Content-Type").startswith("application/grpc-web-text")
    data = b64_quanta(text)
    frames = []
    while data:
        frames.append((data[0], data[5:5 + int.from_bytes(data[1:5], "big")]))
        data = data[5 + int.from_bytes(data[1:5], "big"):]
    assert frames[0] == (0, b"echo:" + msg)
    assert frames[-1][0] == 0x80 and b"grpc-status:0" in frames[-1][1]


def test_grpc_web_text_that_is_not_base64_is_refused(grpc_junction):
    c = http.client.HTTPConnection("127.0.0.1", grpc_junction.plain, timeout=20)
    c.request("POST", "/test.Echo/Unary", body=b"!!!not base64!!!",
              headers={"Content-Type": "application/grpc-web-text"})
    r = c.getresponse()
    r.read()
    c.close()
    assert r.status == 400


def test_trailers_of_a_chunked_http11_request_reach_an_http2_upstream(h2up):
    import socket
    j = h2up()
    s = socket.create_connection(("127.0.0.1", j.plain), timeout=20)
    s.sendall(b"POST /t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"4\r\nbody\r\n0\r\nX-Sum: 7\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 200 ")
    s.close()
    rec = j.backend.received[-1]
    assert rec["body_len"] == 4 and rec["trailers"] == {"x-sum": "7"}
