"""Consumers and the authentication policies through the real binary:
key_auth (header and query keys, hidden or kept), basic_auth (bcrypt on the
offload pool, its cache, a burst of logins that must not stall the worker),
acl (allow and deny by group), configuration errors, and HTTP/2."""
import base64
import hashlib
import http.client
import json
import select
import signal
import socket
import struct
import subprocess
import warnings

from conftest import BIN, read_head, recv_until_close, wait_for
from h2client import H2Client

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # Debian 12's Python 3.11 still has it; no new package needed


def bcrypt(password, cost=4):
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2 ** cost))


ALICE_KEY = "alice-secret-key"
BOB_KEY = "bob key+/&="  # needs escaping in a query
HASHES = {}


def hashes():
    """Cost-4 hashes, made once: tests must not wait for bcrypt at load."""
    if not HASHES:
        HASHES.update(alice=bcrypt("alice-pw"), bob=bcrypt("bob:pw é"))
    return HASHES


def cfg(b, routes, top="", workers=2, extra_consumers="", extra=""):
    h = hashes()
    return """
workers: %d
listeners:
  - name: public
    address: 127.0.0.1:{port}
access_log: { path: stdout, format: json }
%s
consumers:
  - name: alice
    groups: [paid, staff]
    api_keys: [ { sha256: "%s" } ]
    basic: { username: alice, password_hash: "%s" }
  - name: bob
    groups: [free]
    api_keys: [ { key: "%s" } ]
    basic: { username: bob, password_hash: "%s" }
%s
upstreams:
  app:
    servers: [ { address: 127.0.0.1:%d } ]
%s
routes:
%s
""" % (workers, extra, hashlib.sha256(ALICE_KEY.encode()).hexdigest(), h["alice"], BOB_KEY,
       h["bob"], extra_consumers, b.port, top, routes)


def get(port, path="/", headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def basic(user, password):
    raw = (user + ":" + password).encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def upstream_headers(b):
    return {k.lower(): v for k, v in b.received[-1]["headers"]}


def check(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return subprocess.run([BIN, "check", "-c", str(p)], capture_output=True, text=True, timeout=30)


def assert_rejected(r, data, status, error):
    assert r.status == status, (r.status, data)
    body = json.loads(data)
    assert body["error"] == error and body["request_id"] == r.getheader("X-Request-Id")


# ---- key_auth ----

KEY_ROUTES = """
  - name: key
    match: { path_prefix: /key }
    upstream: app
    policies:
      - key_auth: {}
  - name: query
    match: { path_prefix: /q }
    upstream: app
    policies:
      - key_auth: { query: api_key }
  - name: keep
    match: { path_prefix: /keep }
    upstream: app
    policies:
      - key_auth: { header: X-Token, query: token, hide_credentials: false }
  - name: open
    match: { path_prefix: /open }
    upstream: app
"""


def test_key_auth_rejects_missing_empty_and_wrong_keys_with_401(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, KEY_ROUTES))
    r, data = get(j.port, "/key")
    assert_rejected(r, data, 401, "API key required")
    assert r.getheader("WWW-Authenticate") == 'Key realm="junction"'
    assert_rejected(*get(j.port, "/key", {"X-API-Key": ""}), 401, "API key required")
    assert_rejected(*get(j.port, "/key", {"X-API-Key": "nope"}), 401, "invalid API key")
    # One byte short of a right key, and the right key in the wrong header.
    assert_rejected(*get(j.port, "/key", {"X-API-Key": ALICE_KEY[:-1]}), 401, "invalid API key")
    assert_rejected(*get(j.port, "/key", {"X-Token": ALICE_KEY}), 401, "API key required")
    # Keys in the query are not read unless configured.
    assert_rejected(*get(j.port, "/key?api_key=" + ALICE_KEY), 401, "API key required")
    assert b.received == []


def test_key_auth_right_keys_pass_and_the_header_is_stripped(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, KEY_ROUTES))
    r, _ = get(j.port, "/key/a", {"X-API-Key": ALICE_KEY, "X-Other": "1"})
    assert r.status == 200
    h = upstream_headers(b)
    assert "x-api-key" not in h and h["x-other"] == "1"
    r, _ = get(j.port, "/key/b", {"x-api-key": BOB_KEY})  # the key given as plain text
    assert r.status == 200 and "x-api-key" not in upstream_headers(b)
    assert [x["path"] for x in b.received] == ["/key/a", "/key/b"]


