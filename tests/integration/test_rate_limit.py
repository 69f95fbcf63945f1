"""rate_limit and concurrency_limit through the real binary with 4 workers:
exactly `limit` requests pass at one key under 200 concurrent clients (both
algorithms), the RateLimit-* fields count down exactly, several limits report
the tightest, the keys (header, consumer, route) keep their counters apart,
429s carry Retry-After and the JSON body and never reach the upstream, and a
concurrency limit never leaks a count."""
import http.client
import json
import os
import socket
import struct
import threading
import time

import pytest

from conftest import SANITIZED, Backend, EchoHandler, wait_for


class WideBackend(Backend):
    """A backend whose listen queue takes the burst of connections a 4-worker
    Junction opens at once (socketserver's default queue is 5)."""
    request_queue_size = 512


@pytest.fixture
def wide_backend():
    b = WideBackend("wide")
    yield b
    b.close()


def cfg(b, policies="", top="", routes=None, workers=4):
    routes = routes if routes is not None else """
  - name: limited
    match: { path_prefix: / }
    upstream: app
    policies:
%s
""" % policies
    return """
workers: %d
listeners:
  - name: public
    address: 127.0.0.1:{port0}
  - name: v6
    address: "[::1]:{port1}"
access_log: { path: none }
upstreams:
  app:
    servers: [ { address: 127.0.0.1:%d } ]
%s
routes:
%s
""" % (workers, b.port, top, routes)


def get(port, path="/", headers=None, host="127.0.0.1", conn=None):
    c = conn or http.client.HTTPConnection(host, port, timeout=30)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    if conn is None:
        c.close()
    return r, data


def fire(port, clients, per_client, path="/", headers=None):
    """clients threads, each on its own keep-alive connection, all started
    at once, each sending per_client requests. Returns the statuses."""
    statuses = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)
    errors = []

    def client():
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            c.connect()
            barrier.wait(60)
            mine = []
            for _ in range(per_client):
                c.request("GET", path, headers=headers or {})
                r = c.getresponse()
                r.read()
                mine.append(r.status)
                if r.getheader("Connection", "").lower() == "close":
                    c.close()
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            c.close()
            with lock:
                statuses.extend(mine)
        except Exception as e:  # reported below, not lost in a thread
            errors.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    return statuses


@pytest.mark.parametrize("limit", [
    "{ limit: 100, window: 1h }",
    "{ limit: 100, window: 1h, algorithm: sliding_window }",
    "{ limit: 1, window: 1h, algorithm: token_bucket, burst: 100 }",
], ids=["default", "sliding_window", "token_bucket"])
def test_exactly_limit_pass_at_one_key_under_200_concurrent_clients(junction, wide_backend, limit):
    b = wide_backend
    j = junction(cfg(b, "      - rate_limit: " + limit), nports=2)
    statuses = fire(j.port, 200, 10)
    assert len(statuses) == 2000
    assert statuses.count(200) == 100, {s: statuses.count(s) for s in set(statuses)}
    assert statuses.count(429) == 1900
    assert len(b.received) == 100


def test_remaining_counts_down_by_one_then_429_with_retry_after(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, "      - rate_limit: { limit: 5, window: 1h }"), nports=2)
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=30)
    for want in (4, 3, 2, 1, 0):
        r, _ = get(j.port, conn=c)
        assert r.status == 200
        assert r.getheader("RateLimit-Limit") == "5"
        assert r.getheader("RateLimit-Remaining") == str(want)
        # The quota is whole again an hour after this (the newest) request.
        assert 3598 <= int(r.getheader("RateLimit-Reset")) <= 3600
        assert r.getheader("RateLimit-Policy") == "5;w=3600"
    r, data = get(j.port, conn=c)
    assert r.status == 429
    assert r.getheader("RateLimit-Remaining") == "0"
    assert r.getheader("RateLimit-Limit") == "5"
    # The first request leaves the window an hour after it was made.
    assert 3590 <= int(r.getheader("Retry-After")) <= 3600
    body = json.loads(data)
    assert body["error"] == "rate limit exceeded"
    assert body["request_id"] == r.getheader("X-Request-Id")
    assert r.getheader("Content-Type") == "application/json"
    assert len(b.received) == 5


def test_token_bucket_headers_report_the_burst(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, "      - rate_limit: { limit: 1, window: 1h, algorithm: token_bucket, "
                        "burst: 3 }"), nports=2)
    seen = []
    for _ in range(4):
        r, _ = get(j.port)
        seen.append((r.status, r.getheader("RateLimit-Limit"), r.getheader("RateLimit-Remaining")))
    assert seen == [(200, "3", "2"), (200, "3", "1"), (200, "3", "0"), (429, "3", "0")]
    r, _ = get(j.port)
    assert 3590 <= int(r.getheader("Retry-After")) <= 3600  # one token an hour
    # Full again once three tokens came back: three hours.
    assert 3 * 3600 - 10 <= int(r.getheader("RateLimit-Reset")) <= 3 * 3600
    assert r.getheader("RateLimit-Policy") == "1;w=3600;burst=3"


