"""Hot reload (SIGHUP): the new file is validated, then swapped in while
requests flow; an invalid file leaves the old configuration serving; kept
listeners keep their sockets, new ones open, removed ones drain."""
import http.client
import os
import re
import signal
import threading

from conftest import EchoHandler, SteadyLoad, free_port, port_open, wait_for


def write(j, text):
    for i, p in enumerate(j.ports):
        text = text.replace("{port%d}" % i, str(p))
    text = text.replace("{port}", str(j.ports[0]))
    with open(j.path + ".tmp", "w") as f:
        f.write(text)
    os.replace(j.path + ".tmp", j.path)


def reload(j, expect_ok=True):
    """SIGHUP, then waits for the log line that says how it went."""
    done = j.stderr().count("configuration reload")
    j.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: j.stderr().count("configuration reload") > done, what="reload logged")
    last = j.stderr().split("configuration reload")[-1]
    ok = last.startswith("ed from")
    assert ok == expect_ok, j.stderr()[-2000:]


def get(port, path, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    if conn is None:
        c.close()
    return r.status, r.getheader("X-Backend"), body


def listen_inodes(port):
    """Inodes of the listening sockets bound to port (every worker's)."""
    out = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].split(":")[1], 16) == port:
                out.add(parts[9])
    return out


CONFIG = """
workers: 2
listeners:
  - name: public
    address: 127.0.0.1:{port0}
upstreams:
  %(up)s:
    servers: [ { address: 127.0.0.1:%(backend)d } ]
routes:
  - name: r
    match: { path_prefix: %(prefix)s }
    upstream: %(up)s
"""


def test_sighup_swaps_routes_and_upstreams_on_the_same_sockets(junction, backends):
    b0, b1 = backends(2)
    j = junction(CONFIG % {"up": "one", "backend": b0.port, "prefix": "/a"})
    assert get(j.port, "/a/x")[:2] == (200, "b0")
    inodes = listen_inodes(j.port)
    assert len(inodes) == 2
    keep = http.client.HTTPConnection("127.0.0.1", j.port, timeout=10)
    assert get(j.port, "/a/1", keep)[:2] == (200, "b0")
    write(j, CONFIG % {"up": "two", "backend": b1.port, "prefix": "/b"})
    reload(j)
    assert get(j.port, "/b/x")[:2] == (200, "b1")
    assert get(j.port, "/a/x")[0] == 404
    # A keep-alive connection opened before the reload goes on, on the new
    # configuration.
    assert get(j.port, "/b/2", keep)[:2] == (200, "b1")
    keep.close()
    assert listen_inodes(j.port) == inodes, "the listening sockets were reopened"


BAD = """
workers: 2
listeners:
  - name: public
    address: 127.0.0.1:{port0}
upstreams:
  one:
    servers: [ { address: 127.0.0.1:%d, weight: 5000 } ]
routes:
  - match: { path_prefix: /a }
    upstream: nowhere
"""


def test_an_invalid_file_keeps_the_old_configuration_and_logs_every_error(junction, backends):
    (b0,) = backends(1)
    j = junction(CONFIG % {"up": "one", "backend": b0.port, "prefix": "/a"}, expect_errors=True)
    write(j, BAD % b0.port)
    reload(j, expect_ok=False)
    err = j.stderr()
    assert re.search(r"junction\.yaml:8:\d+: .*weight", err), err
    assert re.search(r"junction\.yaml:11:\d+: .*nowhere", err), err
    assert "still serving generation 1" in err
    assert get(j.port, "/a/x")[:2] == (200, "b0")
    assert j.proc.poll() is None
    # A good file after a bad one applies.
    write(j, CONFIG % {"up": "one", "backend": b0.port, "prefix": "/c"})
    reload(j)
    assert get(j.port, "/c")[0] == 200
    assert "generation 2" in j.stderr()


class Gate(EchoHandler):
    gate = threading.Event()

    def handle_any(self):
        if self.path.startswith("/slow"):
            self.server.held += 1
            Gate.gate.wait(30)
        EchoHandler.handle_any(self)

    do_GET = handle_any


TWO_LISTENERS = """
workers: 1
listeners:
  - name: public
    address: 127.0.0.1:{port0}
%(extra)s
upstreams:
  app:
    servers: [ { address: 127.0.0.1:%(backend)d } ]
routes:
  - match: { path_prefix: / }
    upstream: app
"""


