"""The admin API (docs/operations.md, "Admin API"): the token, every
endpoint, refused changes, malformed HTTP, configuration errors, and servers
added and removed under load.

Tests of runtime changes and reloads skip when the server answers 501 (the
runtime of this build cannot change servers or reload yet); they pass once
it can."""
import http.client
import json
import socket
import subprocess
import threading
import urllib.parse

import pytest

from conftest import BIN, Holding, free_port, recv_until_close, wait_for

TOKEN = "adm-T0ken-5ecret"
# Secrets written in the configuration; GET /config must show none of them.
SECRETS = ["STICKY-S3CRET-x1", "PLAIN-API-KEY-x2", "aa" * 32, "MATCH-AUTH-x3", "HDR-KEY-x4",
           "$2y$12$abcdefghijklmnopqrstuuQ7Dh3uG2X6QmjG0bV0n3y5Xw1l8p3C2"]


def write_token(tmp_path, text=TOKEN + "\n", name="token"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def config(backends, token_file, extra="", admin_address="127.0.0.1:{port1}", workers=2):
    servers = ", ".join("{ address: 127.0.0.1:%d }" % b.port for b in backends)
    admin = "admin: { address: %s%s }" % (
        admin_address, ", token_file: %s" % token_file if token_file else "")
    return """
workers: %d
listeners:
  - name: public
    address: 127.0.0.1:{port0}
%s
%s
upstreams:
  app:
    servers: [ %s ]
routes:
  - name: hello
    match: { path: /hello }
    respond: { status: 200, body: "hi" }
  - name: app
    match: { path_prefix: / }
    upstream: app
""" % (workers, admin, extra, servers)


class Admin:
    """A client of the admin listener; one keep-alive connection per call."""

    def __init__(self, port, token=TOKEN):
        self.port = port
        self.token = token

    def call(self, method, path, body=None, token="default", headers=None):
        token = self.token if token == "default" else token
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            h["Content-Type"] = "application/json"
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            raw = r.read()
            ctype = r.getheader("Content-Type", "")
            out = json.loads(raw) if ctype.startswith("application/json") else raw
            return r.status, out, r
        finally:
            c.close()

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def change(self, method, path, body=None):
        """A change: skips the test while the runtime answers 501."""
        status, out, r = self.call(method, path, body)
        if status == 501:
            pytest.skip("runtime changes/reload not available in this build (501)")
        return status, out, r


def server_path(address, upstream="app"):
    return "/upstreams/%s/servers/%s" % (upstream, urllib.parse.quote(address, safe=""))


@pytest.fixture
def admin_junction(junction, backends, tmp_path):
    """Junction with an admin listener and two backends; returns (j, admin, backends)."""
    bs = backends(2)
    j = junction(config(bs, write_token(tmp_path)), nports=2)
    return j, Admin(j.ports[1]), bs


def get_app(port, path="/x"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return r.status, r.getheader("X-Backend")
    finally:
        c.close()


ENDPOINTS = [
    ("GET", "/status", None),
    ("GET", "/config", None),
    ("GET", "/routes", None),
    ("GET", "/upstreams", None),
    ("GET", "/upstreams/app", None),
    ("GET", "/stats", None),
    ("GET", "/metrics", None),
    ("POST", "/upstreams/app/servers", {"address": "127.0.0.1:1", "weight": 2}),
    ("PATCH", "/upstreams/app/servers/%s", {"weight": 3}),
    ("DELETE", "/upstreams/app/servers/%s", None),
    ("POST", "/reload", None),
]


def test_every_endpoint_refuses_no_token_and_a_wrong_token(admin_junction):
    j, admin, bs = admin_junction
    addr = urllib.parse.quote("127.0.0.1:%d" % bs[0].port, safe="")
    before = admin.get("/upstreams")[1]
    for method, path, body in ENDPOINTS:
        path = path % addr if "%s" in path else path
        for token in (None, "wrong", TOKEN + "x", TOKEN[:-1], ""):
            status, out, r = admin.call(method, path, body, token=token)
            assert status == 401, (method, path, token, status, out)
            assert r.getheader("WWW-Authenticate", "").startswith("Bearer"), (method, path)
            assert "error" in out
    # Nothing was changed by the refused requests.
    assert admin.get("/upstreams")[1] == before


def test_every_read_endpoint_answers_the_right_token(admin_junction):
    j, admin, bs = admin_junction
    for method, path, body in ENDPOINTS[:7]:
        status, out, r = admin.call(method, path)
        assert status == 200, (path, out)
        if path != "/metrics":
            assert r.getheader("Content-Type") == "application/json", path
            assert isinstance(out, dict)
        else:
            assert r.getheader("Content-Type").startswith("text/plain")


def test_every_change_endpoint_answers_the_right_token(admin_junction):
    j, admin, bs = admin_junction
    spare = free_port()
    status, out, _ = admin.change("POST", "/upstreams/app/servers",
                                  {"address": "127.0.0.1:%d" % spare, "weight": 2})
    assert status == 201, out
    assert out["address"] == "127.0.0.1:%d" % spare and out["weight"] == 2
    status, out, _ = admin.change("PATCH", server_path("127.0.0.1:%d" % spare), {"weight": 3})
    assert status == 200 and out["weight"] == 3, out
    status, out, _ = admin.change("DELETE", server_path("127.0.0.1:%d" % spare))
    assert status == 200 and out == {"removed": "127.0.0.1:%d" % spare}, out
    status, out, _ = admin.change("POST", "/reload")
    assert status == 200 and out["applied"] is True, out


def test_the_page_needs_no_token(admin_junction):
    j, admin, bs = admin_junction
    status, body, r = admin.get("/", token=None)
    assert status == 200
    assert r.getheader("Content-Type").startswith("text/html")
    assert b"<html" in body.lower()
    status, _, _ = admin.call("POST", "/", token=None)
    assert status == 405
    status, body, r = admin.get("/favicon.ico", token=None)
    assert status == 204 and body == b"" and r.getheader("Content-Length") is None


def test_the_token_files_trailing_crlf_is_not_part_of_the_token(junction, backends, tmp_path):
    bs = backends(1)
    j = junction(config(bs, write_token(tmp_path, TOKEN + "\r\n")), nports=2)
    admin = Admin(j.ports[1])
    assert admin.get("/status")[0] == 200


def test_without_token_file_every_endpoint_is_denied(junction, backends):
    bs = backends(1)
    j = junction(config(bs, None), nports=2)
    admin = Admin(j.ports[1])
    for method, path, body in ENDPOINTS:
        path = path % "x" if "%s" in path else path
        status, out, _ = admin.call(method, path, body)
        assert status == 403, (path, status, out)
        assert "token_file" in out["error"]
    assert admin.get("/", token=None)[0] == 200


def check(tmp_path, text):
    p = tmp_path / "check.yaml"
    p.write_text(text)
    return subprocess.run([BIN, "check", "-c", str(p)], capture_output=True, text=True, timeout=30)


def run_refused(tmp_path, text):
    """Starts junction on text; it must exit non-zero at once."""
    p = tmp_path / "run.yaml"
    p.write_text(text)
    r = subprocess.run([BIN, "-c", str(p)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    return r


def test_non_loopback_admin_without_token_refuses_to_start(tmp_path, backends):
    bs = backends(1)
    text = config(bs, None, admin_address="0.0.0.0:%d" % free_port()).replace(
        "{port0}", str(free_port()))
    r = check(tmp_path, text)
    assert r.returncode != 0
    assert "check.yaml:6:" in r.stderr and "token_file is required" in r.stderr, r.stderr
    r = run_refused(tmp_path, text)
    assert "run.yaml:6:" in r.stderr and "token_file is required" in r.stderr, r.stderr


@pytest.mark.parametrize("content,why", [("", "empty"), ("\n", "empty"), ("\r\n", "empty"),
                                         ("a\nb\n", "one line")])
def test_an_empty_or_bad_token_file_is_an_error(tmp_path, backends, content, why):
    bs = backends(1)
    tf = write_token(tmp_path, content)
    text = config(bs, tf).replace("{port0}", str(free_port())).replace("{port1}", str(free_port()))
    r = check(tmp_path, text)
    assert r.returncode != 0
    assert "check.yaml:6:" in r.stderr and "token_file" in r.stderr and why in r.stderr, r.stderr


def test_an_unreadable_token_file_is_an_error(tmp_path, backends):
    bs = backends(1)
    text = config(bs, str(tmp_path / "missing")).replace("{port0}", str(free_port())).replace(
        "{port1}", str(free_port()))
    r = check(tmp_path, text)
    assert r.returncode != 0
    assert "check.yaml:6:" in r.stderr and "cannot open" in r.stderr, r.stderr


def test_admin_address_is_required(tmp_path, backends):
    bs = backends(1)
    text = config(bs, None).replace("{port0}", str(free_port())).replace(
        "admin: { address: 127.0.0.1:{port1} }", "admin: { token_file: x }")
    r = check(tmp_path, text)
    assert r.returncode != 0 and "address" in r.stderr, r.stderr


def test_status(admin_junction):
    j, admin, bs = admin_junction
    status, out, _ = admin.get("/status")
    assert status == 200
    assert out["workers"] == 2 and out["generation"] >= 1
    assert out["config_file"].endswith("junction.yaml")
    assert out["uptime_seconds"] >= 0 and out["started_at"].endswith("Z")
    assert set(out["reloads"]) == {"ok", "failed", "last_at", "last_ok"}
    assert isinstance(out["version"], str) and out["version"]


def test_config_shows_the_document_without_its_secrets(junction, backends, tmp_path):
    bs = backends(1)
    extra = """
consumers:
  - name: alice
    api_keys: [ { key: "%s" }, { sha256: "%s" } ]
    basic: { username: alice, password_hash: "%s" }
""" % (SECRETS[1], SECRETS[2], SECRETS[5])
    text = config(bs, write_token(tmp_path), extra=extra)
    text = text.replace("    servers: [", "    sticky: { cookie: s, secret: \"%s\" }\n    servers: ["
                        % SECRETS[0])
    text = text.replace("    match: { path: /hello }",
                        "    match: { path: /hello, headers: { Authorization: \"%s\" } }\n"
                        "    request_headers: { set: { X-Api-Key: \"%s\", X-Plain: shown } }"
                        % (SECRETS[3], SECRETS[4]))
    j = junction(text, nports=2)
    admin = Admin(j.ports[1])
    status, out, r = admin.get("/config")
    assert status == 200
    raw = json.dumps(out)
    for s in SECRETS + [TOKEN]:
        assert s not in raw, s
    c = out["config"]
    assert c["workers"] == 2
    assert c["upstreams"]["app"]["sticky"] == {"cookie": "s", "secret": "<redacted>"}
    assert c["consumers"][0]["api_keys"] == [{"key": "<redacted>"}, {"sha256": "<redacted>"}]
    assert c["consumers"][0]["basic"] == {"username": "alice", "password_hash": "<redacted>"}
    hello = c["routes"][0]
    assert hello["match"]["headers"] == {"Authorization": "<redacted>"}
    assert hello["request_headers"]["set"] == {"X-Api-Key": "<redacted>", "X-Plain": "shown"}
    assert c["admin"]["token_file"].endswith("token")
    assert out["runtime_changes"] == [] and out["generation"] >= 1
    status, routes, _ = admin.get("/routes")
    assert SECRETS[3] not in json.dumps(routes)


def test_routes(admin_junction):
    j, admin, bs = admin_junction
    status, out, _ = admin.get("/routes")
    assert status == 200
    names = [r["name"] for r in out["routes"]]
    assert names == ["hello", "app"]
    app = out["routes"][1]
    assert app["upstream"] == "app" and app["match"]["path_prefix"] == "/"
    assert app["listeners"] == ["public"] and app["policies"] == []
    assert out["routes"][0]["upstream"] is None


def test_upstreams_show_every_server(admin_junction):
    j, admin, bs = admin_junction
    for _ in range(6):
        assert get_app(j.ports[0])[0] == 200
    status, out, _ = admin.get("/upstreams")
    assert status == 200
    [up] = out["upstreams"]
    assert up["name"] == "app" and up["balance"] == "round_robin" and up["protocol"] == "http1"
    assert [s["address"] for s in up["servers"]] == ["127.0.0.1:%d" % b.port for b in bs]
    for s in up["servers"]:
        assert s["weight"] == 1 and s["drain"] is False and s["health"] == "healthy"
        assert s["checked_down"] is False and s["ejected"] is False and s["ejections"] == 0
        assert s["in_flight"] == 0 and s["connections"] >= 0
        assert isinstance(s["latency_ewma_ms"], float) and s["latency_ewma_ms"] > 0
    status, one, _ = admin.get("/upstreams/app")
    assert status == 200 and one["name"] == "app" and len(one["servers"]) == 2
    assert admin.get("/upstreams/nope")[0] == 404


def test_in_flight_counts_requests_held_by_a_server(junction, backends, tmp_path):
    Holding.gate.clear()
    [b] = backends(1, handler=Holding)
    b.held = 0
    j = junction(config([b], write_token(tmp_path)), nports=2)
    admin = Admin(j.ports[1])
    threads = [threading.Thread(target=get_app, args=(j.ports[0],)) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: b.held == 3, what="3 requests held")
        s = admin.get("/upstreams/app")[1]["servers"][0]
        assert s["in_flight"] == 3 and s["connections"] >= 3
    finally:
        Holding.gate.set()
        for t in threads:
            t.join()
    wait_for(lambda: admin.get("/upstreams/app")[1]["servers"][0]["in_flight"] == 0,
             what="in_flight back to 0")


def test_a_down_server_shows_unhealthy(junction, backends, tmp_path):
    bs = backends(1)
    dead = free_port()
    text = config(bs, write_token(tmp_path)).replace(
        "    servers: [", "    health: { interval: 100ms, timeout: 100ms, unhealthy_threshold: 1 }\n"
        "    servers: [ { address: 127.0.0.1:%d }, " % dead)
    j = junction(text, nports=2)
    admin = Admin(j.ports[1])

    def health():
        servers = admin.get("/upstreams/app")[1]["servers"]
        return {s["address"]: (s["health"], s["checked_down"]) for s in servers}
    wait_for(lambda: health()["127.0.0.1:%d" % dead] == ("unhealthy", True), what="unhealthy")
    assert health()["127.0.0.1:%d" % bs[0].port] == ("healthy", False)


def test_unknown_path_is_404_and_a_wrong_method_405_with_allow(admin_junction):
    j, admin, bs = admin_junction
    for path in ("/nope", "/upstreams/app/nope", "/status/x", "/upstreams/app/servers/a/b"):
        status, out, _ = admin.get(path)
        assert status == 404, path
        assert "error" in out
        assert admin.get(path, token=None)[0] == 401, path  # paths are checked after the token
    for method, path, allow in (("POST", "/status", "GET"), ("DELETE", "/upstreams", "GET"),
                                ("GET", "/reload", "POST"),
                                ("GET", "/upstreams/app/servers", "POST"),
                                ("PUT", "/upstreams/app/servers/x", "PATCH, DELETE")):
        status, out, r = admin.call(method, path)
        assert status == 405, (method, path)
        assert r.getheader("Allow") == allow


BAD_ADDS = [
    b"{",
    b"not json",
    b"[]",
    b'"x"',
    b'{"address": "127.0.0.1:9"} trailing',
    b'{"address": "127.0.0.1:9", "address": "127.0.0.1:10"}',
    b'{}',
    b'{"weight": 2}',
    b'{"address": 9}',
    b'{"address": "nope"}',
    b'{"address": "127.0.0.1:0"}',
    b'{"address": "127.0.0.1:9", "weight": 0}',
    b'{"address": "127.0.0.1:9", "weight": 1001}',
    b'{"address": "127.0.0.1:9", "weight": "2"}',
    b'{"address": "127.0.0.1:9", "weight": 2.5}',
    b'{"address": "127.0.0.1:9", "drain": "yes"}',
    b'{"address": "127.0.0.1:9", "colour": "red"}',
    b'',
]
BAD_PATCHES = [
    b"{", b"[]", b"{}", b'{"weight": 0}', b'{"weight": 1001}', b'{"weight": null}',
    b'{"drain": 1}', b'{"address": "127.0.0.1:9"}', b'{"weight": 2, "extra": 1}', b'',
]


def test_bad_json_and_invalid_changes_are_400_and_change_nothing(admin_junction):
    j, admin, bs = admin_junction
    before = admin.get("/upstreams")[1]
    for body in BAD_ADDS:
        status, out, _ = admin.call("POST", "/upstreams/app/servers", body)
        assert status == 400, (body, status, out)
        assert out["error"], body
    target = server_path("127.0.0.1:%d" % bs[0].port)
    for body in BAD_PATCHES:
        status, out, _ = admin.call("PATCH", target, body)
        assert status == 400, (body, status, out)
    status, out, _ = admin.call("DELETE", target, b'{"x": 1}')
    assert status == 400
    after = admin.get("/upstreams")[1]
    for up in (before, after):
        for s in up["upstreams"][0]["servers"]:
            s.pop("latency_ewma_ms"), s.pop("connections")
    assert after == before
    assert admin.get("/config")[1]["runtime_changes"] == []


def test_unknown_upstream_or_server_is_404_and_a_duplicate_409(admin_junction):
    j, admin, bs = admin_junction
    addr = "127.0.0.1:%d" % bs[0].port
    status, out, _ = admin.call("POST", "/upstreams/nope/servers", {"address": "127.0.0.1:9"})
    assert status == 404 and "nope" in out["error"]
    status, _, _ = admin.call("PATCH", server_path(addr, "nope"), {"weight": 2})
    assert status == 404
    status, _, _ = admin.call("PATCH", server_path("127.0.0.1:9"), {"weight": 2})
    assert status == 404
    status, _, _ = admin.call("DELETE", server_path("127.0.0.1:9"))
    assert status == 404
    for dup in (addr, "localhost:%d" % bs[0].port):
        status, out, _ = admin.call("POST", "/upstreams/app/servers", {"address": dup})
        assert status == 409, (dup, out)
    assert len(admin.get("/upstreams/app")[1]["servers"]) == 2


def test_server_changes_take_effect(admin_junction):
    j, admin, bs = admin_junction
    a0, a1 = ("127.0.0.1:%d" % b.port for b in bs)
    status, out, _ = admin.change("PATCH", server_path(a1), {"drain": True})
    assert status == 200 and out["drain"] is True and out["address"] == a1, out
    seen = {get_app(j.ports[0])[1] for _ in range(10)}
    assert seen == {"b0"}
    status, out, _ = admin.change("PATCH", server_path(a1), {"drain": False, "weight": 7})
    assert status == 200 and out["drain"] is False and out["weight"] == 7
    changes = admin.get("/config")[1]["runtime_changes"]
    assert any(c["address"] == a1 and c["change"] == "changed" for c in changes), changes
    status, out, _ = admin.change("DELETE", server_path(a0))
    assert status == 200 and out == {"removed": a0}
    assert [s["address"] for s in admin.get("/upstreams/app")[1]["servers"]] == [a1]
    assert {get_app(j.ports[0])[1] for _ in range(5)} == {"b1"}


def send_raw(port, data, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    return recv_until_close(s)


@pytest.mark.parametrize("data,code", [
    (b"GARBAGE\r\n\r\n", b"400"),
    (b"GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", b"400"),
    (b"GET /status HTTP/1.1\r\nHost x\r\n\r\n", b"400"),
    (b"GET status HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
    (b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
    (b"GET /upstreams/a%00b HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
    (b"GET /upstreams//x HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\n" + b"X-A: " + b"a" * 20000 + b"\r\n\r\n", b"431"),
    (b"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n", b"413"),
    (b"POST /reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"411"),
])
def test_malformed_http_gets_an_error_and_a_closed_connection(admin_junction, data, code):
    j, admin, bs = admin_junction
    out = send_raw(j.ports[1], data)  # returns only once the server closed
    assert out.startswith(b"HTTP/1.1 " + code), out[:200]
    assert b"Connection: close" in out
    assert admin.get("/status")[0] == 200  # still serving


def test_keep_alive_and_pipelining(admin_junction):
    j, admin, bs = admin_junction
    auth = ("Authorization: Bearer %s\r\n" % TOKEN).encode()
    req = b"GET /status HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
    last = b"GET /routes HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + auth + b"\r\n"
    out = send_raw(j.ports[1], req * 3 + last)
    assert out.count(b"HTTP/1.1 200 OK") == 4


def test_a_silent_client_is_closed(junction, backends, tmp_path):
    bs = backends(1)
    j = junction(config(bs, write_token(tmp_path), extra="timeouts: { client_header: 300ms }"),
                 nports=2)
    s = socket.create_connection(("127.0.0.1", j.ports[1]), timeout=30)
    s.sendall(b"GET /status HTTP/1.1\r\n")  # and nothing more
    out = recv_until_close(s)
    assert out == b"" or out.startswith(b"HTTP/1.1 408")


def test_metrics_listener_serves_only_metrics_without_a_token(junction, backends, tmp_path):
    bs = backends(1)
    j = junction(config(bs, write_token(tmp_path), extra="metrics: { address: 127.0.0.1:{port2} }"),
                 nports=3)
    m = Admin(j.ports[2], token=None)
    status, body, r = m.get("/metrics")
    assert status == 200 and r.getheader("Content-Type").startswith("text/plain")
    assert b"junction_" in body
    assert m.get("/status")[0] == 404
    assert m.get("/")[0] == 404
    assert m.call("POST", "/metrics")[0] == 405
    admin = Admin(j.ports[1])
    assert admin.get("/metrics", token=None)[0] == 401
    assert admin.get("/metrics")[0] == 200


def test_reload_answers_applied_or_the_errors(admin_junction):
    j, admin, bs = admin_junction
    gen = admin.get("/status")[1]["generation"]
    status, out, _ = admin.change("POST", "/reload")
    assert status == 200 and out["applied"] is True and out["generation"] > gen
    with open(j.path, "a") as f:
        f.write("\nbogus_key: 1\n")
    status, out, _ = admin.call("POST", "/reload")
    assert status == 400 and out["applied"] is False
    assert any("junction.yaml:" in e and "bogus_key" in e for e in out["errors"]), out
    assert get_app(j.ports[0], "/hello")[0] == 200  # the old configuration serves on
    j.expect_errors = True


def test_reload_picks_up_a_new_token(admin_junction, tmp_path):
    j, admin, bs = admin_junction
    with open(str(tmp_path / "token"), "w") as f:
        f.write("new-token\n")
    status, out, _ = admin.change("POST", "/reload")
    assert status == 200, out
    assert admin.get("/status")[0] == 401
    assert Admin(j.ports[1], "new-token").get("/status")[0] == 200


class Load:
    """A client thread sending steady requests; counts answers per backend
    and failures (anything but a 200, or a connection error)."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.ok = 0
        self.failures = []
        self.by_backend = {}
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("GET", "/load")
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    self.failures.append(r.status)
                else:
                    self.ok += 1
                    b = r.getheader("X-Backend")
                    self.by_backend[b] = self.by_backend.get(b, 0) + 1
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                self.failures.append(repr(e))
                conn = None

    def finish(self):
        self.stop.set()
        self.thread.join(30)
        return self.failures


def test_adding_a_server_under_load_puts_traffic_on_it(junction, backends, tmp_path):
    b0, b1 = backends(2)
    j = junction(config([b0], write_token(tmp_path)), nports=2)
    admin = Admin(j.ports[1])
    loads = [Load(j.ports[0]) for _ in range(4)]
    try:
        wait_for(lambda: sum(l.ok for l in loads) > 50, what="traffic")
        status, out, _ = admin.change("POST", "/upstreams/app/servers",
                                      {"address": "127.0.0.1:%d" % b1.port})
        assert status == 201, out
        wait_for(lambda: sum(l.by_backend.get("b1", 0) for l in loads) > 20,
                 what="traffic on the added server")
    finally:
        failures = [f for l in loads for f in l.finish()]
    assert failures == []


def test_removing_a_server_under_load_loses_no_request(junction, backends, tmp_path):
    b0, b1 = backends(2)
    j = junction(config([b0, b1], write_token(tmp_path)), nports=2)
    admin = Admin(j.ports[1])
    loads = [Load(j.ports[0]) for _ in range(4)]
    try:
        wait_for(lambda: sum(l.by_backend.get("b1", 0) for l in loads) > 20, what="traffic")
        status, out, _ = admin.change("DELETE", server_path("127.0.0.1:%d" % b1.port))
        assert status == 200, out
        n = len(b1.received)
        wait_for(lambda: sum(l.by_backend.get("b0", 0) for l in loads) > 200, what="more traffic")
        assert len(b1.received) <= n + 8  # at most the requests in flight at the change
    finally:
        failures = [f for l in loads for f in l.finish()]
    assert failures == []


def test_an_admin_address_in_use_stops_the_start(tmp_path, backends):
    bs = backends(1)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        text = config(bs, write_token(tmp_path)).replace("{port0}", str(free_port())).replace(
            "{port1}", str(busy.getsockname()[1]))
        r = run_refused(tmp_path, text)
    assert "admin listener" in r.stderr, r.stderr
