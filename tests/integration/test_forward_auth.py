"""forward_auth: an authorisation service asked about every request, through
the real binary, with a test authorisation service (http.server) started by
each test: what it receives, what a 2xx lets through, what any other answer
gives the client, failures, bodies waiting behind the pause (HTTP/1.1 and
HTTP/2), cancellation, pipelining, concurrency and configuration errors."""
import http.client
import http.server
import json
import re
import socket
import socketserver
import struct
import subprocess
import threading

import pytest

from conftest import BIN, EchoHandler, free_port, read_head, recv_until_close, wait_for
from h2client import H2Client
from test_upstream_tls import TLSBackend, upcerts  # noqa: F401


class AuthHandler(http.server.BaseHTTPRequestHandler):
    """Decides by the original URI (X-Forwarded-Uri), as a real service
    decides by the credentials; records every request it receives."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        rec = {"path": self.path, "method": self.command,
               "headers": [[k, v] for k, v in self.headers.items()]}
        self.server.received.append(rec)
        self.server.peers.add(self.client_address[1])
        uri = self.headers.get("X-Forwarded-Uri", "")
        auth = self.headers.get("Authorization", "")
        if uri.startswith("/deny401"):
            self.answer(401, [("WWW-Authenticate", 'Bearer realm="api"'),
                              ("Content-Type", "text/plain"), ("X-Auth-Reason", "expired")],
                        b"token expired\n")
        elif uri.startswith("/deny403"):
            self.answer(403, [("Content-Type", "application/json")], b'{"why": "not yours"}')
        elif uri.startswith("/login"):
            self.answer(302, [("Location", "https://login.example/?back=/login"),
                              ("Set-Cookie", "state=xyz; Path=/"), ("Set-Cookie", "n=1")], b"")
        elif uri.startswith("/hang"):
            self.server.hung.wait(30)
            self.answer(200, [], b"")
        elif uri.startswith("/gate"):
            self.server.waiting += 1
            self.server.gate.wait(30)
            self.answer(200, [("X-User-Id", "gated")], b"")
        elif uri.startswith("/okbody/"):
            self.answer(200, [("X-User-Id", "bodied")], b"b" * int(uri.split("/")[2]))
        elif uri.startswith("/anon"):
            self.answer(200, [("X-Other", "x")], b"")
        elif uri.startswith("/chunked"):
            self.send_response(200)
            self.send_header("X-User-Id", "chunky")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"5\r\nhello\r\n0\r\n\r\n")
        else:
            user = auth.split(" ", 1)[1] if auth.startswith("Bearer ") else "alice"
            self.answer(200, [("X-User-Id", user), ("X-User-Groups", "admins"),
                              ("X-User-Groups", "ops"), ("X-Other", "not copied")], b"ok")

    def answer(self, status, fields, body):
        self.send_response(status)
        for k, v in fields:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class AuthServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 drops connects under load

    def __init__(self):
        super().__init__(("127.0.0.1", 0), AuthHandler)
        self.port = self.server_address[1]
        self.received = []
        self.peers = set()
        self.hung = threading.Event()
        self.gate = threading.Event()
        self.waiting = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def handle_error(self, request, client_address):
        pass  # a connection Junction closed on purpose (a body left unread)

    def close(self):
        self.hung.set()
        self.gate.set()
        self.shutdown()
        self.server_close()


@pytest.fixture
def auth():
    made = []

    def make():
        s = AuthServer()
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def cfg(backend_port, auth_port, fa="", routes=None, upstream_extra=""):
    fa = fa or ("upstream: auth, path: /check, copy_request_headers: [Authorization, Cookie], "
                "copy_response_headers: [X-User-Id, X-User-Groups], timeout: 2s")
    routes = routes or """
  - name: api
    match: { path_prefix: / }
    upstream: app
    policies:
      - forward_auth: { %s }
""" % fa
    return """
workers: 2
listeners:
  - name: public
    address: 127.0.0.1:{port}
