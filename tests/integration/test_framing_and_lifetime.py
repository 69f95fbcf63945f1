"""Framing and connection-lifetime guarantees: bytes after an answered
request, empty and HEAD responses, large heads, half-closed clients, absolute
targets, long uploads and forced shutdown."""
import http.client
import json
import signal
import socket
import threading
import time

from conftest import EchoHandler, raw_request, read_head, recv_until_close

CONF = """
workers: 1
listeners:
  - name: public
    address: 127.0.0.1:{port}
access_log: { path: none }
timeouts: { upstream_response: %s, drain: %s }
upstreams:
  app:
    servers:
      - { address: 127.0.0.1:%d }
routes:
  - name: app
    match: { path_prefix: /app }
    upstream: app
    request_headers: { set: { X-Gateway: junction } }
"""


def conf(port, response="10s", drain="10s"):
    return CONF % (response, drain, port)


def test_body_of_a_locally_answered_request_is_never_parsed_as_a_request(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port))
    smuggled = b"GET /app/admin HTTP/1.1\r\nHost: a\r\n\r\n"
    out = raw_request(j.port, b"POST /no-route HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n"
                      % len(smuggled) + smuggled)
    assert out.startswith(b"HTTP/1.1 404") and out.count(b"HTTP/1.1") == 1
    assert b.received == []


def test_requests_pipelined_after_connection_close_are_not_served(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port))
    out = raw_request(j.port, b"GET /app/1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                              b"GET /app/2 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert out.count(b"HTTP/1.1 200") == 1
    assert [r["path"] for r in b.received] == ["/app/1"]


class EmptyHandler(EchoHandler):
    def do_GET(self):
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_empty_response_keeps_its_zero_length(junction, backends):
    (b,) = backends(1, handler=EmptyHandler)
    j = junction(conf(b.port))
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=10)
    for _ in range(2):  # the second request proves the connection stayed in sync
        c.request("GET", "/app/empty")
        r = c.getresponse()
        assert r.status == 201 and r.getheader("Content-Length") == "0" and r.read() == b""


def test_head_error_response_has_no_body(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port))
    out = raw_request(j.port, b"HEAD /missing HTTP/1.1\r\nHost: a\r\n\r\n"
                              b"GET /app/next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    first, rest = out.split(b"\r\n\r\n", 1)
    assert first.startswith(b"HTTP/1.1 404") and b"Content-Length:" in first
    assert rest.startswith(b"HTTP/1.1 200")


class BigHeaderHandler(EchoHandler):
    def do_GET(self):
        self.send_response(200)
        for i in range(10):
            self.send_header("X-Big-%d" % i, "v" * 2000)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def test_response_head_larger_than_a_buffer_is_relayed(junction, backends):
    (b,) = backends(1, handler=BigHeaderHandler)
    j = junction(conf(b.port))
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=10)
    c.request("GET", "/app/big")
    r = c.getresponse()
    assert r.status == 200 and r.read() == b"ok" and len(r.getheader("X-Big-9")) == 2000


def test_client_that_half_closes_after_its_body_gets_the_response(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port))
    s = socket.create_connection(("127.0.0.1", j.port), timeout=10)
    s.sendall(b"POST /app/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    s.shutdown(socket.SHUT_WR)
    out = recv_until_close(s)
    assert out.startswith(b"HTTP/1.1 200") and b'"body_len": 5' in out


def test_absolute_form_target_sets_the_upstream_host(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port))
    raw_request(j.port, b"GET http://public.example/app/x HTTP/1.1\r\nHost: admin.internal\r\n"
                        b"Connection: close\r\n\r\n")
    h = {k.lower(): v for k, v in b.received[0]["headers"]}
    assert h["host"] == "public.example"


def test_connection_header_cannot_remove_a_header_the_route_sets(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port))
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=10)
    c.request("GET", "/app/x", headers={"Connection": "X-Gateway"})
    rec = json.loads(c.getresponse().read())
    assert [v for k, v in rec["headers"] if k.lower() == "x-gateway"] == ["junction"]


def test_slow_upload_is_not_cut_by_the_response_timeout(junction, backends):
    (b,) = backends(1)
    j = junction(conf(b.port, response="300ms"))
    s = socket.create_connection(("127.0.0.1", j.port), timeout=20)
    s.sendall(b"POST /app/up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nConnection: close\r\n\r\n")
    for i in range(10):  # the upload itself lasts longer than upstream_response
        s.sendall(b"x")
        time.sleep(0.1)
    out = recv_until_close(s)
    assert out.startswith(b"HTTP/1.1 200") and b'"body_len": 10' in out


class Stuck(EchoHandler):
    release = threading.Event()

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        self.wfile.write(b"x" * 1000)
        self.wfile.flush()
        Stuck.release.wait(30)


def test_drain_timeout_closes_busy_connections_and_exits_cleanly(junction, backends):
    Stuck.release.clear()
    (b,) = backends(1, handler=Stuck)
    j = junction(conf(b.port, drain="300ms"))
    clients = []
    for i in range(5):
        s = socket.create_connection(("127.0.0.1", j.port), timeout=20)
        s.sendall(b"GET /app/stuck HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_head(s).startswith(b"HTTP/1.1 200")
        clients.append(s)
    j.proc.send_signal(signal.SIGTERM)
    try:
        assert j.proc.wait(20) == 0
    finally:
        Stuck.release.set()
        for s in clients:
            s.close()