def test_several_limits_report_the_one_with_least_remaining(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, """
      - rate_limit: { limit: 10, window: 1h }
      - rate_limit: { limit: 3, window: 1h, key: "header:X-Key" }
"""), nports=2)

    def one(key):
        r, _ = get(j.port, headers={"X-Key": key})
        return (r.status, r.getheader("RateLimit-Limit"), r.getheader("RateLimit-Remaining"),
                r.getheader("RateLimit-Policy"))

    both = "10;w=3600, 3;w=3600"
    # The first counts every request that reaches it, the refused ones too.
    assert one("a") == (200, "3", "2", both)      # 9 left of 10, 2 of 3
    assert one("b") == (200, "3", "2", both)      # 8 and 2
    assert one("b") == (200, "3", "1", both)      # 7 and 1
    assert one("b") == (200, "3", "0", both)      # 6 and 0
    assert one("b") == (429, "3", "0", both)      # 5, and refused by the second
    assert one("c") == (200, "3", "2", both)      # 4 and 2
    assert one("d") == (200, "3", "2", both)      # 3 and 2
    assert one("e") == (200, "10", "2", both)     # 2 and 2: a tie, the first reports
    assert one("f") == (200, "10", "1", both)     # 1 and 2
    assert one("g") == (200, "10", "0", both)     # 0 and 2
    assert one("h") == (429, "10", "0", "10;w=3600")  # the first refuses; the second never ran
    assert len(b.received) == 9


def test_header_key_separates_counters_and_a_missing_header_counts_by_address(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, '      - rate_limit: { limit: 2, window: 1h, key: "header:X-Key" }'),
                 nports=2)
    st = lambda h: get(j.port, headers=h)[0].status  # noqa: E731
    assert [st({"X-Key": "a"}) for _ in range(3)] == [200, 200, 429]
    assert [st({"X-Key": "b"}) for _ in range(3)] == [200, 200, 429]
    assert [st({}) for _ in range(3)] == [200, 200, 429]
    # The address's counter is not the counter of a header that names it.
    assert st({"X-Key": "127.0.0.1"}) == 200
    # Another address has its own.
    r, _ = get(j.ports[1], host="::1")
    assert r.status == 200


def test_consumer_key_without_a_consumer_counts_by_client_address(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, "      - rate_limit: { limit: 2, window: 1h, key: consumer }"), nports=2)
    assert [get(j.port)[0].status for _ in range(3)] == [200, 200, 429]
    assert [get(j.ports[1], host="::1")[0].status for _ in range(3)] == [200, 200, 429]


def test_top_level_limit_is_shared_by_routes_unless_keyed_by_route(junction, backends):
    (b,) = backends(1)
    routes = """
  - name: a
    match: { path_prefix: /a }
    upstream: app
  - name: b
    match: { path_prefix: /b }
    upstream: app
  - name: local
    match: { path_prefix: /local }
    respond: { status: 204 }
"""
    j = junction(cfg(b, top="policies:\n  - rate_limit: { limit: 3, window: 1h }\n",
                     routes=routes), nports=2)
    assert [get(j.port, p)[0].status for p in ("/a", "/b", "/a", "/b")] == [200, 200, 200, 429]
    # A local answer is limited too, and carries the fields.
    r, _ = get(j.port, "/local")
    assert r.status == 429 and r.getheader("RateLimit-Remaining") == "0"

    (b2,) = backends(1)
    j2 = junction(cfg(b2, top="policies:\n  - rate_limit: { limit: 2, window: 1h, key: route }\n",
                      routes=routes), nports=2)
    assert [get(j2.port, "/a")[0].status for _ in range(3)] == [200, 200, 429]
    assert [get(j2.port, "/b")[0].status for _ in range(3)] == [200, 200, 429]
    r, _ = get(j2.port, "/local")
    assert r.status == 204 and r.getheader("RateLimit-Remaining") == "1"


def test_upstream_ratelimit_fields_are_replaced_by_the_gateway_s(junction, backends):
    class Claims(EchoHandler):
        def handle_any(self):
            self.send_response(200)
            self.send_header("RateLimit-Remaining", "999")
            self.send_header("RateLimit-Limit", "999")
            self.send_header("Content-Length", "0")
            self.end_headers()
        do_GET = handle_any

    (b,) = backends(1, handler=Claims)
    j = junction(cfg(b, "      - rate_limit: { limit: 4, window: 1m }"), nports=2)
    r, _ = get(j.port)
    assert r.status == 200
    assert r.msg.get_all("RateLimit-Remaining") == ["3"]
    assert r.msg.get_all("RateLimit-Limit") == ["4"]
    assert 59 <= int(r.getheader("RateLimit-Reset")) <= 60