def test_key_auth_reads_the_query_and_removes_only_its_parameter(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, KEY_ROUTES))
    assert get(j.port, "/q/x?a=1&api_key=" + ALICE_KEY + "&b=2")[0].status == 200
    assert b.received[-1]["path"] == "/q/x?a=1&b=2"
    assert get(j.port, "/q/x?api_key=" + ALICE_KEY)[0].status == 200
    assert b.received[-1]["path"] == "/q/x"
    # Form-encoded: the key is decoded before it is looked up.
    enc = "bob+key%2B%2F%26%3D"
    assert get(j.port, "/q/y?z=9&api%5Fkey=" + enc)[0].status == 200
    assert b.received[-1]["path"] == "/q/y?z=9"
    assert_rejected(*get(j.port, "/q/x?api_key=wrong&a=1"), 401, "invalid API key")
    assert_rejected(*get(j.port, "/q/x?api_key=&a=1"), 401, "API key required")
    # The header wins over the query: a wrong header key is not rescued.
    assert_rejected(*get(j.port, "/q/x?api_key=" + ALICE_KEY, {"X-API-Key": "wrong"}), 401,
                    "invalid API key")
    # ...and a right header key strips the query credential too.
    assert get(j.port, "/q/z?api_key=wrong&k=v", {"X-API-Key": ALICE_KEY})[0].status == 200
    assert b.received[-1]["path"] == "/q/z?k=v"
    assert "x-api-key" not in upstream_headers(b)
    assert len(b.received) == 4
    # No key, right or wrong, reaches the access log.
    wait_for(lambda: len(j.access_lines()) == 7, what="7 access log lines")
    # Sorted: each of the two workers writes its own lines.
    logged = sorted(x["path"] for x in j.access_lines())
    assert logged == sorted(["/q/x?a=1&b=2", "/q/x", "/q/y?z=9", "/q/x?a=1", "/q/x?a=1", "/q/x",
                             "/q/z?k=v"]), logged


def test_a_query_key_is_never_logged_even_when_refused_before_key_auth(junction, backends):
    (b,) = backends(1)
    routes = """
  - name: walled
    match: { path_prefix: /walled }
    upstream: app
    policies:
      - ip_filter: { deny: [127.0.0.0/8] }
      - key_auth: { query: api_key }
  - name: query
    match: { path_prefix: /q }
    upstream: app
    policies:
      - key_auth: { query: api_key }
"""
    j = junction(cfg(b, routes))
    assert get(j.port, "/walled?api_key=" + ALICE_KEY + "&a=1")[0].status == 403
    assert get(j.port, "/nowhere?x=2&api_key=" + ALICE_KEY)[0].status == 404
    assert get(j.port, "/q?api%5Fkey=" + ALICE_KEY)[0].status == 200
    wait_for(lambda: len(j.access_lines()) == 3, what="3 access log lines")
    logged = sorted(x["path"] for x in j.access_lines())
    assert logged == ["/nowhere?x=2", "/q", "/walled?a=1"], logged


def test_key_auth_hide_credentials_false_forwards_the_key(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, KEY_ROUTES))
    assert get(j.port, "/keep", {"X-Token": ALICE_KEY})[0].status == 200
    assert upstream_headers(b)["x-token"] == ALICE_KEY
    assert get(j.port, "/keep?token=" + ALICE_KEY + "&a=1")[0].status == 200
    assert b.received[-1]["path"] == "/keep?token=" + ALICE_KEY + "&a=1"
    # The upstream was meant to get it; the access log still does not.
    wait_for(lambda: len(j.access_lines()) == 2, what="2 access log lines")
    assert sorted(x["path"] for x in j.access_lines()) == ["/keep", "/keep?a=1"]
    assert_rejected(*get(j.port, "/keep", {"X-API-Key": ALICE_KEY}), 401, "API key required")


# ---- basic_auth ----

