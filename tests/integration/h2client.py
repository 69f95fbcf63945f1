"""Small HTTP/2 clients for the tests: H2Client drives Debian's python3-h2
(a well-behaved client: flow control, multiplexing), RawH2 writes frames
by hand (hyperframe + hpack) for the cases a well-behaved library refuses
to produce: floods, too many streams, endless CONTINUATION."""
import json
import socket
import ssl
import struct
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack
from conftest import RawServer
from hyperframe.frame import (ContinuationFrame, Frame, GoAwayFrame, HeadersFrame, PingFrame,
                              RstStreamFrame, SettingsFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def connect(port, tls_ctx=None, host="a.test", timeout=20):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls_ctx is not None:
        sock = tls_ctx.wrap_socket(sock, server_hostname=host)
        assert sock.selected_alpn_protocol() == "h2", sock.selected_alpn_protocol()
    return sock


def tls_context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


class Response:
    def __init__(self):
        self.headers = None
        self.trailers = None
        self.data = bytearray()
        self.ended = False
        self.reset = None
        self.interim = []

    @property
    def status(self):
        return int(self.headers[":status"]) if self.headers else None

    @property
    def done(self):
        return self.ended or self.reset is not None


class H2Client:
    def __init__(self, port, tls_ctx=None, host="a.test", timeout=20, window=None):
        self.sock = connect(port, tls_ctx, host, timeout)
        self.authority = host if tls_ctx else f"127.0.0.1:{port}"
        self.scheme = "https" if tls_ctx else "http"
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(cfg)
        self.conn.initiate_connection()
        if window is not None:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.responses = {}
        self.pending_body = {}
        self.goaway = None
        self.closed = False
        self.read_slowly = False
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, method="GET", path="/", headers=(), body=None):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", self.scheme), (":authority", self.authority),
                (":path", path)] + list(headers)
        self.conn.send_headers(sid, hdrs, end_stream=body is None)
        self.responses[sid] = Response()
        if body is not None:
            self.pending_body[sid] = memoryview(body)
            self._send_bodies()
        self.flush()
        return sid

    def _send_bodies(self):
        for sid, rest in list(self.pending_body.items()):
            while True:
                n = min(len(rest), self.conn.local_flow_control_window(sid),
                        self.conn.max_outbound_frame_size)
                if n <= 0 and len(rest) > 0:
                    break
                try:
                    self.conn.send_data(sid, rest[:n].tobytes(), end_stream=(n == len(rest)))
                except h2.exceptions.StreamClosedError:
                    rest = rest[:0]  # answered and reset (RFC 9113 8.1): the rest is not wanted
                    break
                rest = rest[n:]
                if len(rest) == 0:
                    break
            if len(rest) == 0:
                del self.pending_body[sid]
            else:
                self.pending_body[sid] = rest

    def _event(self, ev):
        if isinstance(ev, h2.events.InformationalResponseReceived):
            self.responses[ev.stream_id].interim.append(dict(ev.headers)[":status"])
        elif isinstance(ev, h2.events.ResponseReceived):
            self.responses[ev.stream_id].headers = dict(ev.headers)
        elif isinstance(ev, h2.events.TrailersReceived):
            self.responses[ev.stream_id].trailers = dict(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            self.responses[ev.stream_id].data += ev.data
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            self.responses[ev.stream_id].ended = True
        elif isinstance(ev, h2.events.StreamReset):
            if ev.stream_id in self.responses:
                self.responses[ev.stream_id].reset = ev.error_code
            self.pending_body.pop(ev.stream_id, None)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev
        elif isinstance(ev, h2.events.WindowUpdated):
            self._send_bodies()

    def pump(self, until, timeout=120):
        """Reads and answers frames until until() is true or the server closes."""
        deadline = time.monotonic() + timeout
        while not until():
            if self.closed:
                return False
            if time.monotonic() > deadline:
                raise AssertionError("HTTP/2 condition not reached in time")
            try:
                data = self.sock.recv(4096 if self.read_slowly else 65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, ssl.SSLError):
                data = b""
            if not data:
                self.closed = True
                continue
            for ev in self.conn.receive_data(data):
                self._event(ev)
            self._send_bodies()
            try:
                self.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.closed = True
        return True

    def get(self, path="/", headers=(), method="GET", body=None):
        sid = self.request(method, path, headers, body)
        self.pump(lambda: self.responses[sid].done)
        return self.responses[sid]

    def close(self):
        try:
            self.conn.close_connection()
            self.flush()
        except OSError:
            pass
        self.sock.close()


class RawH2:
    """Frames by hand: nothing checks what is sent."""

    def __init__(self, port, tls_ctx=None, host="a.test"):
        self.sock = connect(port, tls_ctx, host)
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.buf = b""
        self.frames = []
        self.closed = False
        self.sock.sendall(PREFACE + SettingsFrame(0).serialize())

    def send(self, *frames):
        try:
            self.sock.sendall(b"".join(f.serialize() for f in frames))
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True

    def headers_block(self, path="/", authority="a.test", extra=()):
        return self.enc.encode([(":method", "GET"), (":scheme", "http"), (":path", path),
                                (":authority", authority)] + list(extra))

    def headers(self, sid, end_stream=True, path="/", extra=()):
        f = HeadersFrame(sid, self.headers_block(path, extra=extra))
        f.flags.add("END_HEADERS")
        if end_stream:
            f.flags.add("END_STREAM")
        return f

    def _parse(self):
        while len(self.buf) >= 9:
            length = struct.unpack(">I", b"\0" + self.buf[:3])[0]
            if len(self.buf) < 9 + length:
                return
            f, _ = Frame.parse_frame_header(memoryview(self.buf[:9]))
            f.parse_body(memoryview(self.buf[9:9 + length]))
            self.buf = self.buf[9 + length:]
            self.frames.append(f)
            if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
                ack = SettingsFrame(0)
                ack.flags.add("ACK")
                self.send(ack)

    def read_until(self, cond, timeout=30):
        """Reads frames until cond(frames) or the connection closes; returns cond's last value."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(1)
        while not cond(self.frames):
            if self.closed:
                return cond(self.frames)
            if time.monotonic() > deadline:
                raise AssertionError("frames never came: %r" % self.frames[-5:])
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, ssl.SSLError):
                data = b""
            if not data:
                self.closed = True
            self.buf += data
            self._parse()
        return cond(self.frames)

    def goaway(self):
        return next((f for f in self.frames if isinstance(f, GoAwayFrame)), None)

    def resets(self):
        return {f.stream_id: f.error_code for f in self.frames if isinstance(f, RstStreamFrame)}

    def close(self):
        self.sock.close()


__all__ = ["H2Client", "RawH2", "tls_context", "ContinuationFrame", "HeadersFrame", "PingFrame",
           "RstStreamFrame", "SettingsFrame", "GoAwayFrame"]


class H2Backend:
    """An h2c server (prior knowledge) made with python3-h2: answers each
    request with JSON describing it (method, path, headers, body length),
    the body itself under /echo, and trailers under /trailers."""

    def __init__(self, tls_ctx=None):
        self.tls_ctx = tls_ctx
        self.received = []
        # conftest's RawServer accepts and runs serve() per connection.
        self.server = RawServer(lambda srv, c: self.serve(c))
        self.port = self.server.port

    @property
    def connections(self):
        return len(self.server.conns)

    def serve(self, c):
        if self.tls_ctx is not None:
            try:
                c.settimeout(10)
                c = self.tls_ctx.wrap_socket(c, server_side=True)
                c.settimeout(None)
            except (OSError, ssl.SSLError):
                c.close()
                return
            self.alpn = c.selected_alpn_protocol()
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        conn = h2.connection.H2Connection(cfg)
        conn.initiate_connection()
        c.sendall(conn.data_to_send())
        reqs = {}
        pending = {}
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        reqs[ev.stream_id] = {"headers": dict(ev.headers), "body": bytearray()}
                    elif isinstance(ev, h2.events.TrailersReceived):
                        reqs[ev.stream_id]["trailers"] = dict(ev.headers)
                    elif isinstance(ev, h2.events.DataReceived):
                        reqs[ev.stream_id]["body"] += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        self.respond(conn, ev.stream_id, reqs.pop(ev.stream_id), pending)
                    elif isinstance(ev, h2.events.WindowUpdated):
                        pass
                self.send_pending(conn, pending)
                c.sendall(conn.data_to_send())
        except (OSError, h2.exceptions.ProtocolError):
            return
        finally:
            c.close()

    def respond(self, conn, sid, req, pending):
        h = req["headers"]
        rec = {"method": h[":method"], "path": h[":path"], "authority": h.get(":authority"),
               "headers": {k: v for k, v in h.items() if not k.startswith(":")},
               "body_len": len(req["body"]), "trailers": req.get("trailers")}
        self.received.append(rec)
        body = bytes(req["body"]) if h[":path"].startswith("/echo") else \
            json.dumps(rec).encode()
        trailers = h[":path"].startswith("/trailers") or h[":path"].startswith("/grpclen")
        head = [(":status", "200"), ("content-type", "application/json"), ("x-backend", "h2")]
        if h[":path"].startswith("/grpclen"):
            # A gRPC answer that also gives its length (allowed, and rare).
            body = b"\x00" + len(body).to_bytes(4, "big") + body
            head = [(":status", "200"), ("content-type", "application/grpc"),
                    ("content-length", str(len(body)))]
        conn.send_headers(sid, head)
        pending[sid] = [memoryview(body), trailers]

    def send_pending(self, conn, pending):
        for sid, item in list(pending.items()):
            rest, trailers = item
            while len(rest) > 0:
                n = min(len(rest), conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if n <= 0:
                    break
                conn.send_data(sid, rest[:n].tobytes())
                rest = rest[n:]
            item[0] = rest
            if len(rest) == 0:
                if trailers:
                    conn.send_headers(sid, [("x-checksum", "done"), ("x-count", "1"),
                                            ("grpc-status", "0")], end_stream=True)
                else:
                    conn.end_stream(sid)
                del pending[sid]

    def close(self):
        self.server.close()
