"""Reload edge cases: an HTTP/2 upstream session whose stream ends the old
generation, connection limits and queues across snapshots, health checks
going on through frequent reloads, TCP tunnels, an HTTP/2 client on a
removed listener, and a reload refused because a port is taken."""
import http.client
import os
import socket
import threading
import time

import pytest

from conftest import free_port, wait_for
from h2client import H2Backend
from test_reload import TWO_LISTENERS, Gate, reload, write


def get_ok(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/again")
    r = c.getresponse()
    r.read()
    c.close()
    return r.status == 200


class SlowH2(H2Backend):
    """An h2c backend that holds each response until gate is set."""

    def __init__(self):
        self.gate = threading.Event()
        self.got = threading.Event()
        super().__init__()

    def respond(self, conn, sid, req, pending):
        self.got.set()
        self.gate.wait(20)
        H2Backend.respond(self, conn, sid, req, pending)


H2CONF = """
workers: 1
listeners:
  - name: plain
    address: 127.0.0.1:{port0}
access_log: { path: none }
upstreams:
  %(name)s:
    protocol: h2c
    servers:
      - { address: 127.0.0.1:%(port)d }
routes:
  - { name: all, match: { path_prefix: / }, upstream: %(name)s }
"""


def test_h2c_request_in_flight_across_a_reload(junction):
    """The old generation is released inside the h2 upstream session's
    drive loop (the stream ends in front->wake): its session must not be
    freed under sess_drive."""
    b = SlowH2()
    try:
        j = junction(H2CONF % {"name": "h2", "port": b.port}, nports=1)
        out = {}

        def one():
            c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=20)
            c.request("GET", "/slow")
            r = c.getresponse()
            out["status"] = r.status
            out["body"] = r.read()
            c.close()

        t = threading.Thread(target=one)
        t.start()
        assert b.got.wait(10)
        # Same file, another upstream name: a new generation.
        write(j, H2CONF % {"name": "h2b", "port": b.port})
        reload(j)
        b.gate.set()
        t.join(20)
        assert out.get("status") == 200, j.stderr()[-3000:]
        assert get_ok(j.port), "junction died after the old generation ended"
        assert j.proc.poll() is None, j.stderr()[-3000:]
    finally:
        b.gate.set()
        b.server.close()


LIMITED = """
workers: %(workers)d
listeners:
  - name: public
    address: 127.0.0.1:{port0}
access_log: { path: none }
upstreams:
  app:
    limits: { max_connections: 1, max_pending: %(pending)d, queue_timeout: %(qt)s }
    servers: [ { address: 127.0.0.1:%(backend)d } ]
routes:
  - name: %(route)s
    match: { path_prefix: / }
    upstream: app
"""


def fetch(port, path, out, key):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        out[key] = r.status
        c.close()
    except Exception as e:  # noqa: BLE001
        out[key] = repr(e)


def test_max_connections_holds_across_a_reload(junction, backends):
    """limits.max_connections counts connections to a server across the
    workers: a reload must not let a second one open while the first is
    busy on the old snapshot."""
    (b,) = backends(1, handler=Gate)
    b.held = 0
    Gate.gate.clear()
    args = {"workers": 1, "pending": 0, "qt": "1s", "backend": b.port, "route": "r1"}
    j = junction(LIMITED % args)
    out = {}
    t = threading.Thread(target=fetch, args=(j.port, "/slow/a", out, "a"))
    t.start()
    wait_for(lambda: b.held == 1, what="first request held")
    # Before a reload, a second request is refused (no queue): 503.
    fetch(j.port, "/slow/b", out, "before")
    write(j, LIMITED % dict(args, route="r2"))
    reload(j)
    t2 = threading.Thread(target=fetch, args=(j.port, "/slow/c", out, "after"))
    t2.start()
    t2.join(3)
    held = b.held
    Gate.gate.set()
    t.join(10)
    t2.join(10)
    assert out["before"] == 503
    assert held == 1 and out["after"] == 503, (held, out)