BASIC_ROUTES = """
  - name: basic
    match: { path_prefix: /basic }
    upstream: app
    policies:
      - basic_auth: {}
  - name: realm
    match: { path_prefix: /realm }
    upstream: app
    policies:
      - basic_auth: { realm: "Staff area", hide_credentials: false }
"""


def test_basic_auth_rejects_missing_and_wrong_credentials_with_a_challenge(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, BASIC_ROUTES))
    challenge = 'Basic realm="junction", charset="UTF-8"'
    r, data = get(j.port, "/basic")
    assert_rejected(r, data, 401, "authentication required")
    assert r.getheader("WWW-Authenticate") == challenge
    assert_rejected(*get(j.port, "/basic", {"Authorization": "Bearer abc"}), 401,
                    "authentication required")
    bad = [basic("alice", "wrong"), basic("alice", ""), basic("nobody", "alice-pw"),
           basic("bob", "bob"),  # the password is "bob:pw é": split at the first colon
           {"Authorization": "Basic !!!notbase64"},
           {"Authorization": "Basic " + base64.b64encode(b"alicealice-pw").decode()},
           {"Authorization": "Basic " + base64.b64encode(b"alice:alice-pw\0x").decode()},
           {"Authorization": "Basic"}]
    for h in bad:
        r, data = get(j.port, "/basic", h)
        assert r.status == 401, (h, r.status)
        assert r.getheader("WWW-Authenticate") == challenge
    r, _ = get(j.port, "/realm", basic("alice", "wrong"))
    assert r.status == 401
    assert r.getheader("WWW-Authenticate") == 'Basic realm="Staff area", charset="UTF-8"'
    assert b.received == []


def test_basic_auth_right_credentials_pass_and_authorization_is_stripped(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, BASIC_ROUTES))
    assert get(j.port, "/basic/1", basic("alice", "alice-pw"))[0].status == 200
    assert "authorization" not in upstream_headers(b)
    # A colon in the password, UTF-8, the scheme in any case, no padding.
    raw = base64.b64encode("bob:bob:pw é".encode()).decode().rstrip("=")
    assert get(j.port, "/basic/2", {"Authorization": "bAsIc  " + raw})[0].status == 200
    assert "authorization" not in upstream_headers(b)
    # hide_credentials: false passes the field on.
    h = basic("alice", "alice-pw")
    assert get(j.port, "/realm", h)[0].status == 200
    assert upstream_headers(b)["authorization"] == h["Authorization"]
    assert len(b.received) == 3


def test_basic_auth_caches_right_credentials_only(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, BASIC_ROUTES, extra="error_log: { level: debug }"))
    for _ in range(3):
        assert get(j.port, "/basic", basic("alice", "alice-pw"))[0].status == 200
    assert j.stderr().count("basic_auth: consumer alice from the cache") >= 1
    # A wrong password for a cached user is still checked, and refused.
    assert get(j.port, "/basic", basic("alice", "alice-pwX"))[0].status == 401
    assert get(j.port, "/basic", basic("alice", "alice-pwX"))[0].status == 401
    assert len(b.received) == 3


# ---- acl ----

ACL_ROUTES = """
  - name: paid
    match: { path_prefix: /paid }
    upstream: app
    policies:
      - acl: { allow_groups: [paid, partner] }
  - name: nofree
    match: { path_prefix: /nofree }
    upstream: app
    policies:
      - acl: { deny_groups: [free] }
  - name: basic-paid
    match: { path_prefix: /bpaid }
    upstream: app
    policies:
      - key_auth: { disabled: true }
      - basic_auth: {}
      - acl: { allow_groups: [paid] }
  - name: anon
    match: { path_prefix: /anon }
    upstream: app
    policies:
      - key_auth: { disabled: true }
      - acl: { allow_groups: [paid] }
"""


