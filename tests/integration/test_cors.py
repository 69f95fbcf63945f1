"""cors: preflights answered by Junction (allowed, disallowed origin or
method), CORS fields on actual responses (relayed, local, rejections by a
later policy), wildcard subdomains, credentials, the upstream's own fields
replaced, and configuration errors, through the real binary."""
import http.client
import json
import subprocess

from conftest import BIN, read_head, app_config as cfg

ORIGIN = "https://app.example.com"


ROUTES = """
  - name: api
    match: { path_prefix: /api }
    upstream: app
    policies:
      - cors:
          origins: [https://app.example.com, "https://*.example.org"]
          methods: [GET, POST, PUT]
          headers: [X-Custom, Content-Type]
          expose_headers: [X-Backend, X-Total]
          max_age: 1h
  - name: guarded
    match: { path_prefix: /guarded }
    upstream: app
    policies:
      - cors: { origins: [https://app.example.com], credentials: true }
      - ip_filter: { deny: [127.0.0.0/8] }
  - name: open
    match: { path_prefix: /open }
    upstream: app
    policies:
      - cors: { origins: ["*"] }
  - name: open_creds
    match: { path_prefix: /creds }
    upstream: app
    policies:
      - cors: { origins: ["*"], credentials: true, headers: ["*"] }
  - name: local
    match: { path_prefix: /local }
    respond: { status: 200, body: "hi" }
    policies:
      - cors: { origins: [https://app.example.com] }
"""


def req(port, method, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def preflight(port, path, origin=ORIGIN, method="PUT", headers="X-Custom"):
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return req(port, "OPTIONS", path, h)


def cors_fields(r):
    return {k.lower(): v for k, v in r.getheaders() if k.lower().startswith("access-control-")}


def test_allowed_preflight_is_answered_by_junction(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, ROUTES))
    r, data = preflight(j.port, "/api/items")
    assert r.status == 204 and data == b""
    assert cors_fields(r) == {
        "access-control-allow-origin": ORIGIN,
        "access-control-allow-methods": "GET, POST, PUT",
        "access-control-allow-headers": "X-Custom, Content-Type",
        "access-control-max-age": "3600",
    }
    vary = r.getheader("Vary")
    assert "Origin" in vary and "Access-Control-Request-Method" in vary
    assert r.getheader("X-Request-Id")
    # Headers outside the list: the answer still names the allowed ones (the
    # browser then refuses the request).
    r, _ = preflight(j.port, "/api/items", headers="X-Other")
    assert r.status == 204
    assert r.getheader("Access-Control-Allow-Headers") == "X-Custom, Content-Type"
    assert b.received == []


def test_disallowed_preflight_gets_403_without_cors_fields(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, ROUTES))
    for origin, method in (("https://evil.example.net", "PUT"), (ORIGIN, "DELETE"),
                           ("https://app.example.com.evil.net", "GET"), ("null", "GET")):
        r, data = preflight(j.port, "/api/x", origin=origin, method=method)
        assert r.status == 403, (origin, method)
        body = json.loads(data)
        assert body["request_id"] == r.getheader("X-Request-Id")
        assert body["error"] == ("cors: method not allowed" if origin == ORIGIN
                                 else "cors: origin not allowed")
        assert cors_fields(r) == {}, (origin, method)
    assert b.received == []


def test_options_without_request_method_is_an_actual_request(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, ROUTES))
    r, _ = req(j.port, "OPTIONS", "/api/x", {"Origin": ORIGIN})
    assert r.status == 200 and r.getheader("X-Backend") == "b0"
    assert r.getheader("Access-Control-Allow-Origin") == ORIGIN
    assert len(b.received) == 1


def test_actual_request_from_an_allowed_origin_gets_cors_fields(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, ROUTES))
    r, _ = req(j.port, "GET", "/api/items", {"Origin": ORIGIN})
    assert r.status == 200
    assert cors_fields(r) == {
        "access-control-allow-origin": ORIGIN,
        "access-control-expose-headers": "X-Backend, X-Total",
    }
    assert "Origin" in r.getheader("Vary")
    # The request itself reached the upstream with its Origin.
    sent = {k.lower(): v for k, v in b.received[0]["headers"]}
    assert sent["origin"] == ORIGIN


def test_disallowed_origin_still_proceeds_without_cors_fields(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, ROUTES))
    r, _ = req(j.port, "POST", "/api/items", {"Origin": "https://evil.example.net"})
    assert r.status == 200 and len(b.received) == 1
    assert cors_fields(r) == {}
    assert r.getheader("Vary") == "Origin"  # caches must tell origins apart
    r, _ = req(j.port, "GET", "/api/items")  # no Origin at all
    assert r.status == 200 and cors_fields(r) == {}


def test_wildcard_subdomains_match_whole_labels_only(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, ROUTES))
    for origin, ok in (("https://a.example.org", True), ("https://a.b.example.org", True),
                       ("https://A.Example.ORG", True), ("https://example.org", False),
                       ("https://evil-example.org", False), ("http://a.example.org", False),
                       ("https://a.example.org:8443", False), ("https://.example.org", False),
                       ("https://a..example.org", False), ("https://a.example.org.evil", False),
                       ("https://x/.example.org", False)):
        r, _ = req(j.port, "GET", "/api/w", {"Origin": origin})
        got = r.getheader("Access-Control-Allow-Origin")
        assert got == (origin if ok else None), origin
        r, _ = preflight(j.port, "/api/w", origin=origin, method="GET")
        assert r.status == (204 if ok else 403), origin