# ---- concurrency_limit ----

def holding_handler():
    """A fresh handler class whose requests wait for its own gate."""
    class Hold(EchoHandler):
        gate = threading.Event()

        lock = threading.Lock()

        def handle_any(self):
            with Hold.lock:
                self.server.held += 1
                self.server.waiting += 1
            try:
                Hold.gate.wait(60)
                EchoHandler.handle_any(self)
            finally:
                with Hold.lock:
                    self.server.waiting -= 1
        do_GET = handle_any
    return Hold


def send_raw(port, path="/", headers=""):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path, headers)).encode())
    return s


def read_status(s):
    data = b""
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ")[1]) if data else None


def abort(s):
    """Closes with a reset, as a client that gave up."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_concurrency_limit_counts_requests_in_flight(junction, backends):
    Hold = holding_handler()
    (b,) = backends(1, handler=Hold)
    b.held = b.waiting = 0
    j = junction(cfg(b, "      - concurrency_limit: { max: 2 }"), nports=2)
    held = [send_raw(j.port), send_raw(j.port)]
    wait_for(lambda: b.held == 2, what="two requests held by the backend")
    r, data = get(j.port)
    assert r.status == 429
    assert json.loads(data)["error"] == "concurrency limit exceeded"
    Hold.gate.set()
    assert [read_status(s) for s in held] == [200, 200]
    for s in held:
        s.close()
    assert [get(j.port)[0].status for _ in range(3)] == [200, 200, 200]


def test_concurrency_limit_status_503_and_key_header(junction, backends):
    Hold = holding_handler()
    (b,) = backends(1, handler=Hold)
    b.held = b.waiting = 0
    j = junction(cfg(b, '      - concurrency_limit: { max: 1, status: 503, key: "header:X-Key" }'),
                 nports=2)
    s = send_raw(j.port, headers="X-Key: a\r\n")
    wait_for(lambda: b.held == 1, what="one request held")
    assert get(j.port, headers={"X-Key": "a"})[0].status == 503
    other = send_raw(j.port, headers="X-Key: b\r\n")  # another key has its own count
    wait_for(lambda: b.held == 2, what="the other key's request held")
    Hold.gate.set()
    assert read_status(s) == 200 and read_status(other) == 200
    s.close()
    other.close()


def hold_places(j, b, Hold, n):
    """With the backend holding, sends n + 1 requests one by one; returns how
    many the backend got to hold before the first refusal, then lets them go."""
    Hold.gate.clear()
    b.held = 0
    socks, got = [], 0
    for _ in range(n + 1):
        s = send_raw(j.port)
        socks.append(s)
        s.settimeout(0.05)
        def answered_or_held():
            if b.held > got:
                return "held"
            try:
                return "answered" if s.recv(1, socket.MSG_PEEK) else "closed"
            except (socket.timeout, BlockingIOError):
                return None
        if wait_for(answered_or_held, what="held or answered") != "held":
            break
        got += 1
    Hold.gate.set()
    for s in socks:
        s.settimeout(30)
        read_status(s)
        s.close()
    wait_for(lambda: b.waiting == 0, what="the backend to answer")
    return got


def test_concurrency_limit_never_leaks_after_aborted_clients(junction, backends):
    Hold = holding_handler()
    (b,) = backends(1, handler=Hold)
    b.held = b.waiting = 0
    j = junction(cfg(b, "      - concurrency_limit: { max: 3 }"), nports=2)
    # Clients that give up at every stage: before their head is complete,
    # right after sending it, and while the upstream holds them.
    for i in range(60):
        s = socket.create_connection(("127.0.0.1", j.port), timeout=30)
        if i % 3 == 0:
            s.sendall(b"GET / HTTP/1.1\r\nHo")
        else:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        if i % 3 == 2 and b.held < 3:
            wait_for(lambda: b.held >= 1, what="a request held")
        abort(s)
    assert b.held >= 1  # some reached the upstream and held a place
    Hold.gate.set()  # the upstream answers; Junction finds the clients gone
    wait_for(lambda: b.waiting == 0, what="the backend to answer")
    # Every place is free again: exactly 3 can be held at once (retried while
    # Junction is still closing the streams of the aborted clients).
    wait_for(lambda: hold_places(j, b, Hold, 3) == 3, timeout=30, what="three places free")
    assert hold_places(j, b, Hold, 3) == 3


# ---- memory ----

def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(SANITIZED, reason="the sanitizers' quarantine makes RSS meaningless")
def test_many_distinct_keys_keep_memory_bounded(junction, backends):
    (b,) = backends(1)
    # A local answer: the test is about Junction's memory, not the backend.
    j = junction(cfg(b, routes="""
  - name: local
    match: { path_prefix: / }
    respond: { status: 204 }
    policies:
      - rate_limit: { limit: 50, window: 1h, key: "header:X-Key", max_keys: 1000 }
