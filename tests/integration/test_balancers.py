"""Load-aware balancers through the real binary: least_conn and p2c keep
traffic away from a server that holds its requests; round robin does not."""
import http.client
import threading
import time

import pytest

from conftest import EchoHandler, Holding, wait_for

CONF = """
workers: 1
listeners:
  - name: public
    address: 127.0.0.1:{port}
access_log: { path: none }
upstreams:
  app:
    balance: %s
    servers:
      - { address: 127.0.0.1:%d }
      - { address: 127.0.0.1:%d }
routes:
  - name: app
    upstream: app
"""


def send_one(port, results):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=40)
    c.request("GET", "/x")
    r = c.getresponse()
    r.read()
    results.append(r.status)
    c.close()


def run(junction, backends, balance, n=30):
    Holding.gate.clear()
    (slow,) = backends(1, handler=Holding, names=["slow"])
    slow.held = 0
    (fast,) = backends(1, names=["fast"])
    j = junction(CONF % (balance, slow.port, fast.port))
    results, threads = [], []
    for i in range(n):
        before_done, before_held = len(results), slow.held
        t = threading.Thread(target=send_one, args=(j.port, results))
        t.start()
        threads.append(t)
        # each request either completes (at the fast server) or is held by the slow one
        wait_for(lambda: len(results) > before_done or slow.held > before_held,
                 what="request %d to reach a server" % i)
    held = slow.held
    Holding.gate.set()
    for t in threads:
        t.join(40)
    assert results == [200] * n
    return held


@pytest.mark.parametrize("balance", ["least_conn", "p2c"])
def test_load_aware_balancers_avoid_a_server_holding_requests(junction, backends, balance):
    held = run(junction, backends, balance)
    assert held <= 2  # after it holds a request, the slow server is the busier one


def test_round_robin_keeps_sending_to_a_server_holding_requests(junction, backends):
    held = run(junction, backends, "round_robin")
    assert held == 15  # the contrast: half of the requests wait on the slow server


class Delayed(EchoHandler):
    """Answers after the server's own delay: three servers, three speeds."""

    def handle_any(self):
        time.sleep(self.server.delay)  # the server's speed is the scenario, not a wait
        EchoHandler.handle_any(self)

    do_GET = handle_any


def test_ewma_sends_most_traffic_to_the_fastest_server(junction, backends):
    servers = backends(3, handler=Delayed, names=["fast", "mid", "slow"])
    for b, delay in zip(servers, (0.0, 0.03, 0.1)):
        b.delay = delay
    # a short decay forgives a hiccup of the fast server (a busy test machine) quickly
    conf = CONF.replace("      - { address: 127.0.0.1:%d }\n      - { address: 127.0.0.1:%d }\n",
                        "      - { address: 127.0.0.1:%d }\n" * 3 + "    ewma: { decay: 1s }\n")
    j = junction(conf % ("ewma", servers[0].port, servers[1].port, servers[2].port))
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=20)
    for i in range(60):
        c.request("GET", "/e/%d" % i)
        r = c.getresponse()
        r.read()
        assert r.status == 200
    fast, mid, slow = (len(b.received) for b in servers)
    assert fast > 30 and slow < fast / 3, (fast, mid, slow)


DRAIN = """
workers: 1
listeners:
  - name: public
    address: 127.0.0.1:{port}
access_log: { path: none }
upstreams:
  app:
    balance: %s
    servers:
      - { address: 127.0.0.1:%d, drain: true }
      - { address: 127.0.0.1:%d }
  gone:
    servers:
      - { address: 127.0.0.1:%d, drain: true }
routes:
  - name: gone
    match: { path_prefix: /gone }
    upstream: gone
  - name: app
    upstream: app
"""


@pytest.mark.parametrize("balance", ["round_robin", "least_conn", "p2c", "random", "ewma"])
def test_a_draining_server_gets_no_new_requests(junction, backends, balance):
    drained, live = backends(2, names=["drained", "live"])
    j = junction(DRAIN % (balance, drained.port, live.port, drained.port))
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=10)
    for i in range(20):
        c.request("GET", "/d/%d" % i)
        r = c.getresponse()
        r.read()
        assert r.status == 200
    assert len(drained.received) == 0 and len(live.received) == 20
    c.request("GET", "/gone/x")  # every server draining: 503 at once
    r = c.getresponse()
    assert r.status == 503 and b"request_id" in r.read()