@pytest.mark.parametrize("do_reload", [False, True])
def test_requests_queued_at_a_reload_are_served(junction, backends, do_reload):
    """Requests queued for a connection (max_pending) when a reload comes
    finish on their snapshot: the slot that frees in another worker must
    wake them."""
    (b,) = backends(1, handler=Gate)
    b.held = 0
    Gate.gate.clear()
    args = {"workers": 2, "pending": 50, "qt": "8s", "backend": b.port, "route": "r1"}
    j = junction(LIMITED % args)
    out = {}
    ts = [threading.Thread(target=fetch, args=(j.port, "/slow/a", out, "a"))]
    ts[0].start()
    wait_for(lambda: b.held == 1, what="first request held")
    for i in range(8):
        t = threading.Thread(target=fetch, args=(j.port, "/q/%d" % i, out, i))
        t.start()
        ts.append(t)
    # They queue; nothing outside shows it, so give them a moment.
    time.sleep(0.5)
    if do_reload:
        write(j, LIMITED % dict(args, route="r2"))
        reload(j)
    Gate.gate.set()
    for t in ts:
        t.join(20)
    assert all(v == 200 for v in out.values()), out


HEALTH = """
workers: 1
listeners:
  - name: public
    address: 127.0.0.1:{port0}
access_log: { path: none }
upstreams:
  app:
    health: { type: tcp, interval: 200ms, timeout: 100ms, unhealthy_threshold: 4 }
    servers: [ { address: 127.0.0.1:%(live)d }, { address: 127.0.0.1:%(dead)d } ]
routes:
  - name: %(route)s
    match: { path_prefix: / }
    upstream: app
"""


@pytest.mark.parametrize("reloads", [False, True])
def test_a_dead_server_is_taken_out_while_reloads_happen(junction, backends, reloads):
    """unhealthy_threshold failed checks in a row take a server out; a
    reload carries the checker's state over, so reloads more frequent than
    threshold x interval must not keep a dead server in."""
    (b,) = backends(1)
    dead = free_port()
    args = {"live": b.port, "dead": dead, "route": "r0"}
    j = junction(HEALTH % args)
    end = time.monotonic() + 4
    k = 0
    while time.monotonic() < end and "is down" not in j.stderr():
        if reloads:
            k += 1
            write(j, HEALTH % dict(args, route="r%d" % (k % 2)))
            reload(j)
        time.sleep(0.45)
    assert "is down (health check)" in j.stderr(), j.stderr()[-1500:]


TCPCONF = """
workers: 1
listeners:
  - name: %(lname)s
    address: 127.0.0.1:{port0}
    protocol: tcp
    upstream: %(up)s
access_log: { path: none }
upstreams:
  %(up)s:
    servers: [ { address: 127.0.0.1:%(port)d } ]
"""


def test_tcp_tunnel_across_a_reload(junction, raw_server):
    def echo(srv, c):
        while True:
            d = c.recv(65536)
            if not d:
                c.close()
                return
            c.sendall(d)

    s = raw_server(echo)
    j = junction(TCPCONF % {"lname": "t", "up": "u1", "port": s.port})
    c = socket.create_connection(("127.0.0.1", j.port), timeout=5)
    c.sendall(b"ping")
    assert c.recv(10) == b"ping"
    write(j, TCPCONF % {"lname": "t", "up": "u2", "port": s.port})
    reload(j)
    c.sendall(b"pong")
    assert c.recv(10) == b"pong"
    c.close()
    c2 = socket.create_connection(("127.0.0.1", j.port), timeout=5)
    c2.sendall(b"x")
    assert c2.recv(10) == b"x"
    c2.close()




