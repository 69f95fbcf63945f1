"""Failover under load: three backend processes, a client sending a steady
stream of GET requests; one backend is killed (SIGKILL) or frozen (SIGSTOP)
mid-run, and the client must not see a single failed request."""
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading

import pytest

from conftest import wait_for

HERE = os.path.dirname(os.path.abspath(__file__))

CONF = """
workers: 2
listeners:
  - name: public
    address: 127.0.0.1:{port}
access_log: { path: none }
timeouts: { upstream_connect: 1s, upstream_response: 300ms }
routes:
  - name: app
    upstream: app
upstreams:
  app:
    balance: %s
    servers:
%s
    retries: { attempts: 2, retry_on: [connect_failure, reset, timeout, 502, 503, 504], budget: 20%% }
    outlier: { consecutive_failures: 2, ejection_time: 1h, max_ejected_percent: 50 }
"""


@pytest.fixture
def procs():
    started = []

    def start(names):
        out = []
        for n in names:
            p = subprocess.Popen([sys.executable, os.path.join(HERE, "procbackend.py"), n],
                                 stdout=subprocess.PIPE, text=True)
            p.port = int(p.stdout.readline())
            p.name = n
            started.append(p)
            out.append(p)
        return out

    yield start
    for p in started:
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.kill()
        p.wait()


class Client:
    """Four threads sending GETs on keep-alive connections until stopped."""

    def __init__(self, port, threads=4):
        self.port = port
        self.ok = {}
        self.failures = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def total(self):
        with self.lock:
            return sum(self.ok.values())

    def run(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.stop.is_set():
            try:
                c.request("GET", "/steady")
                r = c.getresponse()
                body = r.read()
                if r.status != 200:
                    raise AssertionError("status %d: %s" % (r.status, body[:200]))
                name = json.loads(body)["server"]
                with self.lock:
                    self.ok[name] = self.ok.get(name, 0) + 1
            except Exception as e:  # every kind of failure is what the test counts
                with self.lock:
                    self.failures.append(repr(e))
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.close()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)


def servers_conf(ps):
    return "\n".join("      - { address: 127.0.0.1:%d }" % p.port for p in ps)


@pytest.mark.parametrize("balance", ["round_robin", "least_conn", "p2c"])
def test_a_killed_server_costs_no_request(junction, procs, balance):
    ps = procs(["s1", "s2", "s3"])
    j = junction(CONF % (balance, servers_conf(ps)))
    client = Client(j.port)
    try:
        wait_for(lambda: client.total() >= 300, timeout=60, what="300 requests before the kill")
        ps[1].kill()
        ps[1].wait()
        at_kill = client.total()
        wait_for(lambda: client.total() >= at_kill + 600, timeout=60, what="600 requests after")
    finally:
        client.finish()
    assert client.failures == []
    assert set(client.ok) == {"s1", "s2", "s3"}
    assert "ejected" in j.stderr()


def test_a_frozen_server_is_timed_out_retried_elsewhere_and_ejected(junction, procs):
    ps = procs(["s1", "s2", "s3"])
    j = junction(CONF % ("round_robin", servers_conf(ps)))
    client = Client(j.port)
    try:
        wait_for(lambda: client.total() >= 300, timeout=60, what="300 requests before the stop")
        ps[2].send_signal(signal.SIGSTOP)
        at_stop = client.total()
        wait_for(lambda: "127.0.0.1:%d ejected" % ps[2].port in j.stderr(), timeout=60,
                 what="the frozen server's ejection")
        wait_for(lambda: client.total() >= at_stop + 600, timeout=60, what="600 requests after")
    finally:
        client.finish()
        ps[2].send_signal(signal.SIGCONT)
    assert client.failures == []
    assert "upstream response timeout" in j.stderr()


RESET_CONF = """
workers: 1
listeners:
  - name: public
    address: 127.0.0.1:{port}
access_log: { path: none }
timeouts: { upstream_response: 20s }
routes:
  - name: app
    upstream: app
upstreams:
  app:
    servers:
      - { address: 127.0.0.1:%d }
      - { address: 127.0.0.1:%d }
    retries: { attempts: 1, retry_on: [reset] }
"""


def test_a_retry_after_a_reset_goes_on_at_once_on_a_pooled_connection(junction, backends,
                                                                       raw_server):
    """The retry picks an idle pooled connection to the good server, which
    is already writable: no readiness edge will come for it, so the proxy
    must go on by itself instead of waiting for the response timeout."""
    good = backends(1)[0]

    def reset(srv, conn):
        conn.recv(65536)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    bad = raw_server(reset)
    j = junction(RESET_CONF % (good.port, bad.port))
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=60)
    for i in range(4):  # round robin: good, bad (retried on good's pooled connection), ...
        c.request("GET", "/r%d" % i)
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, body
    assert len(good.peer_ports) == 1  # one connection to the good server, reused
    c.close()