def test_acl_allows_and_denies_consumers_by_group_after_key_auth(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, ACL_ROUTES, top="policies:\n  - key_auth: {}\n"))
    alice, bob = {"X-API-Key": ALICE_KEY}, {"X-API-Key": BOB_KEY}
    assert get(j.port, "/paid", alice)[0].status == 200
    assert_rejected(*get(j.port, "/paid", bob), 403, "forbidden")
    assert get(j.port, "/nofree", alice)[0].status == 200
    assert_rejected(*get(j.port, "/nofree", bob), 403, "forbidden")
    # key_auth runs first: no key is its 401, not acl's 403.
    r, data = get(j.port, "/paid")
    assert_rejected(r, data, 401, "API key required")
    assert get(j.port, "/bpaid", basic("alice", "alice-pw"))[0].status == 200
    assert_rejected(*get(j.port, "/bpaid", basic("bob", "bob:pw é")), 403, "forbidden")
    # Without an authentication policy before it, acl has nobody to judge.
    assert_rejected(*get(j.port, "/anon", alice), 401, "authentication required")
    assert [x["path"] for x in b.received] == ["/paid", "/nofree", "/bpaid"]


# ---- configuration errors ----

def test_consumer_and_policy_configuration_errors_are_reported_with_positions(tmp_path, backends):
    (b,) = backends(1)
    text = cfg(b, """
  - name: r
    match: { path_prefix: / }
    upstream: app
    policies:
      - key_auth: { header: "X API Key", query: "" }
      - basic_auth: { realm: 'say "hi"', cache_ttl: 5 }
      - acl: { allow_groups: [a], deny_groups: [b] }
      - acl: {}
      - acl: { allow_groups: [] }
""", extra_consumers="""
  - name: carol
    api_keys: [ { key: "%s" }, { sha256: "abc" }, { sha256: "%s" } ]
    basic: { username: carol, password_hash: "$1$md5hash$0123456789abcdef" }
""" % (BOB_KEY, "g" * 64)).replace("{port}", "1")
    r = check(tmp_path, text)
    assert r.returncode != 0
    err = r.stderr
    for want in ("consumer carol: API key already used by bob",
                 "api_keys: sha256 must be 64 hexadecimal digits",
                 "basic: password_hash must be a bcrypt hash",
                 "header: 'X API Key' is not a valid header name",
                 "query: must not be empty",
                 "realm: ",
                 "cache_ttl: invalid duration",
                 "acl: needs exactly one of allow_groups and deny_groups"):
        assert want in err, err
    assert err.count("sha256 must be 64 hexadecimal digits") == 2, err
    assert err.count("needs exactly one of allow_groups") == 2, err
    for line in err.strip().splitlines():
        assert line.startswith(str(tmp_path / "bad.yaml") + ":"), line


# ---- the offload pool, HTTP/2 ----

SLOW = """
  - name: slow
    basic: { username: slow, password_hash: "%s" }
"""


def slow_cfg(b):
    routes = """
  - name: login
    match: { path_prefix: /login }
    upstream: app
    policies:
      - basic_auth: {}
  - name: key
    match: { path_prefix: /key }
    upstream: app
    policies:
      - key_auth: {}
  - name: open
    match: { path_prefix: /open }
    upstream: app
"""
    # One worker: a bcrypt check on its loop would hold every other request.
    return cfg(b, routes, workers=1, extra_consumers=SLOW % bcrypt("slow-pw", 12))


def test_a_burst_of_bcrypt_logins_does_not_stall_other_requests_over_http2(junction, backends):
    (b,) = backends(1)
    j = junction(slow_cfg(b))
    c = H2Client(j.port)
    n = 4
    logins = [c.request(path="/login/%d" % i, headers=list(basic("slow", "wrong%d" % i).items()))
              for i in range(n)]
    # Sent after the logins on the same connection: Junction reads them first.
    plain = c.request(path="/open")
    c.pump(lambda: c.responses[plain].done)
    assert c.responses[plain].status == 200
    pending = [sid for sid in logins if not c.responses[sid].done]
    assert pending, "every bcrypt check finished before a request that needs none"
    c.pump(lambda: all(c.responses[sid].done for sid in logins))
    assert [c.responses[sid].status for sid in logins] == [401] * n
    for sid in logins:
        assert json.loads(bytes(c.responses[sid].data))["error"] == "invalid credentials"
        assert c.responses[sid].headers["www-authenticate"].startswith('Basic realm="junction"')
    # And right credentials pass over HTTP/2, the field stripped.
    r = c.get("/login/ok", headers=list(basic("slow", "slow-pw").items()))
    assert r.status == 200
    rec = json.loads(bytes(r.data))
    assert rec["path"] == "/login/ok"
    assert "authorization" not in [k.lower() for k, _ in rec["headers"]]
    c.close()
    assert [x["path"] for x in b.received] == ["/open", "/login/ok"]