def test_h2_client_on_a_removed_listener(junction, backends):
    from h2client import H2Client
    (b,) = backends(1, handler=Gate)
    b.held = 0
    Gate.gate.clear()
    extra = "  - name: extra\n    address: 127.0.0.1:{port1}\n"
    j = junction(TWO_LISTENERS % {"extra": extra, "backend": b.port}, nports=2)
    h2c = H2Client(j.ports[1])
    sid = h2c.request("GET", "/slow/1")
    wait_for(lambda: b.held == 1, what="held")
    write(j, TWO_LISTENERS % {"extra": "", "backend": b.port})
    reload(j)
    h2c.pump(lambda: h2c.goaway is not None, timeout=10)
    # python-h2 takes GOAWAY as the end of the connection; check its last id.
    assert h2c.goaway.last_stream_id >= sid and h2c.goaway.error_code == 0
    Gate.gate.set()
    raw = b""
    h2c.sock.settimeout(5)
    while True:
        d = h2c.sock.recv(65536)
        if not d:
            break
        raw += d
    assert b"held" in raw or b"b0" in raw, raw[:300]


def test_h2_client_h2c_upstream_in_flight_across_a_reload(junction):
    from h2client import H2Client
    b = SlowH2()
    try:
        j = junction(H2CONF % {"name": "h2", "port": b.port}, nports=1)
        h2c = H2Client(j.port)
        sid = h2c.request("GET", "/slow")
        assert b.got.wait(10)
        write(j, H2CONF % {"name": "h2b", "port": b.port})
        reload(j)
        b.gate.set()
        h2c.pump(lambda: h2c.responses[sid].done, timeout=10)
        assert h2c.responses[sid].headers.get(":status") == "200"
        h2c.close()
        assert get_ok(j.port)
    finally:
        b.gate.set()
        b.server.close()


def test_a_reload_with_a_taken_port_changes_nothing(junction, backends):
    from test_reload import listen_inodes
    (b,) = backends(1)
    base = TWO_LISTENERS.replace("workers: 1", "workers: 3")
    extra = "  - name: extra\n    address: 127.0.0.1:{port1}\n"
    j = junction(base % {"extra": extra, "backend": b.port}, nports=2)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    tport = taken.getsockname()[1]
    more = "  - name: fresh\n    address: 127.0.0.1:%d\n  - name: busy\n    address: 127.0.0.1:%d\n" % (
        free_port(), tport)
    before = listen_inodes(j.ports[1])
    write(j, base % {"extra": more, "backend": b.port})
    reload(j, expect_ok=False)
    assert listen_inodes(j.ports[1]) == before
    c = http.client.HTTPConnection("127.0.0.1", j.ports[1], timeout=5)
    c.request("GET", "/x")
    assert c.getresponse().status == 200
    c.close()
    taken.close()
    j.expect_errors = True
    assert "AddressSanitizer" not in j.stderr()


UPGRADE_CONF = """
workers: 1
upgrade_socket: %(sock)s
listeners:
  - name: public
    address: 127.0.0.1:{port}
upstreams:
  app:
    servers: [ { address: 127.0.0.1:9 } ]
routes:
  - match: { path_prefix: / }
    upstream: app
"""


def test_an_upgrade_socket_path_naming_a_file_never_removes_it(junction, tmp_path):
    victim = tmp_path / "important.txt"
    victim.write_text("keep me")
    j = junction(UPGRADE_CONF % {"sock": victim}, expect_errors=True)
    wait_for(lambda: "binary upgrades are not available" in j.stderr(), what="warning")
    assert "is not a socket" in j.stderr()
    assert victim.read_text() == "keep me"


def test_a_silent_connection_to_the_upgrade_socket_does_not_hold_signals(junction):
    import signal
    j = junction(UPGRADE_CONF.replace("upgrade_socket: %(sock)s\n", ""))
    path = j.path + ".upgrade.sock"
    wait_for(lambda: os.path.exists(path), what="upgrade socket")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    try:
        j.proc.send_signal(signal.SIGHUP)
        # Seen while the silent connection is still open.
        wait_for(lambda: "configuration reload" in j.stderr(), what="reload")
    finally:
        s.close()
