"""Circuit breakers per server (limits:) and session persistence (sticky:)
and slow start, through the real binary."""
import http.client
import json
import re
import threading

from conftest import Holding, wait_for

CONF = """
workers: 1
listeners:
  - name: public
    address: 127.0.0.1:{port}
access_log: { path: none }
routes:
  - name: app
    upstream: app
upstreams:
  app:
    servers: [ { address: 127.0.0.1:%d } ]
    limits: %s
"""


def send(port, out, i):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=40)
    c.request("GET", "/r%d" % i)
    r = c.getresponse()
    out[i] = (r.status, r.read())
    c.close()


def start(port, out, i):
    t = threading.Thread(target=send, args=(port, out, i))
    t.start()
    return t


def holding(backends):
    Holding.gate.clear()
    (b,) = backends(1, handler=Holding, names=["held"])
    b.held = 0
    return b


def test_max_connections_answers_503_at_once_past_the_limit(junction, backends):
    b = holding(backends)
    j = junction(CONF % (b.port, "{ max_connections: 1 }"))
    out = {}
    t0 = start(j.port, out, 0)
    wait_for(lambda: b.held == 1, what="the first request to be held")
    send(j.port, out, 1)  # returns while the first is still held
    assert out[1][0] == 503
    assert json.loads(out[1][1])["error"] == "upstream server busy"
    assert b.held == 1
    Holding.gate.set()
    t0.join(30)
    assert out[0][0] == 200


def test_max_pending_queues_then_refuses(junction, backends):
    b = holding(backends)
    j = junction(CONF % (b.port, "{ max_connections: 1, max_pending: 1, queue_timeout: 30s }"))
    out = {}
    t0 = start(j.port, out, 0)
    wait_for(lambda: b.held == 1, what="the first request to be held")
    t1, t2 = start(j.port, out, 1), start(j.port, out, 2)
    # one of the two waits in the queue; the other finds it full: 503 at once
    wait_for(lambda: 1 in out or 2 in out, what="a refused request")
    refused = 1 if 1 in out else 2
    assert out[refused][0] == 503
    assert json.loads(out[refused][1])["error"] == "upstream server busy"
    assert len(out) == 1 and b.held == 1
    Holding.gate.set()
    for t in (t0, t1, t2):
        t.join(30)
    assert out[0][0] == 200 and out[3 - refused][0] == 200
    assert b.held == 2


def test_a_queued_request_gets_503_after_queue_timeout(junction, backends):
    b = holding(backends)
    j = junction(CONF % (b.port, "{ max_connections: 1, max_pending: 5, queue_timeout: 100ms }"))
    out = {}
    t0 = start(j.port, out, 0)
    wait_for(lambda: b.held == 1, what="the first request to be held")
    send(j.port, out, 1)
    assert out[1][0] == 503
    assert json.loads(out[1][1])["error"] == "upstream queue timeout"
    Holding.gate.set()
    t0.join(30)
    assert out[0][0] == 200


STICKY = """
workers: 2
listeners:
  - name: public
    address: 127.0.0.1:{port}
access_log: { path: none }
routes:
  - name: app
    upstream: app
upstreams:
  app:
    balance: %s
    servers:
%s
    sticky: { cookie: jn_route, ttl: 1h }
"""


def get(port, cookie=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request("GET", "/s", headers={"Cookie": cookie} if cookie else {})
    r = c.getresponse()
    body = r.read()
    c.close()
    assert r.status == 200, body
    return json.loads(body)["server"], r.getheader("Set-Cookie")


def test_sticky_cookie_keeps_a_client_on_its_server(junction, backends):
    bs = backends(3, names=["a", "b", "c"])
    j = junction(STICKY % ("round_robin", "\n".join(
        "      - { address: 127.0.0.1:%d }" % b.port for b in bs)))
    first, set_cookie = get(j.port)
    m = re.fullmatch(r"jn_route=([0-9a-f]{16}); Path=/; Max-Age=3600; HttpOnly; SameSite=Lax",
                     set_cookie)
    assert m, set_cookie
    for b in bs:  # the value does not reveal the server's address
        assert str(b.port) not in m.group(1)
    cookie = "other=1; jn_route=" + m.group(1)
    seen = [get(j.port, cookie) for _ in range(20)]
    assert {s for s, _ in seen} == {first}
    assert {c for _, c in seen} == {None}  # no new cookie while it holds
    # a client without the cookie is balanced as usual
    assert len({get(j.port)[0] for _ in range(6)}) == 3


def test_sticky_cookie_moves_when_its_server_is_gone(junction, backends):
    bs = backends(2, names=["a", "b"])
    # no pooled connections: the closed backend's thread would still serve one
    j = junction(STICKY % ("least_conn", "\n".join(
        "      - { address: 127.0.0.1:%d }" % b.port for b in bs)) + "    keepalive: 0\n")
    first, set_cookie = get(j.port)
    cookie = set_cookie.split(";")[0]
    gone = [b for b in bs if b.name == first][0]
    gone.close()  # connections to it are refused: the request is retried on the other
    second, new_cookie = get(j.port, cookie)
    assert second != first
    assert new_cookie is not None and new_cookie.split(";")[0] != cookie
    assert get(j.port, new_cookie.split(";")[0]) == (second, None)


def test_idle_connections_of_one_worker_do_not_starve_the_others(junction, backends):
    """Idle keep-alive connections count against max_connections but belong
    to one worker; a request queued in another worker gets them handed back."""
    (b,) = backends(1, names=["only"])
    j = junction(CONF.replace("workers: 1", "workers: 4") % (
        b.port, "{ max_connections: 2, max_pending: 10, queue_timeout: 5s }"))
    statuses = []
    for i in range(40):  # one at a time, each on a new client connection (any worker)
        c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=20)
        c.request("GET", "/seq%d" % i)
        r = c.getresponse()
        r.read()
        statuses.append(r.status)
        c.close()
    assert statuses == [200] * 40
