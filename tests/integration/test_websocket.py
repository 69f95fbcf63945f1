"""WebSocket over HTTP/1.1 through the real binary (docs/proxying.md): a real
WebSocket server (Debian's python3-websockets, asyncio API) behind Junction
and real clients, plain and over a TLS listener; the handshake's fields, the
tunnel both ways with large messages, close handshakes, tunnel_idle, and what
is not upgraded."""
import asyncio
import http
import socket
import ssl
import threading

import pytest
import websockets

from conftest import read_head, wait_for
from test_tls import certs  # noqa: F401  (module fixture: a CA and leaf certificates)

CONF = """
workers: 1
listeners:
  - name: web
    address: 127.0.0.1:{port}
%(tls)s
access_log: { path: stdout, format: json }
timeouts: { drain: 1s%(timeouts)s }
upstreams:
  ws:
%(limits)s    servers:
      - { address: 127.0.0.1:%(backend)d }
routes:
  - { name: ws, match: { path_prefix: / }, upstream: ws }
"""

TLS = """    tls:
      certificates:
        - { cert: %(dir)s/default.crt, key: %(dir)s/default.key }"""

MIB = 1 << 20


class WsServer:
    """A WebSocket server on its own event loop thread. Paths choose what it
    does: /echo echoes, /push speaks first, /bye closes with 4001, /plain
    and /deny answer plain HTTP (200, 403) instead of upgrading."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.requests = []     # (path, headers) of every handshake seen
        self.close_codes = []  # close code of every ended connection
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(websockets.serve(
                self.handler, "127.0.0.1", 0, process_request=self.process_request,
                ping_interval=None, max_size=None))
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(10)

    async def process_request(self, path, headers):
        self.requests.append((path, headers))
        if path == "/plain":
            return http.HTTPStatus.OK, [("Content-Type", "text/plain")], b"plain ok\n"
        if path == "/deny":
            return http.HTTPStatus.FORBIDDEN, [("X-Why", "denied")], b"denied\n"
        return None

    async def handler(self, ws):
        try:
            if ws.path == "/push":
                await ws.send("hello from the server")
            if ws.path == "/bye":
                await ws.close(4001, "server done")
                return
            async for msg in ws:
                if msg == "wait":
                    # Silent for longer than upstream_response, then speaks.
                    await asyncio.sleep(0.6)
                    await ws.send("late")
                else:
                    await ws.send(msg)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_codes.append(ws.close_code)

    def close(self):
        async def stop():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def ws_server():
    s = WsServer()
    yield s
    s.close()


@pytest.fixture
def ws_junction(junction, ws_server, certs):  # noqa: F811
    def start(timeouts="", tls=False, limits=""):
        conf = CONF % {"backend": ws_server.port, "timeouts": timeouts, "limits": limits,
                       "tls": TLS % {"dir": certs} if tls else ""}
        return junction(conf)
    return start


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def connect(j, path, tls_ctx=None):
    scheme = "wss" if tls_ctx else "ws"
    return websockets.connect(f"{scheme}://127.0.0.1:{j.port}{path}", ssl=tls_ctx,
                              ping_interval=None, max_size=None, open_timeout=10)


def client_ctx(certs_dir):
    ctx = ssl.create_default_context(cafile=f"{certs_dir}/ca.crt")
    ctx.check_hostname = False
    return ctx


async def echo_session(j, tls_ctx=None):
    async with connect(j, "/echo", tls_ctx) as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x00\x01binary\xff")
        assert await ws.recv() == b"\x00\x01binary\xff"
        big = bytes(range(256)) * (MIB // 256)
        await ws.send(big)
        assert await ws.recv() == big
        big_text = "x" * MIB
        await ws.send(big_text)
        assert await ws.recv() == big_text
        return ws.response_headers


def test_text_binary_and_large_messages_are_echoed_both_ways(ws_junction, ws_server):
    j = ws_junction()
    headers = run(echo_session(j))
    assert headers["Upgrade"].lower() == "websocket"
    assert "upgrade" in headers["Connection"].lower()
    assert headers["X-Request-Id"]
    # The server saw a real handshake: Upgrade, Connection and the key passed.
    path, req = ws_server.requests[-1]
    assert path == "/echo"
    assert req["Upgrade"] == "websocket"
    assert req["Connection"] == "Upgrade"
    assert req["Sec-WebSocket-Key"] and req["Sec-WebSocket-Version"] == "13"
    wait_for(lambda: any(l["status"] == 101 and l["path"] == "/echo" for l in j.access_lines()),
             what="access log line with status 101 when the tunnel ends")


def test_websocket_over_tls_listener(ws_junction, certs):  # noqa: F811
    j = ws_junction(tls=True)
    run(echo_session(j, client_ctx(certs)))


def test_server_speaks_first(ws_junction):
    j = ws_junction()

    async def go():
        async with connect(j, "/push") as ws:
            assert await ws.recv() == "hello from the server"
            await ws.send("and back")
            assert await ws.recv() == "and back"
    run(go())


def test_client_close_handshake_reaches_the_server(ws_junction, ws_server):
    j = ws_junction()

    async def go():
        async with connect(j, "/echo") as ws:
            await ws.send("x")
            await ws.recv()
            await ws.close(4000, "client done")
            return ws.close_code
    assert run(go()) == 4000
    wait_for(lambda: 4000 in ws_server.close_codes, what="the server to see code 4000")


def test_server_close_handshake_reaches_the_client(ws_junction):
    j = ws_junction()

    async def go():
        async with connect(j, "/bye") as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            return ws.close_code, ws.close_reason
    assert run(go()) == (4001, "server done")


def test_tunnel_idle_closes_an_idle_tunnel(ws_junction, ws_server):
    j = ws_junction(timeouts=", tunnel_idle: 300ms")

    async def go():
        async with connect(j, "/echo") as ws:
            await ws.send("once")
            assert await ws.recv() == "once"
            await asyncio.wait_for(ws.wait_closed(), 20)  # closed by Junction, no close frame
            return ws.close_code
    assert run(go()) == 1006
    wait_for(lambda: 1006 in ws_server.close_codes, what="the server side to be closed too")


def test_upstream_response_timeout_does_not_cut_a_quiet_websocket(ws_junction):
    j = ws_junction(timeouts=", upstream_response: 200ms")

    async def go():
        async with connect(j, "/echo") as ws:
            await ws.send("wait")  # the server stays silent 600 ms, then answers
            assert await ws.recv() == "late"
            await ws.send("still here")
            assert await ws.recv() == "still here"
    run(go())


def test_non_101_answer_is_an_ordinary_response(ws_junction, ws_server):
    j = ws_junction()

    async def go():
        with pytest.raises(websockets.InvalidStatusCode) as e:
            async with connect(j, "/deny"):
                pass
        return e.value.status_code
    assert run(go()) == 403
    assert ws_server.requests[-1][1]["Upgrade"] == "websocket"  # the upgrade was asked for


def handshake(path):
    return (f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, UPGRADE\r\n"
            "Upgrade: WebSocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode()


def read_response(sock):
    head = read_head(sock)
    text, _, rest = head.partition(b"\r\n\r\n")
    length = 0
    for line in text.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        rest += sock.recv(65536)
    return text.decode(), rest


def test_plain_requests_and_refused_upgrade_on_one_connection(ws_junction, ws_server):
    j = ws_junction()
    s = socket.create_connection(("127.0.0.1", j.port), timeout=10)
    s.sendall(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
    head, body = read_response(s)
    assert head.startswith("HTTP/1.1 200") and body == b"plain ok\n"
    s.sendall(handshake("/deny"))
    head, body = read_response(s)
    assert head.startswith("HTTP/1.1 403") and body == b"denied\n"
    assert "x-why: denied" in head.lower()
    assert ws_server.requests[-1][1]["Connection"] == "Upgrade"
    s.sendall(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
    head, body = read_response(s)
    assert head.startswith("HTTP/1.1 200") and body == b"plain ok\n"
    s.close()


def test_raw_handshake_with_mixed_case_tokens_and_early_frame(ws_junction):
    """Connection lists several tokens, in any case; a frame the client
    sends right behind its handshake goes through once the tunnel opens."""
    j = ws_junction()
    s = socket.create_connection(("127.0.0.1", j.port), timeout=10)
    # A masked text frame "hi" (mask 0x01020304) right behind the head.
    frame = bytes([0x81, 0x82, 1, 2, 3, 4, ord("h") ^ 1, ord("i") ^ 2])
    s.sendall(handshake("/echo") + frame)
    head, rest = read_response(s)
    assert head.startswith("HTTP/1.1 101")
    assert "sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=" in head.lower()
    while len(rest) < 4:
        rest += s.recv(65536)
    assert rest[:4] == bytes([0x81, 0x02]) + b"hi"
    s.close()


def test_h2c_upgrade_is_not_passed_on(junction, backends):
    b = backends(1)[0]
    j = junction(CONF % {"backend": b.port, "timeouts": "", "tls": "", "limits": ""})
    s = socket.create_connection(("127.0.0.1", j.port), timeout=10)
    s.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
              b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
    head, _ = read_response(s)
    assert head.startswith("HTTP/1.1 200")
    s.close()
    names = [k.lower() for k, _ in b.received[-1]["headers"]]
    assert "upgrade" not in names and "http2-settings" not in names
    assert "connection" not in names


def test_drain_closes_open_tunnels_at_its_end(ws_junction, ws_server):
    j = ws_junction(timeouts="")

    async def go():
        async with connect(j, "/echo") as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            j.proc.send_signal(2)  # SIGINT: drain (1s), then tunnels are cut
            await ws.send("during the drain")
            assert await ws.recv() == "during the drain"
            await asyncio.wait_for(ws.wait_closed(), 20)
    run(go())
    assert wait_for(lambda: j.proc.poll() is not None, what="junction to exit") is not None
    assert j.proc.returncode == 0


def test_101_to_another_protocol_is_a_502(junction, raw_server):
    def behave(srv, c):
        read_head(c)
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                  b"Upgrade: h2c\r\n\r\n")
        c.recv(100)
    up = raw_server(behave)
    j = junction(CONF % {"backend": up.port, "timeouts": "", "tls": "", "limits": ""},
                 expect_errors=True)
    s = socket.create_connection(("127.0.0.1", j.port), timeout=10)
    s.sendall(handshake("/echo"))
    head, _ = read_response(s)
    assert head.startswith("HTTP/1.1 502")
    s.close()


def test_open_tunnel_holds_a_server_connection_until_it_closes(ws_junction):
    """limits.max_connections counts a tunnel's upstream connection while it
    is open, and the slot is free again once the tunnel ended."""
    j = ws_junction(limits="    limits: { max_connections: 1 }\n")

    async def refused():
        with pytest.raises(websockets.InvalidStatusCode) as e:
            async with connect(j, "/echo"):
                pass
        return e.value.status_code

    async def go():
        async with connect(j, "/echo") as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            assert await refused() == 503

    async def works():
        try:
            async with connect(j, "/echo") as ws:
                await ws.send("y")
                return await ws.recv() == "y"
        except websockets.InvalidStatusCode:
            return False
    run(go())
    wait_for(lambda: run(works()), what="the slot to be free after the tunnel closed")


# ---- WebSocket over HTTP/2 (RFC 8441) ----

def ws_frame(text, mask=b"\x01\x02\x03\x04"):
    """A masked client text frame (RFC 6455), payload under 126 bytes."""
    data = text.encode()
    return bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4]
                                                          for i, b in enumerate(data))


def test_websocket_over_http2_extended_connect(junction):
    from h2client import RawH2
    from hyperframe.frame import DataFrame, HeadersFrame, SettingsFrame
    srv = WsServer()
    try:
        j = junction(CONF % {"backend": srv.port, "timeouts": "", "tls": "", "limits": ""})
        raw = RawH2(j.port)
        # The server must have said SETTINGS_ENABLE_CONNECT_PROTOCOL (8) = 1.
        raw.read_until(lambda fs: any(isinstance(f, SettingsFrame) and
                                      f.settings.get(8) == 1 for f in fs))
        block = raw.enc.encode([(":method", "CONNECT"), (":protocol", "websocket"),
                                (":scheme", "http"), (":path", "/echo"),
                                (":authority", "a.test"), ("sec-websocket-version", "13")])
        h = HeadersFrame(1, block)
        h.flags.add("END_HEADERS")
        raw.send(h)
        raw.read_until(lambda fs: any(isinstance(f, HeadersFrame) and f.stream_id == 1
                                      for f in fs))
        head = [f for f in raw.frames if isinstance(f, HeadersFrame) and f.stream_id == 1][0]
        assert dict(raw.dec.decode(head.data))[":status"] == "200"
        raw.send(DataFrame(1, ws_frame("over h2")))

        def echoed(fs):
            data = b"".join(f.data for f in fs if isinstance(f, DataFrame) and f.stream_id == 1)
            return data if len(data) >= 9 else None
        data = raw.read_until(echoed)
        assert data[:2] == bytes([0x81, 7]) and data[2:9] == b"over h2"
        path, headers = srv.requests[-1]
        assert path == "/echo" and headers["Upgrade"].lower() == "websocket"
        assert headers["Sec-WebSocket-Version"] == "13" and len(headers["Sec-WebSocket-Key"]) == 24
        end = DataFrame(1, b"")
        end.flags.add("END_STREAM")
        raw.send(end)
        raw.read_until(lambda fs: any(f.stream_id == 1 and "END_STREAM" in f.flags for f in fs))
        raw.close()
    finally:
        srv.close()