def test_removed_listeners_drain_and_new_ones_open(junction, backends):
    (b,) = backends(1, handler=Gate)
    b.held = 0
    Gate.gate.clear()
    extra = "  - name: extra\n    address: 127.0.0.1:{port1}\n"
    j = junction(TWO_LISTENERS % {"extra": extra, "backend": b.port}, nports=2)
    p_extra, p_new = j.ports[1], free_port()
    # A request in flight on the listener the next file drops.
    slow = http.client.HTTPConnection("127.0.0.1", p_extra, timeout=20)
    slow.request("GET", "/slow")
    wait_for(lambda: b.held == 1, what="request held by the backend")
    newer = "  - name: newer\n    address: 127.0.0.1:%d\n" % p_new
    write(j, TWO_LISTENERS % {"extra": newer, "backend": b.port})
    reload(j)
    assert not port_open(p_extra), "a removed listener still accepts"
    assert get(p_new, "/x")[0] == 200
    Gate.gate.set()
    r = slow.getresponse()
    assert r.status == 200, "the request in flight on a removed listener was cut"
    r.read()
    assert r.getheader("Connection", "").lower() == "close"
    slow.close()


VERSION = """
workers: 2
listeners:
  - name: public
    address: 127.0.0.1:{port0}
upstreams:
  pool%(k)d:
    keepalive: 8
    servers: [ { address: 127.0.0.1:%(backend)d } ]
  spare%(k)d:
    servers: [ { address: 127.0.0.1:%(other)d } ]
routes:
  - name: steady
    match: { path_prefix: /steady }
    upstream: pool%(k)d
  - name: v%(k)d
    match: { path: /v%(k)d }
    upstream: spare%(k)d
"""


def test_twenty_reloads_under_load_fail_no_request(junction, backends):
    b0, b1 = backends(2)

    def version(k):
        return VERSION % {"k": k, "backend": (b0, b1)[k % 2].port, "other": (b1, b0)[k % 2].port}

    j = junction(version(0))
    load = SteadyLoad(j.port, "/steady")
    try:
        load.wait_more(50, "load running")
        for k in range(1, 21):
            write(j, version(k))
            reload(j)
            assert get(j.port, "/v%d" % k)[:2] == (200, ("b1", "b0")[k % 2])
            assert get(j.port, "/v%d" % (k - 1))[0] == 404
            load.wait_more(20)
    finally:
        load.stop()  # asserts no request failed
    assert "generation 21" in j.stderr()
    servers = {r["server"] for r in b0.received} | {r["server"] for r in b1.received}
    assert servers == {"b0", "b1"}


ONE_WORKER = """
workers: 1
listeners:
  - name: public
    address: 127.0.0.1:{port0}
upstreams:
  app:
    servers: [ { address: 127.0.0.1:%(backend)d } ]
routes:
  - match: { path_prefix: %(prefix)s }
    upstream: app
"""


def test_idle_upstream_connections_serve_the_new_configuration(junction, backends):
    (b,) = backends(1)
    j = junction(ONE_WORKER % {"backend": b.port, "prefix": "/a"})
    assert get(j.port, "/a")[0] == 200
    assert len(b.peer_ports) == 1
    write(j, ONE_WORKER % {"backend": b.port, "prefix": "/b"})
    reload(j)
    for _ in range(3):
        assert get(j.port, "/b")[0] == 200
    assert len(b.peer_ports) == 1, "the reload dropped the warm upstream connection"


def test_an_http2_connection_goes_on_across_a_reload(junction, backends):
    from h2client import H2Client
    b0, b1 = backends(2)
    j = junction(CONFIG % {"up": "one", "backend": b0.port, "prefix": "/a"})
    h2 = H2Client(j.port)
    assert h2.get("/a/1").status == 200
    write(j, CONFIG % {"up": "two", "backend": b1.port, "prefix": "/b"})
    reload(j)
    r = h2.get("/b/2")
    assert r.status == 200 and b"b1" in bytes(r.data)
    assert h2.get("/a/3").status == 404
    h2.close()


def test_a_request_in_flight_finishes_on_the_configuration_it_started_on(junction, backends):
    (b,) = backends(1, handler=Gate, names=["held"])
    b.held = 0
    Gate.gate.clear()
    (other,) = backends(1, names=["other"])
    j = junction(CONFIG % {"up": "old", "backend": b.port, "prefix": "/slow"})
    slow = http.client.HTTPConnection("127.0.0.1", j.port, timeout=20)
    slow.request("GET", "/slow")
    wait_for(lambda: b.held == 1, what="request held by the backend")
    # The route and its upstream are gone from the new file.
    write(j, CONFIG % {"up": "new", "backend": other.port, "prefix": "/fresh"})
    reload(j)
    assert get(j.port, "/fresh")[0] == 200
    assert get(j.port, "/slow")[0] == 404
    Gate.gate.set()
    r = slow.getresponse()
    assert r.status == 200 and r.getheader("X-Backend") == "held"
    r.read()
    slow.close()
