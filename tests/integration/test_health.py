"""Active health checks, passive outlier ejection and the all-down 503,
through the real binary with real backends on 127.0.0.1."""
import http.client
import json
import re
import socket
import threading

from conftest import EchoHandler, read_head, wait_for

HEAD = """
workers: 2
listeners:
  - name: public
    address: 127.0.0.1:{port}
access_log: { path: none }
error_log: { level: info }
routes:
  - name: app
    upstream: app
upstreams:
  app:
"""


class Checked(EchoHandler):
    """Answers /healthz with the server's health_status; echoes the rest."""

    def handle_any(self):
        if self.path == "/healthz":
            self.server.checks += 1
            self.send_response(self.server.health_status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if getattr(self.server, "fail_status", 0):
            self.server.received.append({"path": self.path})
            self.send_response(self.server.fail_status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        EchoHandler.handle_any(self)

    do_GET = do_HEAD = handle_any


def checked(backends, names):
    out = backends(len(names), handler=Checked, names=names)
    for b in out:
        b.health_status = 200
        b.checks = 0
        b.fail_status = 0
    return out


def get(port, path="/x", headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body, r


def servers_of(port, n):
    """Which backend answered each of n requests."""
    out = []
    for _ in range(n):
        status, body, _ = get(port)
        assert status == 200, body
        out.append(json.loads(body)["server"])
    return out


def upstream(servers, extra):
    lines = "\n".join("      - { address: 127.0.0.1:%d }" % s.port for s in servers)
    return HEAD + "    servers:\n" + lines + "\n" + extra


HTTP_CHECK = """    health: { path: /healthz, interval: 50ms, timeout: 40ms, healthy_threshold: 2,
              unhealthy_threshold: 2 }
"""


def test_failing_check_takes_a_server_out_and_recovery_brings_it_back(junction, backends):
    a, b = checked(backends, ["a", "b"])
    j = junction(upstream([a, b], HTTP_CHECK))
    wait_for(lambda: a.checks >= 2 and b.checks >= 2, what="checks to run")
    assert set(servers_of(j.port, 10)) == {"a", "b"}
    b.health_status = 503
    wait_for(lambda: "127.0.0.1:%d is down" % b.port in j.stderr(), what="b to be marked down")
    assert set(servers_of(j.port, 20)) == {"a"}
    b.health_status = 200
    wait_for(lambda: "127.0.0.1:%d is up" % b.port in j.stderr(), what="b to be marked up")
    assert set(servers_of(j.port, 10)) == {"a", "b"}


def test_one_checker_per_upstream_whatever_the_number_of_workers(junction, raw_server):
    """A check that never answers is held until its timeout closes it: with
    one checker per upstream, checks to a server never overlap; a checker per
    worker (two here) would hold two at once."""
    lock = threading.Lock()

    def silent(srv, c):
        head = read_head(c)
        with lock:
            srv.inflight += 1
            srv.most = max(srv.most, srv.inflight)
            srv.checks += head.startswith(b"GET /healthz ")
        try:
            while c.recv(4096):
                pass
        finally:
            with lock:
                srv.inflight -= 1

    s = raw_server(silent)
    s.inflight = s.most = s.checks = 0
    j = junction(HEAD + """    servers: [ { address: 127.0.0.1:%d } ]
    health: { path: /healthz, interval: 100ms, timeout: 100ms }
""" % s.port)
    wait_for(lambda: s.checks >= 6, what="six checks")
    assert s.most == 1
    assert "is down (health check)" in j.stderr()


def test_expect_status_is_honoured(junction, backends):
    a, b = checked(backends, ["a", "b"])
    b.health_status = 204
    j = junction(upstream([a, b], """    health: { path: /healthz, interval: 50ms, timeout: 40ms, unhealthy_threshold: 1,
              expect_status: [200] }
"""))
    wait_for(lambda: "127.0.0.1:%d is down" % b.port in j.stderr(), what="b down on 204")
    assert set(servers_of(j.port, 10)) == {"a"}


def test_tcp_check_follows_the_listening_socket(junction, backends):
    (a,) = checked(backends, ["a"])
    gone = socket.socket()
    gone.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    gone.bind(("127.0.0.1", 0))
    gone.listen(16)
    port = gone.getsockname()[1]
    j = junction(HEAD + """    servers: [ { address: 127.0.0.1:%d }, { address: 127.0.0.1:%d } ]
    health: { type: tcp, interval: 50ms, timeout: 40ms, unhealthy_threshold: 2, healthy_threshold: 1 }
""" % (a.port, port))
    gone.close()
    wait_for(lambda: "127.0.0.1:%d is down" % port in j.stderr(), what="closed port marked down")
    again = socket.socket()
    again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    again.bind(("127.0.0.1", port))
    again.listen(16)
    try:
        wait_for(lambda: "127.0.0.1:%d is up" % port in j.stderr(), what="reopened port marked up")
    finally:
        again.close()


def test_every_server_down_answers_503_without_trying_them(junction, backends):
    a, b = checked(backends, ["a", "b"])
    a.health_status = b.health_status = 500
    j = junction(upstream([a, b], HTTP_CHECK))
    wait_for(lambda: j.stderr().count(" is down (health check)") == 2, what="both down")
    status, body, r = get(j.port)
    assert status == 503
    assert r.getheader("Content-Type") == "application/json"
    assert json.loads(body)["error"] == "no upstream server available"
    assert a.received == [] and b.received == []


OUTLIER = """    outlier: { consecutive_failures: 3, ejection_time: %s, max_ejected_percent: %d }
"""


def test_consecutive_failures_eject_a_server(junction, backends):
    good1, good2, bad = checked(backends, ["good1", "good2", "bad"])
    bad.fail_status = 503
    j = junction(upstream([good1, good2, bad], OUTLIER % ("1h", 50)), expect_errors=False)
    statuses = [get(j.port)[0] for _ in range(40)]
    assert len(bad.received) == 3
    assert statuses.count(503) == 3
    assert re.search(r"127\.0\.0\.1:%d ejected for 3600000 ms after 3 failures" % bad.port,
                     j.stderr())


def test_ejection_never_takes_more_than_the_cap(junction, backends):
    good, bad1, bad2 = checked(backends, ["good", "bad1", "bad2"])
    bad1.fail_status = bad2.fail_status = 502
    j = junction(upstream([good, bad1, bad2], OUTLIER % ("1h", 50)))
    for _ in range(60):
        get(j.port)
    # 50% of three servers is one: the second failing server stays in
    assert j.stderr().count(" ejected for ") == 1
    assert min(len(bad1.received), len(bad2.received)) == 3
    assert max(len(bad1.received), len(bad2.received)) > 3


def test_an_ejected_server_comes_back_and_a_second_ejection_lasts_twice_as_long(junction, backends):
    good, bad = checked(backends, ["good", "bad"])
    bad.fail_status = 503
    j = junction(upstream([good, bad], OUTLIER % ("300ms", 50)))
    wait_for(lambda: get(j.port) and "ejected for 300 ms" in j.stderr(), what="first ejection")
    wait_for(lambda: get(j.port) and "ejection over" in j.stderr(), what="the server's return")
    wait_for(lambda: get(j.port) and "ejected for 600 ms" in j.stderr(), what="second ejection")


def test_slow_start_gives_a_returning_server_a_tenth_of_its_weight(junction, backends):
    a, b = checked(backends, ["a", "b"])
    conf = upstream([a, b], HTTP_CHECK + "    slow_start: 1h\n").replace("workers: 2",
                                                                          "workers: 1")
    j = junction(conf)
    wait_for(lambda: a.checks >= 2 and b.checks >= 2, what="checks to run")
    b.health_status = 503
    wait_for(lambda: "127.0.0.1:%d is down" % b.port in j.stderr(), what="b down")
    b.health_status = 200
    wait_for(lambda: "127.0.0.1:%d is up" % b.port in j.stderr(), what="b up")
    seen = servers_of(j.port, 110)
    # an hour's ramp starts at a tenth: weights 1/10 of a's, about 10 of 110
    assert 7 <= seen.count("b") <= 13, seen.count("b")


def test_a_malformed_check_response_fails_the_check(junction, raw_server):
    def bad(srv, c):
        read_head(c)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n")
        c.close()

    s = raw_server(bad)
    j = junction(HEAD + """    servers: [ { address: 127.0.0.1:%d } ]
    health: { path: /healthz, interval: 50ms, timeout: 50ms, unhealthy_threshold: 1 }
""" % s.port)
    wait_for(lambda: "is down (health check)" in j.stderr(), what="the server marked down")
    assert "invalid response" in j.stderr()
