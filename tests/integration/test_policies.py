"""The policy chain itself: policies: lists (top level and per route,
replacement and `disabled: true`), trusted_proxies and the client address,
ip_filter, and configuration errors, through the real binary."""
import http.client
import json
import socket
import subprocess

from conftest import BIN, wait_for


def cfg(b, top="", routes="", extra=""):
    return """
workers: 2
listeners:
  - name: public
    address: 127.0.0.1:{port0}
  - name: v6
    address: "[::1]:{port1}"
access_log: { path: stdout, format: json }
%s
upstreams:
  app:
    servers: [ { address: 127.0.0.1:%d } ]
%s
routes:
%s
""" % (extra, b.port, top, routes)


def get(port, path="/", headers=None, host="127.0.0.1", family=socket.AF_INET):
    c = http.client.HTTPConnection(host, port, timeout=10)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def check(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return subprocess.run([BIN, "check", "-c", str(p)], capture_output=True, text=True, timeout=30)


def test_ip_filter_denies_with_403_json_and_never_reaches_the_upstream(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, routes="""
  - name: closed
    match: { path_prefix: /closed }
    upstream: app
    policies:
      - ip_filter: { deny: [127.0.0.0/8] }
  - name: open
    match: { path_prefix: /open }
    upstream: app
    policies:
      - ip_filter: { allow: [127.0.0.1] }
"""), nports=2)
    r, data = get(j.port, "/closed")
    assert r.status == 403
    body = json.loads(data)
    assert body["error"] == "forbidden" and body["request_id"] == r.getheader("X-Request-Id")
    assert b.received == []
    assert get(j.port, "/open")[0].status == 200
    assert len(b.received) == 1


def test_ip_filter_ipv6_allow_and_deny(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, routes="""
  - name: six
    match: { path_prefix: /six }
    upstream: app
    policies:
      - ip_filter: { allow: ["::1/128"] }
  - name: nosix
    match: { path_prefix: /nosix }
    upstream: app
    policies:
      - ip_filter: { allow: [0.0.0.0/0], deny: ["::/0"] }
"""), nports=2)
    v6 = j.ports[1]
    assert get(v6, "/six", host="::1")[0].status == 200
    assert get(j.port, "/six")[0].status == 403  # IPv4 client: not on the allow list
    assert get(v6, "/nosix", host="::1")[0].status == 403
    assert get(j.port, "/nosix")[0].status == 200


def test_trusted_proxy_names_the_client_and_an_untrusted_peer_does_not(junction, backends):
    (b,) = backends(1)
    top = "trusted_proxies: [127.0.0.1/32, 10.0.0.0/8]"
    j = junction(cfg(b, extra=top, routes="""
  - name: r
    match: { path_prefix: / }
    upstream: app
    policies:
      - ip_filter: { deny: [203.0.113.0/24] }
"""), nports=2)
    # The trusted peer (127.0.0.1) passes on what a trusted 10.x proxy saw.
    r, _ = get(j.port, "/a", {"X-Forwarded-For": "203.0.113.9, 10.1.1.1"})
    assert r.status == 403
    # Left of the first untrusted address is the client's own word: ignored.
    r, _ = get(j.port, "/b", {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"})
    assert r.status == 200
    # An untrusted peer (::1 is not listed) cannot name anyone.
    r, _ = get(j.ports[1], "/c", {"X-Forwarded-For": "203.0.113.9"}, host="::1")
    assert r.status == 200
    # Each worker writes its own log lines: wait for all three, match by path.
    wait_for(lambda: len(j.access_lines()) == 3, what="three access log lines")
    clients = {l["path"]: l["client"] for l in j.access_lines()}
    assert clients == {"/a": "203.0.113.9", "/b": "198.51.100.7", "/c": "::1"}
    # The upstream still sees the whole chain, with the real peer appended.
    xff = dict((k.lower(), v) for k, v in b.received[0]["headers"])["x-forwarded-for"]
    assert xff == "203.0.113.9, 198.51.100.7, 127.0.0.1"


def test_route_turns_an_inherited_policy_off_and_replaces_one_in_place(junction, backends):
    (b,) = backends(1)
    top = """
policies:
  - ip_filter: { deny: [127.0.0.0/8] }
"""
    j = junction(cfg(b, top=top, routes="""
  - name: inherits
    match: { path_prefix: /inherits }
    upstream: app
  - name: off
    match: { path_prefix: /off }
    upstream: app
    policies:
      - ip_filter: { disabled: true }
  - name: replaced
    match: { path_prefix: /replaced }
    upstream: app
    policies:
      - ip_filter: { allow: [127.0.0.1/32] }
"""), nports=2)
    assert get(j.port, "/inherits")[0].status == 403
    assert get(j.port, "/off")[0].status == 200
    assert get(j.port, "/replaced")[0].status == 200


def test_policy_configuration_errors_are_all_reported_with_positions(tmp_path, backends):
    (b,) = backends(1)
    text = cfg(b, top="""
policies:
  - ip_filter: { disabled: true }
  - no_such_policy: {}
""", extra="trusted_proxies: [10.0.0.1/8, nonsense]", routes="""
  - name: r
    match: { path_prefix: / }
    upstream: app
    policies:
      - ip_filter: {}
      - ip_filter: { allow: [1.2.3.4/33] }
      - { ip_filter: { deny: ["::1"] }, other: {} }
      - ip_filter: { disabled: true, deny: ["::1"] }
""").replace("{port0}", "1").replace("{port1}", "2")
    r = check(tmp_path, text)
    assert r.returncode != 0
    err = r.stderr
    for want in ("trusted_proxies: '10.0.0.1/8': host bits set",
                 "trusted_proxies: 'nonsense': invalid address",
                 "ip_filter: disabled belongs on a route",
                 "unknown policy 'no_such_policy' (known: ip_filter",
                 "ip_filter: needs allow, deny or both",
                 "prefix length out of range",
                 "each item is a one-key mapping",
                 "disabled is written `disabled: true` alone"):
        assert want in err, err
    for line in err.strip().splitlines():
        assert line.startswith(str(tmp_path / "bad.yaml") + ":"), line


def test_disabling_a_policy_that_is_not_inherited_is_an_error(tmp_path, backends):
    (b,) = backends(1)
    text = cfg(b, routes="""
  - name: r
    match: { path_prefix: / }
    upstream: app
    policies:
      - ip_filter: { disabled: true }
""").replace("{port0}", "1").replace("{port1}", "2")
    r = check(tmp_path, text)
    assert r.returncode != 0 and "no top-level ip_filter is inherited" in r.stderr, r.stderr
