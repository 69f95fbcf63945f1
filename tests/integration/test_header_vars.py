"""${variables} in a route's request_headers and response_headers values:
client_ip (as trusted_proxies decides it), request_id, consumer (absent
without one: the field is left out, and a client's own is removed by set),
the $${ escape, and configuration errors with positions."""
import http.client
import subprocess

from conftest import BIN, app_config as cfg


ROUTES = """
  - name: vars
    match: { path_prefix: / }
    upstream: app
    request_headers:
      set:
        X-Client: "${client_ip}"
        X-Trace: "rid=${request_id};ip=${client_ip}"
        X-Consumer: "${consumer}"
        X-Literal: "$${consumer} costs $5"
        X-Plain: plain
      add:
        X-Consumer-Group: "group-of-${consumer}"
    response_headers:
      set:
        X-Echo-Id: "id=${request_id}"
        X-Seen-By: "${consumer}"
"""


def get(port, path="/", headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    r.read()
    c.close()
    return r


def sent(b, i=-1):
    return {k.lower(): v for k, v in b.received[i]["headers"]}


def test_client_ip_is_the_client_a_trusted_proxy_names(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, ROUTES, "trusted_proxies: [127.0.0.1/32]"))
    r = get(j.port, "/a", {"X-Forwarded-For": "198.51.100.23"})
    assert r.status == 200
    h = sent(b)
    assert h["x-client"] == "198.51.100.23"
    assert h["x-trace"] == "rid=%s;ip=198.51.100.23" % r.getheader("X-Request-Id")
    assert h["x-plain"] == "plain"


def test_request_id_is_the_one_the_client_gets(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, ROUTES))
    r = get(j.port, "/b")
    rid = r.getheader("X-Request-Id")
    assert rid and r.getheader("X-Echo-Id") == "id=" + rid
    assert sent(b)["x-trace"] == "rid=%s;ip=127.0.0.1" % rid
    assert sent(b)["x-client"] == "127.0.0.1"  # the peer: no trusted proxy here
    # A client's own sane X-Request-Id is kept, and is the variable's value.
    r = get(j.port, "/c", {"X-Request-Id": "abc-123"})
    assert r.getheader("X-Echo-Id") == "id=abc-123"
    assert sent(b)["x-trace"].startswith("rid=abc-123;")


def test_a_variable_without_value_leaves_the_field_out(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, ROUTES))
    # No consumer policy ran: set removes the client's own X-Consumer, add adds nothing.
    r = get(j.port, "/d", {"X-Consumer": "admin", "X-Consumer-Group": "root"})
    h = sent(b)
    assert "x-consumer" not in h
    assert h["x-consumer-group"] == "root"  # only the client's own
    assert r.getheader("X-Seen-By") is None


def test_dollar_dollar_brace_is_a_literal(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, ROUTES))
    get(j.port, "/e")
    assert sent(b)["x-literal"] == "${consumer} costs $5"


def test_variables_in_respond_headers_stay_literal(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, """
  - name: local
    match: { path_prefix: / }
    respond: { status: 200, body: ok, headers: { X-Raw: "${client_ip}" } }
    response_headers:
      add: { X-Ip: "${client_ip}" }
"""))
    r = get(j.port, "/")
    assert r.getheader("X-Raw") == "${client_ip}"
    assert r.getheader("X-Ip") == "127.0.0.1"


def check(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return subprocess.run([BIN, "check", "-c", str(p)], capture_output=True, text=True, timeout=30)


def test_unknown_or_unterminated_variables_are_errors_with_positions(tmp_path, backends):
    (b,) = backends(1)
    text = cfg(b, """
  - name: r
    match: { path_prefix: / }
    upstream: app
    request_headers:
      set:
        X-A: "${client_addr}"
        X-B: "prefix-${client_ip"
        X-C: "${}"
        X-D: "${jwt.sub} ${jwt.https://example.com/roles}"
    response_headers:
      add:
        X-E: "${jwt.}"
""").replace("{port}", "1")
    r = check(tmp_path, text)
    assert r.returncode != 0
    path = str(tmp_path / "bad.yaml")
    for want in (path + ":17:14: set: X-A: unknown variable ${client_addr} (known: ",
                 path + ":18:14: set: X-B: unterminated ${",
                 path + ":19:14: set: X-C: unknown variable ${}",
                 path + ":23:14: add: X-E: unknown variable ${jwt.}"):
        assert want in r.stderr, r.stderr
    assert "X-D" not in r.stderr  # any claim name is accepted
    assert len(r.stderr.strip().splitlines()) == 4, r.stderr