def test_a_burst_of_bcrypt_logins_does_not_stall_other_requests_over_http1(junction, backends):
    (b,) = backends(1)
    j = junction(slow_cfg(b))
    n = 4
    logins = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", j.port), timeout=30)
        auth = basic("slow", "wrong%d" % i)["Authorization"]
        s.sendall(("GET /login/%d HTTP/1.1\r\nHost: a\r\nAuthorization: %s\r\n\r\n"
                   % (i, auth)).encode())
        logins.append(s)
    r, _ = get(j.port, "/open")
    assert r.status == 200
    readable, _, _ = select.select(logins, [], [], 0)
    assert len(readable) < n, "every bcrypt check finished before a request that needs none"
    for s in logins:
        head = read_head(s)
        assert head.startswith(b"HTTP/1.1 401 "), head
        s.close()
    assert [x["path"] for x in b.received] == ["/open"]


def test_key_auth_over_http2(junction, backends):
    (b,) = backends(1)
    j = junction(slow_cfg(b))
    c = H2Client(j.port)
    r = c.get("/key", headers=[("x-api-key", "wrong")])
    assert r.status == 401 and r.headers["www-authenticate"] == 'Key realm="junction"'
    r = c.get("/key", headers=[("x-api-key", ALICE_KEY), ("x-keep", "1")])
    assert r.status == 200
    names = [k.lower() for k, _ in json.loads(bytes(r.data))["headers"]]
    assert "x-api-key" not in names and "x-keep" in names
    c.close()


def test_a_client_leaving_during_a_bcrypt_check_is_harmless(junction, backends):
    (b,) = backends(1)
    j = junction(slow_cfg(b))
    # HTTP/1.1 first (nothing cached yet): the connection closes while its
    # check runs; the request is then not sent on its behalf.
    h1 = http.client.HTTPConnection("127.0.0.1", j.port, timeout=30)
    h1.request("GET", "/login/gone1", headers=basic("slow", "slow-pw"))
    h1.close()
    c = H2Client(j.port)
    sid = c.request(path="/login/gone2", headers=list(basic("slow", "slow-pw").items()))
    c.conn.reset_stream(sid)
    c.flush()
    # One offload thread (one worker), first in first out: by the time this
    # check is answered, the abandoned ones have run their done.
    r = c.get("/login/last", headers=list(basic("slow", "nope").items()))
    assert r.status == 401
    assert get(j.port, "/open")[0].status == 200
    c.close()
    # Neither the reset stream nor the closed connection reached the upstream.
    assert [x["path"] for x in b.received] == ["/open"]
    wait_for(lambda: any(x["path"] == "/login/gone1" for x in j.access_lines()),
             what="the abandoned request's log line")
    gone = [x for x in j.access_lines() if x["path"] == "/login/gone1"]
    assert gone[0]["status"] == 499


def test_a_request_body_waits_for_the_bcrypt_check_and_then_goes_up_whole(junction, backends):
    (b,) = backends(1)
    j = junction(slow_cfg(b))
    body = bytes(range(256)) * 400  # 100 KiB: more than the socket buffers hold at once
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=60)
    c.request("POST", "/login/h1", body=body, headers=basic("slow", "slow-pw"))
    r = c.getresponse()
    assert r.status == 200 and json.loads(r.read())["body_len"] == len(body)
    c.close()
    h2 = H2Client(j.port)
    r = h2.get("/login/h2", method="POST", body=body,
               headers=list(basic("slow", "wrong").items()))
    assert r.status == 401
    r = h2.get("/login/h2", method="POST", body=body,
               headers=list(basic("slow", "slow-pw").items()))  # from the cache now
    assert r.status == 200 and json.loads(bytes(r.data))["body_len"] == len(body)
    h2.close()
    assert [x["body_len"] for x in b.received] == [len(body), len(body)]