access_log: { path: stdout, format: json }
upstreams:
  app:
    servers: [ { address: 127.0.0.1:%d } ]
  auth:
    servers: [ { address: 127.0.0.1:%d } ]
%s
routes:
%s
""" % (backend_port, auth_port, upstream_extra, routes)


def request(port, method="GET", path="/", headers=None, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def field_values(rec, name):
    return [v for k, v in rec["headers"] if k.lower() == name.lower()]


def test_allowed_request_gets_the_service_fields_and_never_the_forged_ones(junction, backends,
                                                                            auth):
    (b,) = backends(1)
    a = auth()
    j = junction(cfg(b.port, a.port))
    r, data = request(j.port, path="/api/items", headers={
        "Authorization": "Bearer bob", "X-User-Id": "mallory", "x-user-groups": "root"})
    assert r.status == 200, data
    rec = json.loads(data)
    assert field_values(rec, "X-User-Id") == ["bob"]
    assert field_values(rec, "X-User-Groups") == ["admins", "ops"]
    assert field_values(rec, "X-Other") == []
    # The service's answer had no such field: the client's copy still goes.
    r, data = request(j.port, path="/anon", headers={"X-User-Id": "mallory"})
    assert r.status == 200
    assert field_values(json.loads(data), "X-User-Id") == []
    # A chunked 2xx answer is fine too.
    r, data = request(j.port, path="/chunked")
    assert r.status == 200
    assert field_values(json.loads(data), "X-User-Id") == ["chunky"]


def test_what_the_service_receives(junction, backends, auth):
    (b,) = backends(1)
    a = auth()
    j = junction(cfg(b.port, a.port, fa="upstream: auth, path: '/check?app=shop', "
                     "copy_request_headers: [Authorization, Cookie]"))
    r, data = request(j.port, "POST", "/a/../api//x?q=1&r=%20", body=b"secret body",
                      headers={"Host": "shop.example", "Authorization": "Basic YTpi",
                               "Cookie": "sid=1", "X-Secret": "no", "X-Forwarded-For": "6.6.6.6"})
    assert r.status == 200
    rid = r.getheader("X-Request-Id")
    (rec,) = a.received
    assert rec["method"] == "GET" and rec["path"] == "/check?app=shop"
    h = {k.lower(): v for k, v in rec["headers"]}
    assert h["host"] == "127.0.0.1:%d" % a.port
    assert h["x-forwarded-method"] == "POST"
    assert h["x-forwarded-proto"] == "http"
    assert h["x-forwarded-host"] == "shop.example"
    assert h["x-forwarded-uri"] == "/api/x?q=1&r=%20"
    assert h["x-forwarded-for"] == "127.0.0.1"  # the peer is not a trusted proxy
    assert h["x-request-id"] == rid
    assert h["authorization"] == "Basic YTpi" and h["cookie"] == "sid=1"
    assert "x-secret" not in h
    assert "content-length" not in h and "transfer-encoding" not in h
    # The upstream got the body.
    assert json.loads(data)["body"] == "secret body"


def test_a_401_goes_back_with_its_challenge_and_body(junction, backends, auth):
    (b,) = backends(1)
    a = auth()
    j = junction(cfg(b.port, a.port))
    r, data = request(j.port, path="/deny401")
    assert r.status == 401
    assert data == b"token expired\n"
    assert r.getheader("WWW-Authenticate") == 'Bearer realm="api"'
    assert r.getheader("Content-Type") == "text/plain"
    assert r.getheader("X-Auth-Reason") == "expired"
    assert r.getheader("X-Request-Id")
    assert r.getheader("Content-Length") == str(len(data))
    r, data = request(j.port, path="/deny403")
    assert r.status == 403 and data == b'{"why": "not yours"}'
    assert r.getheader("Content-Type") == "application/json"
    assert b.received == []


def test_a_redirect_passes_with_location_and_cookies(junction, backends, auth):
    (b,) = backends(1)
    a = auth()
    j = junction(cfg(b.port, a.port))
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=20)
    c.request("GET", "/login")
    r = c.getresponse()
    assert r.status == 302 and r.read() == b""
    assert r.getheader("Location") == "https://login.example/?back=/login"
    assert r.msg.get_all("Set-Cookie") == ["state=xyz; Path=/", "n=1"]
    # The connection goes on: the next request on it is served.
    c.request("GET", "/api")
    r = c.getresponse()
    assert r.status == 200 and json.loads(r.read())["path"] == "/api"
    c.close()
    assert len(b.received) == 1


def test_an_unreachable_service_gives_503_json(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b.port, free_port()), expect_errors=True)
    r, data = request(j.port, path="/api")
    assert r.status == 503
    body = json.loads(data)
    assert body["error"] == "authorization service unavailable"
    assert body["request_id"] == r.getheader("X-Request-Id")
    assert r.getheader("Content-Type") == "application/json"
    assert b.received == []


def test_a_hanging_service_gives_503_after_the_timeout(junction, backends, auth):
    (b,) = backends(1)
    a = auth()
    j = junction(cfg(b.port, a.port, fa="upstream: auth, path: /check, timeout: 300ms"))
    r, data = request(j.port, path="/hang")
    assert r.status == 503
    assert json.loads(data)["error"] == "authorization service unavailable"
    assert b.received == []


@pytest.mark.parametrize("answer", [b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Le",
                                    b"HTTP/1.1 401 No\r\nContent-Length: 100000\r\n\r\n" +
                                    b"x" * 100000])
def test_a_malformed_or_oversized_answer_gives_503(junction, backends, raw_server, answer):
    def behave(srv, c):
        read_head(c)
        c.sendall(answer)
        c.close()

    s = raw_server(behave)
    (b,) = backends(1)
    j = junction(cfg(b.port, s.port))
    r, data = request(j.port, path="/api")
    assert r.status == 503
    assert b.received == []


def test_a_service_that_closed_a_pooled_connection_is_asked_again(junction, backends, raw_server):
    """Keep-alive answers, then the service closes the idle connection: the
    next request goes on a fresh one, not to the client as a 503."""
    def behave(srv, c):
        read_head(c)
        srv.received.append(1)
        c.sendall(b"HTTP/1.1 200 OK\r\nX-User-Id: u\r\nContent-Length: 0\r\n\r\n")
        if len(srv.received) == 1:
            c.recv(1)  # the next request, which is never answered on this connection
        c.close()

    s = raw_server(behave)
    (b,) = backends(1)
    j = junction(cfg(b.port, s.port).replace("workers: 2", "workers: 1"))
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=20)
    for _ in range(3):
        c.request("GET", "/api")
        r = c.getresponse()
        assert r.status == 200, r.read()
        r.read()
    c.close()
    assert len(b.received) == 3


def test_post_bodies_wait_behind_the_pause_and_arrive_intact(junction, backends, auth):
    (b,) = backends(1)
    a = auth()
    j = junction(cfg(b.port, a.port))
    body = bytes(range(256)) * 1000
    r, data = request(j.port, "POST", "/upload", body=body,
                      headers={"Content-Type": "application/octet-stream"})
    assert r.status == 200
    assert json.loads(data)["body_len"] == len(body)
    # Chunked.
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=20)
    c.request("POST", "/upload", body=iter([b"abc", b"defg", b"x" * 70000]),
              encode_chunked=True)
    r = c.getresponse()
    rec = json.loads(r.read())
    assert r.status == 200 and rec["body_len"] == 70007 and rec["body"].startswith("abcdefgxx")
    c.close()
    # Denied: the body never reaches the upstream, and the answer still comes.
    r, data = request(j.port, "POST", "/deny401", body=b"z" * 50000)
    assert r.status == 401
    assert len(b.received) == 2


def test_http2_post_body_waits_behind_the_pause(junction, backends, auth):
    (b,) = backends(1)
    a = auth()
    j = junction(cfg(b.port, a.port))
    c = H2Client(j.port)
    body = b"0123456789" * 5000
    r = c.get("/h2up", method="POST", body=body, headers=[("authorization", "Bearer h2")])
    assert r.status == 200
    rec = json.loads(bytes(r.data))
    assert rec["body_len"] == len(body) and rec["body"] == body[:200].decode()
    assert field_values(rec, "X-User-Id") == ["h2"]
    r = c.get("/deny401", method="POST", body=b"abc")
    assert r.status == 401 and bytes(r.data) == b"token expired\n"
    assert r.headers["www-authenticate"] == 'Bearer realm="api"'
    c.close()
    p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--data-binary", "hello",
                        "-H", "Authorization: Bearer curl", f"http://127.0.0.1:{j.port}/c"],
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    rec = json.loads(p.stdout)
    assert rec["body"] == "hello" and field_values(rec, "X-User-Id") == ["curl"]


class Silent:
    """A service that reads the request and never answers; it records when
    each of its connections is closed."""

    def __init__(self, raw_server):
        self.accepted = 0
        self.closed = 0
        self.srv = raw_server(self.behave)
        self.port = self.srv.port

    def behave(self, srv, c):
        self.accepted += 1
        read_head(c)
        c.settimeout(60)
        try:
            while c.recv(4096):
                pass
        except OSError:
            pass
        self.closed += 1


def test_a_client_gone_while_waiting_cancels_the_subrequest_http2(junction, backends, raw_server):
    silent = Silent(raw_server)
    (b,) = backends(1)
    j = junction(cfg(b.port, silent.port, fa="upstream: auth, path: /check, timeout: 60s"))
    c = H2Client(j.port)
    c.request("GET", "/api")
    wait_for(lambda: silent.accepted == 1, what="the subrequest")
    c.close()
    # Long before the 60 s timeout: the subrequest's connection is closed.
    wait_for(lambda: silent.closed == 1, what="the service's connection closed")
    # A stream reset (the connection going on) cancels it as well.
    c = H2Client(j.port)
    sid = c.request("GET", "/api")
    wait_for(lambda: silent.accepted == 2, what="the second subrequest")
    c.conn.reset_stream(sid)
    c.flush()
    wait_for(lambda: silent.closed == 2, what="the second connection closed")
    c.close()
    assert b.received == []


def test_a_client_reset_while_waiting_cancels_the_subrequest_http1(junction, backends,
                                                                    raw_server):
    silent = Silent(raw_server)
    (b,) = backends(1)
    j = junction(cfg(b.port, silent.port, fa="upstream: auth, path: /check, timeout: 60s"))
    s = socket.create_connection(("127.0.0.1", j.port))
    s.sendall(b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_for(lambda: silent.accepted == 1, what="the subrequest")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()  # a reset
    # Long before the 60 s timeout: the subrequest's connection is closed.
    wait_for(lambda: silent.closed == 1, what="the service's connection closed")
    wait_for(lambda: any(l["status"] == 499 for l in j.access_lines()), what="the 499")
    assert b.received == []


def test_a_client_gone_while_waiting_http1(junction, backends, raw_server):
    silent = Silent(raw_server)
    (b,) = backends(1)
    j = junction(cfg(b.port, silent.port, fa="upstream: auth, path: /check, timeout: 1s"))
    s = socket.create_connection(("127.0.0.1", j.port))
    s.sendall(b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_for(lambda: silent.accepted == 1, what="the subrequest")
    s.close()
    # The service's connection is closed (at the latest by the timeout).
    wait_for(lambda: silent.closed == 1, what="the service's connection closed")
    assert b.received == []


def test_pipelined_requests_are_answered_in_order(junction, backends, auth):
    (b,) = backends(1)
    a = auth()
    j = junction(cfg(b.port, a.port))
    s = socket.create_connection(("127.0.0.1", j.port), timeout=20)
    s.sendall(b"GET /p1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer one\r\n\r\n"
              b"GET /deny403 HTTP/1.1\r\nHost: x\r\n\r\n"
              b"POST /p3 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
              b"GET /p4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = recv_until_close(s)
    statuses = [int(x) for x in re.findall(rb"HTTP/1\.1 (\d{3}) ", out)]
    assert statuses == [200, 403, 200, 200], out
    assert [r["path"] for r in b.received] == ["/p1", "/p3", "/p4"]
    assert b.received[1]["body"] == "abc"


def test_fifty_concurrent_clients_each_get_their_own_user(junction, backends, auth):
    (b,) = backends(1)
    a = auth()
    j = junction(cfg(b.port, a.port))
    results = [None] * 50

    def one(i):
        r, data = request(j.port, path=f"/u/{i}", headers={"Authorization": f"Bearer user{i}"})
        rec = json.loads(data)
        results[i] = (r.status, rec["path"], field_values(rec, "X-User-Id"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, res in enumerate(results):
        assert res == (200, f"/u/{i}", [f"user{i}"])
    # Keep-alive connections to the service were reused.
    assert len(a.peers) < 50


def test_forward_auth_then_ip_filter(junction, backends, auth):
    (b,) = backends(1)
    a = auth()
    j = junction(cfg(b.port, a.port, routes="""
  - name: closed
    match: { path_prefix: /closed }
    upstream: app
    policies:
      - forward_auth: { upstream: auth, path: /check }
      - ip_filter: { deny: [127.0.0.0/8] }
  - name: open
    match: { path_prefix: / }
    upstream: app
    policies:
      - forward_auth: { upstream: auth, path: /check }
      - ip_filter: { allow: [127.0.0.1] }
