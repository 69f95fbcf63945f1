"""Hashing balancers through the real binary: consistent_hash keeps a key on
one backend (in every worker) while spreading keys; ip_hash keeps a client."""
import http.client
import json


CONF = """
workers: 2
listeners:
  - name: public
    address: 127.0.0.1:{port}
access_log: { path: none }
upstreams:
  app:
%s
    servers:
      - { address: 127.0.0.1:%d }
      - { address: 127.0.0.1:%d }
      - { address: 127.0.0.1:%d }
routes:
  - name: app
    upstream: app
"""


def get(port, path, headers=None):
    """One request on a fresh connection, so that both workers take turns."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    assert r.status == 200, body
    return json.loads(body)["server"]


def start(junction, backends, balance_keys):
    servers = backends(3)
    return junction(CONF % (balance_keys, *(b.port for b in servers)))


def test_consistent_hash_keeps_each_user_on_one_backend_and_spreads_users(junction, backends):
    j = start(junction, backends, "    balance: consistent_hash\n    hash_key: header:X-User")
    homes = {}
    for u in range(10):
        seen = {get(j.port, "/r/%d" % i, {"X-User": "user-%d" % u}) for i in range(20)}
        assert len(seen) == 1, (u, seen)
        homes[u] = seen.pop()
    assert len(set(homes.values())) >= 2, homes
    # A request without the header falls back to the client address: still one backend.
    assert len({get(j.port, "/none") for _ in range(10)}) == 1


def test_consistent_hash_on_a_query_parameter(junction, backends):
    j = start(junction, backends, "    balance: consistent_hash\n    hash_key: query:id")
    for u in range(5):
        assert len({get(j.port, "/q?x=%d&id=k%d" % (i, u)) for i in range(10)}) == 1


def test_ip_hash_keeps_a_client_on_one_backend(junction, backends):
    j = start(junction, backends, "    balance: ip_hash\n    hash_balance_factor: 0")
    assert len({get(j.port, "/ip/%d" % i) for i in range(30)}) == 1