# ---- basic_auth under a burst: the cap, abandoned checks, shutdown ----

CAPPED = {}


def capped_cfg(b, cap=None, level="info"):
    """One worker (one offload thread); user slow has a cost-14 hash."""
    if not CAPPED:
        CAPPED["hash"] = bcrypt("slow-pw", 14)
    conf = "{ max_pending_checks: %d }" % cap if cap else "{}"
    routes = """
  - name: login
    match: { path_prefix: /login }
    upstream: app
    policies:
      - basic_auth: %s
""" % conf
    return cfg(b, routes, workers=1, extra_consumers=SLOW % CAPPED["hash"],
               extra="error_log: { level: %s }" % level)


def test_basic_auth_refuses_checks_beyond_max_pending_checks_with_503(junction, backends):
    (b,) = backends(1)
    j = junction(capped_cfg(b, cap=2))
    c = H2Client(j.port)
    held = [c.request(path="/login/%d" % i, headers=list(basic("slow", "x%d" % i).items()))
            for i in range(2)]
    over = c.request(path="/login/over", headers=list(basic("alice", "alice-pw").items()))
    c.pump(lambda: c.responses[over].done)
    r = c.responses[over]
    assert r.status == 503, r.status
    assert r.headers["retry-after"] == "1"
    assert json.loads(bytes(r.data))["error"] == "too many authentication checks"
    # The streams reset: their places are free at once, a right login passes.
    for sid in held:
        c.conn.reset_stream(sid)
    c.flush()
    r = c.get("/login/ok", headers=list(basic("alice", "alice-pw").items()))
    assert r.status == 200
    c.close()
    assert [x["path"] for x in b.received] == ["/login/ok"]


def test_abandoned_http1_checks_skip_bcrypt_and_free_their_place(junction, backends):
    (b,) = backends(1)
    j = junction(capped_cfg(b, cap=2, level="debug"))
    socks = []
    for i in range(2):
        s = socket.create_connection(("127.0.0.1", j.port), timeout=30)
        auth = basic("nobody", "x%d" % i)["Authorization"]
        s.sendall(("GET /login/%d HTTP/1.1\r\nHost: a\r\nAuthorization: %s\r\n\r\n"
                   % (i, auth)).encode())
        socks.append(s)
    wait_for(lambda: get(j.port, "/login/full", basic("alice", "alice-pw"))[0].status == 503,
             what="the cap reached")
    for s in socks:  # reset (a FIN alone may be a half-close, which HTTP/1.1 allows)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    # The resets are seen while the checks wait: the queued one skips bcrypt
    # and neither holds a place any more.
    wait_for(lambda: "bcrypt skipped" in j.stderr(), what="a check skipped")
    r, data = get(j.port, "/login/ok", basic("alice", "alice-pw"))
    assert r.status == 200, data
    assert b.received[-1]["path"] == "/login/ok"


def test_shutdown_answers_queued_checks_503_without_running_them(junction, backends):
    (b,) = backends(1)
    j = junction(capped_cfg(b, cap=4))
    socks = []
    for i in range(4):
        s = socket.create_connection(("127.0.0.1", j.port), timeout=30)
        auth = basic("slow", "x%d" % i)["Authorization"]
        s.sendall(("GET /login/%d HTTP/1.1\r\nHost: a\r\nAuthorization: %s\r\n\r\n"
                   % (i, auth)).encode())
        socks.append(s)
    wait_for(lambda: get(j.port, "/login/full", basic("alice", "alice-pw"))[0].status == 503,
             what="the four checks queued or running")
    j.proc.send_signal(signal.SIGTERM)
    answers = []
    for s in socks:
        data = recv_until_close(s)
        answers.append(data)
        s.close()
    statuses = [int(a.split(b" ", 2)[1]) for a in answers]
    # The check running finishes (401); the queued ones do not run.
    assert statuses.count(503) >= 2 and set(statuses) <= {401, 503}, statuses
    for a in answers:
        if b" 503 " in a.split(b"\r\n", 1)[0]:
            assert json.loads(a.split(b"\r\n\r\n", 1)[1])["error"] == "shutting down"
    assert j.proc.wait(timeout=30) == 0