"""), nports=2)

    def send(lo, hi):
        def worker(start):
            c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=30)
            for k in range(start, hi, 4):
                r, _ = get(j.port, headers={"X-Key": "key-%d" % k}, conn=c)
                assert r.status == 204 and r.getheader("RateLimit-Remaining") == "49"
            c.close()
        ts = [threading.Thread(target=worker, args=(lo + i,)) for i in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(300)

    send(0, 4000)
    before = rss_kb(j.proc.pid)
    send(4000, 20000)
    after = rss_kb(j.proc.pid)
    print("VmRSS", before, after)
    assert after - before < 1536, (before, after)


def test_fields_ride_on_later_policies_refusals_and_junction_s_own_errors(junction, backends):
    (b,) = backends(1)
    routes = """
  - name: denied
    match: { path_prefix: /denied }
    upstream: app
    policies:
      - rate_limit: { limit: 3, window: 1h }
      - ip_filter: { deny: [127.0.0.0/8] }
  - name: down
    match: { path_prefix: /down }
    upstream: nowhere
    policies:
      - rate_limit: { limit: 3, window: 1h }
"""
    top = "  nowhere:\n    servers: [ { address: 127.0.0.1:1 } ]\n"
    j = junction(cfg(b, top=top, routes=routes), nports=2)
    r, data = get(j.port, "/denied")
    assert r.status == 403 and json.loads(data)["error"] == "forbidden"
    assert r.getheader("RateLimit-Remaining") == "2" and r.getheader("RateLimit-Limit") == "3"
    r, _ = get(j.port, "/down")
    assert r.status == 502
    assert r.getheader("RateLimit-Remaining") == "2"
    assert b.received == []


# ---- HTTP/2 ----

def test_http2_streams_are_counted_and_reset_streams_release_their_place(junction, backends):
    from h2client import H2Client
    Hold = holding_handler()
    (b,) = backends(1, handler=Hold)
    b.held = b.waiting = 0
    routes = """
  - name: counted
    match: { path_prefix: /counted }
    upstream: app
    policies:
      - rate_limit: { limit: 3, window: 1h }
  - name: held
    match: { path_prefix: /held }
    upstream: app
    policies:
      - concurrency_limit: { max: 2 }
"""
    j = junction(cfg(b, routes=routes), nports=2)
    Hold.gate.set()
    c = H2Client(j.port)
    sids = [c.request(path="/counted") for _ in range(4)]
    c.pump(lambda: all(c.responses[s].done for s in sids))
    got = sorted((c.responses[s].status, c.responses[s].headers["ratelimit-remaining"])
                 for s in sids)
    assert got == [(200, "0"), (200, "1"), (200, "2"), (429, "0")]
    # Two streams held upstream take both places; resetting them frees them.
    Hold.gate.clear()
    b.held = 0
    held = [c.request(path="/held") for _ in range(2)]
    wait_for(lambda: b.held == 2, what="two streams held")
    assert c.get("/held").status == 429
    for s in held:
        c.conn.reset_stream(s)
    c.flush()
    # The RST_STREAM frames come before the next HEADERS on the connection,
    # so both places are free when it arrives: it is held, not refused.
    sid = c.request(path="/held")
    wait_for(lambda: b.held == 3, what="the third stream held, not refused")
    Hold.gate.set()
    c.pump(lambda: c.responses[sid].done)
    assert c.responses[sid].status == 200
    c.close()


def test_configuration_errors_are_reported_with_positions(tmp_path, backends):
    import subprocess
    from conftest import BIN
    (b,) = backends(1)
    text = cfg(b, """
      - rate_limit: { limit: 10, window: 1s, key: ip }
      - rate_limit: { limit: 10, window: 1s, algorithm: sliding_window, burst: 3 }
      - rate_limit: { limit: 10, window: 2500ms }
      - concurrency_limit: { max: 2, status: 502 }
""").replace("{port0}", "1").replace("{port1}", "2")
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    r = subprocess.run([BIN, "check", "-c", str(p)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    for want in ("key: 'ip' is not one of client_ip, consumer, route, header:NAME",
                 "burst: only used by algorithm: token_bucket",
                 "window: must be a whole number of seconds",
                 "status"):
        assert want in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 4, r.stderr
    for line in lines:
        assert line.startswith(str(p) + ":"), line
