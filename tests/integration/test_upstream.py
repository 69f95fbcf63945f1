"""Upstream connection handling: pooled connection reuse and its limits,
retry of safe requests on stale connections, connect timeouts, rewrites."""
import http.client
import json
import socket
import threading

from conftest import free_port, read_head, recv_until_close, wait_for

CONF = """
workers: 1
listeners:
  - name: public
    address: 127.0.0.1:{port}
access_log: { path: none }
timeouts: { upstream_connect: %s, upstream_response: 10s, client_idle: %s }
upstreams:
  app:
    servers:
      - { address: 127.0.0.1:%d }
routes:
  - name: rewrite
    match: { path_regex: "^/old/([a-z]+)/(\\\\d+)$" }
    rewrite: { pattern: "^/old/([a-z]+)/(\\\\d+)$", replace: "/new/$2/$1" }
    upstream: app
  - name: low
    match: { path_prefix: /p }
    upstream: app
    response_headers: { add: { X-Route: low } }
  - name: high
    match: { path_prefix: /p, headers: { X-Tier: gold } }
    priority: 10
    upstream: app
    response_headers: { add: { X-Route: high } }
  - name: v2
    match: { path: /api, query: { version: "2" } }
    respond: { status: 200, body: "v2\\n" }
  - name: app
    upstream: app
"""


def conf(port, connect="2s", idle="60s"):
    return CONF % (connect, idle, port)


def fetch(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r, r.read()


def test_rewrite_uses_regex_captures(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port))
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=10)
    r, data = fetch(c, "GET", "/old/books/42?x=1")
    assert r.status == 200 and json.loads(data)["path"] == "/new/42/books?x=1"


def test_priority_beats_file_order_and_headers_match(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port))
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=10)
    r, _ = fetch(c, "GET", "/p/1", headers={"X-Tier": "gold"})
    assert r.getheader("X-Route") == "high"
    r, _ = fetch(c, "GET", "/p/1", headers={"X-Tier": "silver"})
    assert r.getheader("X-Route") == "low"


class FlakyKeepAlive:
    """Answers the first request of each connection with keep-alive, then
    closes the connection when the second request arrives, without a word:
    the race every pooled proxy has to survive."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.connections = 0
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        head = read_head(c)
        self.requests.append(head.split(b"\r\n")[0])
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        head = read_head(c)  # the second request on this connection...
        if head:
            self.requests.append(head.split(b"\r\n")[0] + b" (dropped)")
        c.close()            # ...is dropped without an answer

    def close(self):
        self.sock.close()


def test_safe_request_is_retried_when_pooled_connection_dies(junction):
    s = FlakyKeepAlive()
    try:
        j = junction(conf(s.port), expect_errors=True)
        c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=10)
        assert fetch(c, "GET", "/a")[0].status == 200
        r, data = fetch(c, "GET", "/b")
        assert r.status == 200 and data == b"ok"
        assert s.connections == 2
    finally:
        s.close()


def test_unsafe_request_is_not_replayed(junction):
    s = FlakyKeepAlive()
    try:
        j = junction(conf(s.port), expect_errors=True)
        c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=10)
        assert fetch(c, "GET", "/a")[0].status == 200
        r, _ = fetch(c, "POST", "/b", body=b"pay once")
        assert r.status == 502
        assert sum(1 for line in s.requests if line.startswith(b"POST")) == 1
    finally:
        s.close()


def test_connect_timeout_gives_504(junction):
    # A listener that never accepts, with its queue already full: further
    # SYNs are dropped, so a connect hangs until Junction's deadline.
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = []
    for _ in range(4):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", port))
        fillers.append(f)
    try:
        j = junction(conf(port, connect="300ms"), expect_errors=True)
        c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=20)
        r, data = fetch(c, "GET", "/")
        assert r.status == 504
        assert "connect" in json.loads(data)["error"]
    finally:
        for f in fillers:
            f.close()
        full.close()


def test_idle_client_connection_is_closed_after_client_idle(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port, idle="300ms"))
    s = socket.create_connection(("127.0.0.1", j.port), timeout=20)
    s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    data = recv_until_close(s)
    assert data.startswith(b"HTTP/1.1 200")  # answered, then closed once idle


def test_many_concurrent_clients_all_get_answers(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port))
    results = []

    def worker():
        c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=20)
        for i in range(20):
            r, _ = fetch(c, "GET", "/c/%d" % i)
            results.append(r.status)
        c.close()

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 200


def test_query_matcher_uses_decoded_values(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port))
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=10)
    assert fetch(c, "GET", "/api?x=1&version=%32")[1] == b"v2\n"
    r, data = fetch(c, "GET", "/api?version=3")
    assert json.loads(data)["path"] == "/api?version=3"  # fell through to the catch-all