def test_later_policy_rejection_and_local_answers_carry_cors_fields(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, ROUTES))
    r, _ = req(j.port, "GET", "/guarded", {"Origin": ORIGIN})
    assert r.status == 403  # ip_filter, after cors
    assert r.getheader("Access-Control-Allow-Origin") == ORIGIN
    assert r.getheader("Access-Control-Allow-Credentials") == "true"
    # The preflight is answered before ip_filter runs.
    r, _ = preflight(j.port, "/guarded", method="GET", headers=None)
    assert r.status == 204
    assert r.getheader("Access-Control-Allow-Credentials") == "true"
    assert r.getheader("Access-Control-Allow-Headers") is None  # none configured
    assert r.getheader("Access-Control-Allow-Methods") == "GET, HEAD, PUT, PATCH, POST, DELETE"
    assert r.getheader("Access-Control-Max-Age") == "600"
    r, data = req(j.port, "GET", "/local", {"Origin": ORIGIN})
    assert r.status == 200 and data == b"hi"
    assert r.getheader("Access-Control-Allow-Origin") == ORIGIN
    assert b.received == []


def test_any_origin_is_a_star_unless_credentials(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, ROUTES))
    r, _ = req(j.port, "GET", "/open", {"Origin": "https://anyone.test"})
    assert r.getheader("Access-Control-Allow-Origin") == "*"
    assert r.getheader("Vary") is None
    assert r.getheader("Access-Control-Allow-Credentials") is None
    r, _ = preflight(j.port, "/open", origin="https://anyone.test", method="GET")
    assert r.status == 204 and r.getheader("Access-Control-Allow-Origin") == "*"
    # With credentials the origin is echoed (a browser refuses "*" then).
    r, _ = req(j.port, "GET", "/creds", {"Origin": "https://anyone.test"})
    assert r.getheader("Access-Control-Allow-Origin") == "https://anyone.test"
    assert r.getheader("Access-Control-Allow-Credentials") == "true"
    # headers: ["*"] allows what the preflight asks for.
    r, _ = preflight(j.port, "/creds", origin="https://anyone.test", method="GET",
                     headers="x-a, authorization")
    assert r.status == 204
    assert r.getheader("Access-Control-Allow-Headers") == "x-a, authorization"


def test_upstream_cors_fields_are_replaced(junction, raw_server):
    def behave(srv, c):
        while True:
            head = read_head(c)
            if not head:
                return
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                      b"Access-Control-Allow-Origin: *\r\n"
                      b"Access-Control-Allow-Credentials: true\r\n"
                      b"access-control-expose-headers: X-Secret\r\n"
                      b"Vary: Accept-Encoding\r\n\r\nok")
    u = raw_server(behave)
    j = junction(cfg(u, ROUTES))
    r, _ = req(j.port, "GET", "/api/a", {"Origin": ORIGIN})
    assert cors_fields(r) == {
        "access-control-allow-origin": ORIGIN,
        "access-control-expose-headers": "X-Backend, X-Total",
    }
    varies = [v for k, v in r.getheaders() if k.lower() == "vary"]
    assert varies == ["Accept-Encoding", "Origin"]
    r, _ = req(j.port, "GET", "/api/a", {"Origin": "https://evil.example.net"})
    assert cors_fields(r) == {}


def test_preflight_over_http2(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, ROUTES))
    p = subprocess.run(["curl", "-sS", "-i", "--http2-prior-knowledge", "-X", "OPTIONS",
                        "-H", "Origin: " + ORIGIN, "-H", "Access-Control-Request-Method: PUT",
                        "-H", "Access-Control-Request-Headers: x-custom",
                        f"http://127.0.0.1:{j.port}/api/h2"],
                       capture_output=True, text=True, timeout=30)
    out = p.stdout.lower()
    assert out.startswith("http/2 204"), p.stdout + p.stderr
    assert "access-control-allow-origin: " + ORIGIN in out
    assert "access-control-allow-headers: x-custom, content-type" in out
    assert b.received == []


def check(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return subprocess.run([BIN, "check", "-c", str(p)], capture_output=True, text=True, timeout=30)


def test_cors_configuration_errors_are_reported_with_positions(tmp_path, backends):
    (b,) = backends(1)
    text = cfg(b, """
  - name: a
    match: { path_prefix: /a }
    upstream: app
    policies:
      - cors: { origins: ["https://app.example.com/", "*", "https://x.*.com"] }
  - name: b
    match: { path_prefix: /b }
    upstream: app
    policies:
      - cors: { methods: [GET] }
  - name: c
    match: { path_prefix: /c }
    upstream: app
    policies:
      - cors: { origins: ["example.com", "https://a.test:99999"], headers: ["*", X-A],
                max_age: forever, credentials: maybe, expose_headers: ["bad header"] }
""").replace("{port}", "1")
    r = check(tmp_path, text)
    assert r.returncode != 0
    for want in ("'https://app.example.com/' has a path or a trailing slash",
                 "origins: '*' must be the only item",
                 "'https://x.*.com' has a '*' that is not a whole first label",
                 "missing required key 'origins' in cors",
                 "'example.com' is not an origin",
                 "'https://a.test:99999' has an invalid port",
                 "headers: '*' must be the only item",
                 "max_age: invalid duration 'forever'",
                 "credentials: ",
                 "'bad header' is not a valid header name"):
        assert want in r.stderr, r.stderr
    for line in r.stderr.strip().splitlines():
        assert line.startswith(str(tmp_path / "bad.yaml") + ":"), line