"""))
    r, data = request(j.port, path="/closed")
    assert r.status == 403  # allowed by the service, then denied by ip_filter
    assert len(a.received) == 1
    r, data = request(j.port, path="/deny401")
    assert r.status == 401  # the service's answer: ip_filter never ran
    r, data = request(j.port, path="/fine", headers={"Authorization": "Bearer x", "Cookie": "c=1",
                                                     "X-Secret": "s"})
    assert r.status == 200 and json.loads(data)["path"] == "/fine"
    assert len(b.received) == 1
    # By default the service gets the credentials, and no other field.
    asked = {k.lower(): v for k, v in a.received[-1]["headers"]}
    assert asked["authorization"] == "Bearer x" and asked["cookie"] == "c=1"
    assert "x-secret" not in asked


def check(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return subprocess.run([BIN, "check", "-c", str(p)], capture_output=True, text=True, timeout=30)


def test_configuration_errors_are_reported_with_positions(tmp_path):
    text = """listeners:
  - { name: public, address: 127.0.0.1:8080 }
upstreams:
  app: { servers: [ { address: 127.0.0.1:9000 } ] }
  grpc: { protocol: h2c, servers: [ { address: 127.0.0.1:9001 } ] }
routes:
  - name: api
    match: { path_prefix: / }
    upstream: app
    policies:
      - forward_auth: { upstream: nope, path: /check }
      - forward_auth: { upstream: app, path: "" }
      - forward_auth: { upstream: app, path: /c, copy_request_headers: ["bad name", Host] }
      - forward_auth: { upstream: app, path: /c, copy_response_headers: [X-Ok, "X:y", Content-Length] }
      - forward_auth: { upstream: grpc, path: check }
      - forward_auth: { path: /check, timeout: 0s }
