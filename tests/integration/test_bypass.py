"""Authentication cannot be walked around with a crafted path: every spelling of
/admin either meets the /admin route's key_auth, or is refused, or is routed
elsewhere with a path that is not /admin; the admin upstream never sees a
request without the key. Over single requests, pipelined ones and HTTP/2."""
import socket

import pytest

from conftest import recv_until_close
from h2client import H2Client

KEY = "admin-secret-key"

CFG = """
workers: 2
listeners:
  - name: public
    address: 127.0.0.1:{port}
access_log: { path: stdout, format: json }
consumers:
  - name: ops
    api_keys: [ { key: "%s" } ]
upstreams:
  admin:
    servers: [ { address: 127.0.0.1:%d } ]
  web:
    servers: [ { address: 127.0.0.1:%d } ]
routes:
  - name: admin
    match: { path_prefix: /admin }
    upstream: admin
    policies:
      - key_auth: {}
  - name: public
    match: { path_prefix: / }
    upstream: web
"""

# Each resolves to /admin (the route must be hit and ask for the key), or is
# not /admin at all (another route, or refused); none reaches the admin
# upstream without the key.
ATTEMPTS = [
    "/admin", "/admin/", "/admin/users", "/public/../admin", "/%2e%2e/admin",
    "/%2E%2E/admin/x", "//admin", "///admin//users", "/./admin", "/admin/.", "/%61dmin",
    "/a/../admin/../admin", "/ADMIN", "/Admin/users", "/%2Fadmin", "%2Fadmin", "/admin#frag",
    "/admin%00", "/admin%2f", "/public/..%2fadmin", "/public/%2e%2e/admin",
    "/public/.%2e/admin", "http://127.0.0.1/admin", "/admin?x=/public",
]


def raw(port, data):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    out = recv_until_close(s)
    s.close()
    return out


def statuses(buf):
    """Status codes of the responses in buf, in order."""
    out = []
    for part in buf.split(b"HTTP/1.1 ")[1:]:
        out.append(int(part[:3]))
    return out


@pytest.fixture
def gateway(junction, backends):
    admin, web = backends(2, names=["admin", "web"])
    j = junction(CFG % (KEY, admin.port, web.port))
    return j, admin, web


def test_every_spelling_of_admin_meets_the_key_or_is_not_admin(gateway):
    j, admin, web = gateway
    for path in ATTEMPTS:
        req = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        st = statuses(raw(j.port, req))
        assert len(st) == 1, (path, st)
        assert st[0] in (200, 400, 401, 404), (path, st)
    assert admin.received == []
    # What reached the public upstream is not /admin either: routes are
    # case-sensitive (/ADMIN is the public service's business), and an
    # encoded slash stays encoded (/admin%2F is one segment; see the test
    # with escaped_slashes: decode for backends that decode it).
    for rec in web.received:
        p = rec["path"].split("?")[0]
        assert p != "/admin" and not p.startswith("/admin/"), rec["path"]
    # And the key opens the door: the check is real.
    req = (f"GET /public/../admin HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
           "Connection: close\r\n\r\n").encode()
    assert statuses(raw(j.port, req)) == [200]
    assert [r["path"] for r in admin.received] == ["/admin"]


def test_with_escaped_slashes_decoded_an_encoded_slash_meets_the_key(junction, backends):
    """For backends that decode %2F themselves: `escaped_slashes: decode`
    makes Junction route on the decoded path, so /%2Fadmin is /admin."""
    admin, web = backends(2, names=["admin", "web"])
    cfg = (CFG % (KEY, admin.port, web.port)).replace(
        "consumers:", "http: { escaped_slashes: decode }\nconsumers:")
    j = junction(cfg)
    for path in ("/%2Fadmin", "/%2fadmin/users", "/public/..%2Fadmin", "/x/%2E%2E%2Fadmin"):
        req = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        assert statuses(raw(j.port, req)) in ([401], [400]), path
    assert admin.received == [] and web.received == []


def test_pipelined_bypass_attempts_are_each_checked(gateway):
    j, admin, web = gateway
    # A keyed request first, then crafted ones on the same connection: the
    # key of one request never carries over to the next.
    reqs = [f"GET /admin HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n\r\n"]
    for path in ("/public/../admin", "/%2e%2e/admin", "//admin", "/admin/", "/./admin"):
        reqs.append(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
    reqs.append("GET /public/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    st = statuses(raw(j.port, "".join(reqs).encode()))
    assert st == [200, 401, 401, 401, 401, 401, 200], st
    assert len(admin.received) == 1


def test_http2_bypass_attempts_are_checked_too(gateway):
    j, admin, web = gateway
    c = H2Client(j.port)
    try:
        for path in ("/public/../admin", "/%2e%2e/admin", "//admin", "/admin/", "/%61dmin"):
            r = c.get(path)
            assert r.status == 401, (path, r.status)
        r = c.get("/admin", headers=[("x-api-key", KEY)])
        assert r.status == 200
    finally:
        c.close()
    assert len(admin.received) == 1
