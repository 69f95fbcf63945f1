"""Routing, direct responses, header actions and weights, through the real binary."""
import http.client
import json
import subprocess

from conftest import BIN


def cfg(b1, b2, extra_routes=""):
    return """
workers: 1
listeners:
  - name: public
    address: 127.0.0.1:{port}
access_log: { path: stdout, format: json }
upstreams:
  users:
    balance: round_robin
    servers:
      - { address: 127.0.0.1:%d, weight: 3 }
      - { address: 127.0.0.1:%d }
routes:
  - name: users
    match: { path_prefix: /users, methods: [GET, POST] }
    upstream: users
  - name: catalog
    match: { host: "*.shop.test", path_prefix: /catalog }
    upstream: users
    strip_prefix: /catalog
    request_headers: { set: { X-Gateway: junction } }
    response_headers: { set: { X-Served-By: junction }, remove: [X-Backend] }
  - name: health
    match: { path: /healthz }
    respond: { status: 200, body: "ok\\n", headers: { Content-Type: text/plain } }
%s""" % (b1.port, b2.port, extra_routes)


def get(port, path, headers=None, method="GET", body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def test_direct_response_route_answers_without_upstream(junction, backends):
    b1, b2 = backends(2)
    j = junction(cfg(b1, b2))
    r, data = get(j.port, "/healthz")
    assert r.status == 200 and data == b"ok\n"
    assert r.getheader("Content-Type") == "text/plain"
    assert r.getheader("X-Request-Id")
    assert b1.received == [] and b2.received == []


def test_unmatched_request_gets_404_json(junction, backends):
    b1, b2 = backends(2)
    j = junction(cfg(b1, b2))
    r, data = get(j.port, "/nothing-here")
    assert r.status == 404
    body = json.loads(data)
    assert body["error"] and body["request_id"] == r.getheader("X-Request-Id")


def test_method_not_in_route_is_not_matched(junction, backends):
    b1, b2 = backends(2)
    j = junction(cfg(b1, b2))
    r, _ = get(j.port, "/users/1", method="DELETE")
    assert r.status == 404


def test_prefix_matches_on_segment_boundary(junction, backends):
    b1, b2 = backends(2)
    j = junction(cfg(b1, b2))
    assert get(j.port, "/users/7")[0].status == 200
    assert get(j.port, "/users")[0].status == 200
    assert get(j.port, "/usersx")[0].status == 404


def test_weighted_round_robin_spreads_three_to_one(junction, backends):
    b1, b2 = backends(2)
    j = junction(cfg(b1, b2))
    seen = [json.loads(get(j.port, "/users/%d" % i)[1])["server"] for i in range(40)]
    assert seen.count("b0") == 30 and seen.count("b1") == 10
    # smooth: the light server is never starved for more than three picks in a row
    assert "b0b0b0b0" not in "".join(seen)


def test_wildcard_host_strip_prefix_keeps_query_and_sets_header(junction, backends):
    b1, b2 = backends(2)
    j = junction(cfg(b1, b2))
    r, data = get(j.port, "/catalog/items?page=2&q=x",
                  headers={"Host": "eu.shop.test:8080", "X-Gateway": "client-value"})
    assert r.status == 200
    rec = json.loads(data)
    assert rec["path"] == "/items?page=2&q=x"
    gw = [v for k, v in rec["headers"] if k.lower() == "x-gateway"]
    assert gw == ["junction"]
    assert r.getheader("X-Served-By") == "junction"
    assert r.getheader("X-Backend") is None


def test_wildcard_host_does_not_match_bare_domain(junction, backends):
    b1, b2 = backends(2)
    j = junction(cfg(b1, b2))
    assert get(j.port, "/catalog/items", headers={"Host": "shop.test"})[0].status == 404
    assert get(j.port, "/catalog/items", headers={"Host": "A.SHOP.TEST"})[0].status == 200


def test_dot_segments_cannot_escape_to_other_route(junction, backends):
    b1, b2 = backends(2)
    j = junction(cfg(b1, b2))
    r, data = get(j.port, "/public/../users/1")
    assert r.status == 200 and json.loads(data)["path"] == "/users/1"
    r, data = get(j.port, "/%2e%2e/healthz")
    assert r.status == 200 and data == b"ok\n"


def test_forwarding_headers_and_hop_by_hop_removal(junction, backends):
    b1, b2 = backends(2)
    j = junction(cfg(b1, b2))
    r, data = get(j.port, "/users/1", headers={
        "Host": "api.test", "Connection": "keep-alive, X-Drop", "X-Drop": "secret",
        "Keep-Alive": "timeout=5", "TE": "trailers", "Proxy-Connection": "keep-alive",
        "X-Forwarded-For": "10.1.1.1", "X-Request-Id": "abc-123"})
    rec = json.loads(data)
    h = {k.lower(): v for k, v in rec["headers"]}
    for gone in ("x-drop", "keep-alive", "te", "proxy-connection"):
        assert gone not in h
    assert h["host"] == "api.test"
    assert h["x-forwarded-for"] == "10.1.1.1, 127.0.0.1"
    assert h["x-forwarded-proto"] == "http"
    assert h["x-forwarded-host"] == "api.test"
    assert "junction" in h["via"]
    assert h["x-request-id"] == "abc-123"
    assert r.getheader("X-Request-Id") == "abc-123"


def test_request_id_is_generated_when_absent(junction, backends):
    b1, b2 = backends(2)
    j = junction(cfg(b1, b2))
    r, data = get(j.port, "/users/1")
    rid = r.getheader("X-Request-Id")
    assert rid and len(rid) >= 16
    h = {k.lower(): v for k, v in json.loads(data)["headers"]}
    assert h["x-request-id"] == rid


def test_access_log_has_one_json_line_per_request(junction, backends):
    b1, b2 = backends(2)
    j = junction(cfg(b1, b2))
    r, _ = get(j.port, "/users/5")
    get(j.port, "/healthz")
    j.stop()
    lines = j.access_lines()
    assert len(lines) == 2
    first = lines[0]
    assert first["method"] == "GET" and first["path"] == "/users/5" and first["status"] == 200
    assert first["route"] == "users" and first["upstream"].startswith("127.0.0.1:")
    assert first["request_id"] == r.getheader("X-Request-Id")
    assert first["client"] == "127.0.0.1"


def test_check_command_reports_errors_with_position(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("workers: 1\nlisteners:\n  - name: a\n    address: 127.0.0.1:1\n    bogus: 2\n")
    p = subprocess.run([BIN, "check", "-c", str(bad)], capture_output=True, text=True)
    assert p.returncode != 0
    assert f"{bad}:5:5:" in p.stderr


def test_bad_config_never_starts_a_server(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("listeners:\n  - name: a\n    address: 127.0.0.1:1\nroutes:\n"
                   "  - match: { path: /x }\n    upstream: missing\n")
    p = subprocess.run([BIN, "-c", str(bad)], capture_output=True, text=True, timeout=20)
    assert p.returncode != 0 and ":6:" in p.stderr


def test_version_and_help():
    p = subprocess.run([BIN, "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("junction ")
    p = subprocess.run([BIN, "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "check -c FILE" in p.stdout