"""
    p = check(tmp_path, text)
    assert p.returncode != 0
    err = p.stderr
    hop = "is a hop-by-hop, framing or Host field"
    for line, what in [(11, "unknown upstream"), (12, "path: must not be empty"),
                       (13, "is not a valid header name"), (13, hop),
                       (14, "is not a valid header name"), (14, hop),
                       (15, "speaks HTTP/2"), (15, "path: must start with /"),
                       (16, "upstream"), (16, "timeout")]:
        assert any(f"bad.yaml:{line}:" in x and what in x for x in err.splitlines()), (line, what)


def test_a_dead_auth_server_is_skipped_by_retrying_the_connect(junction, backends, auth):
    (b,) = backends(1)
    a = auth()
    text = cfg(b.port, a.port).replace(
        "    servers: [ { address: 127.0.0.1:%d } ]\n%s" % (a.port, ""),
        "    servers: [ { address: 127.0.0.1:%d }, { address: 127.0.0.1:%d } ]\n"
        % (free_port(), a.port))
    assert text.count("address: 127.0.0.1:") == 4
    j = junction(text, expect_errors=True)
    for i in range(6):
        r, data = request(j.port, path=f"/r{i}", headers={"Authorization": f"Bearer u{i}"})
        assert r.status == 200, data
        assert field_values(json.loads(data), "X-User-Id") == [f"u{i}"]


def test_an_auth_upstream_over_tls_with_pooled_connections(junction, backends,
                                                           upcerts):  # noqa: F811
    tb = TLSBackend(upcerts)
    tb.RequestHandlerClass = AuthHandler
    tb.peers, tb.hung = set(), threading.Event()
    try:
        (b,) = backends(1)
        text = cfg(b.port, tb.port, upstream_extra="").replace("workers: 2", "workers: 1")
        text = text.replace(
            "    servers: [ { address: 127.0.0.1:%d } ]\n" % tb.port,
            "    servers: [ { address: 127.0.0.1:%d } ]\n"
            "    tls: { ca: %s/ca.crt, sni: backend.test }\n"
            % (tb.port, upcerts))
        assert "tls: { ca:" in text
        j = junction(text)
        r, data = request(j.port, path="/api", headers={"Authorization": "Bearer tlsuser"})
        assert r.status == 200, data
        assert field_values(json.loads(data), "X-User-Id") == ["tlsuser"]
        r, data = request(j.port, path="/deny401")
        assert r.status == 401 and data == b"token expired\n"
        assert tb.handshakes == 1  # one TLS connection, kept alive between the two
    finally:
        tb.hung.set()
        tb.close()


def test_shutdown_with_a_subrequest_pending_is_clean(junction, backends, raw_server):
    silent = Silent(raw_server)
    (b,) = backends(1)
    text = cfg(b.port, silent.port, fa="upstream: auth, path: /check, timeout: 60s")
    j = junction(text.replace("access_log:", "timeouts: { drain: 1s }\naccess_log:"))
    s = socket.create_connection(("127.0.0.1", j.port), timeout=30)
    s.sendall(b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_for(lambda: silent.accepted == 1, what="the subrequest")
    assert j.stop() == 0  # the fixture then checks the log: no leak, no sanitizer report
    wait_for(lambda: silent.closed == 1, what="the service's connection closed")
    s.close()


def test_a_hashing_auth_upstream_keys_on_the_client_request(junction, backends, auth):
    (b,) = backends(1)
    a1, a2 = auth(), auth()
    text = cfg(b.port, a1.port).replace(
        "  auth:\n    servers: [ { address: 127.0.0.1:%d } ]\n" % a1.port,
        "  auth:\n    balance: consistent_hash\n    hash_key: header:Authorization\n"
        "    servers: [ { address: 127.0.0.1:%d }, { address: 127.0.0.1:%d } ]\n"
        % (a1.port, a2.port))
    assert "consistent_hash" in text
    j = junction(text)
    for user in ("ann", "ben", "cid", "dan"):
        for _ in range(4):
            r, data = request(j.port, path="/h", headers={"Authorization": f"Bearer {user}"})
            assert r.status == 200
    # Each user was always checked by the same server.
    for user in ("ann", "ben", "cid", "dan"):
        asked = ["Authorization", f"Bearer {user}"]
        seen = [srv for srv in (a1, a2) if any(asked in rec["headers"] for rec in srv.received)]
        assert len(seen) == 1, user


def limited(b, a, limits):
    return cfg(b.port, a.port).replace("workers: 2", "workers: 1").replace(
        "  auth:\n    servers: [ { address: 127.0.0.1:%d } ]\n" % a.port,
        "  auth:\n    limits: %s\n    servers: [ { address: 127.0.0.1:%d } ]\n" % (limits, a.port))


def test_checks_queue_at_the_auth_servers_connection_limit(junction, backends, auth):
    (b,) = backends(1)
    a = auth()
    text = limited(b, a, "{ max_connections: 1, max_pending: 10, queue_timeout: 20s }")
    assert "max_pending" in text
    j = junction(text)
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(
        request(j.port, path=f"/gate/{i}")[0].status)) for i in range(4)]
    for t in threads:
        t.start()
    wait_for(lambda: a.waiting == 1, what="the first check")
    a.gate.set()
    for t in threads:
        t.join()
    assert results == [200] * 4
    assert len(a.peers) == 1  # one connection at a time, reused by the queued checks


def test_a_check_at_the_connection_limit_without_a_queue_gives_503(junction, backends, auth):
    (b,) = backends(1)
    a = auth()
    j = junction(limited(b, a, "{ max_connections: 1 }"), expect_errors=True)
    first = []
    t = threading.Thread(target=lambda: first.append(request(j.port, path="/gate")[0].status))
    t.start()
    wait_for(lambda: a.waiting == 1, what="the first check")
    r, data = request(j.port, path="/api")
    assert r.status == 503
    assert json.loads(data)["error"] == "authorization service unavailable"
    a.gate.set()
    t.join()
    assert first == [200]


def test_h2load_multiplexed_checks_none_failing(junction, backends, auth):
    (b,) = backends(1)
    a = auth()
    j = junction(cfg(b.port, a.port))
    n = 2000
    p = subprocess.run(["h2load", "-n", str(n), "-c", "4", "-m", "10",
                        "-H", "Authorization: Bearer load", f"http://127.0.0.1:{j.port}/load"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"requests: {n} total, {n} started, {n} done, {n} succeeded, 0 failed" in p.stdout, \
        p.stdout + j.stderr()
    assert len(a.received) == n


def test_a_2xx_body_is_dropped_and_its_connection_reused(junction, backends, auth):
    (b,) = backends(1)
    a = auth()
    j = junction(cfg(b.port, a.port).replace("workers: 2", "workers: 1"))
    for size in (0, 10, 20000, 60000, 10, 5):
        r, data = request(j.port, path=f"/okbody/{size}")
        assert r.status == 200
        assert field_values(json.loads(data), "X-User-Id") == ["bodied"]
    assert len(a.peers) == 1  # one keep-alive connection served every check
    # A body past 64 KiB is left unread with its connection; the check passes.
    r, data = request(j.port, path="/okbody/200000")
    assert r.status == 200
    assert field_values(json.loads(data), "X-User-Id") == ["bodied"]
    r, data = request(j.port, path="/okbody/7")
    assert r.status == 200
    assert len(a.peers) == 2


def test_expect_100_continue_waits_for_the_check(junction, backends, auth, tmp_path):
    (b,) = backends(1)
    a = auth()
    j = junction(cfg(b.port, a.port))
    f = tmp_path / "up.bin"
    f.write_bytes(b"e" * 300000)
    for path, want in (("/exp", 200), ("/deny401", 401)):
        p = subprocess.run(["curl", "-sS", "-H", "Expect: 100-continue", "--data-binary", f"@{f}",
                            "-o", str(tmp_path / "out"), "-w", "%{http_code}",
                            f"http://127.0.0.1:{j.port}{path}"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert p.stdout == str(want)
    assert [r["body_len"] for r in b.received] == [300000]


def test_a_denial_carries_the_cors_headers_of_the_policy_before(junction, backends, auth):
    (b,) = backends(1)
    a = auth()
    j = junction(cfg(b.port, a.port, routes="""
  - name: api
    match: { path_prefix: / }
    upstream: app
    policies:
      - cors: { origins: ["https://app.example"] }
      - forward_auth: { upstream: auth, path: /check }
"""))
    r, data = request(j.port, path="/deny401", headers={"Origin": "https://app.example"})
    assert r.status == 401 and data == b"token expired\n"
    assert r.getheader("Access-Control-Allow-Origin") == "https://app.example"
    r, data = request(j.port, path="/ok", headers={"Origin": "https://app.example"})
    assert r.status == 200
    assert r.getheader("Access-Control-Allow-Origin") == "https://app.example"
