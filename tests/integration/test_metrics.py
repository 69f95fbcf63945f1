"""Prometheus metrics through the real binary: a known mix of requests
(routes, methods, statuses: a 404 without a route, 502 from a dead upstream,
429 from a rate limit, a malformed request), then GET /metrics on the
`metrics: address` listener: every counter agrees exactly with what was
sent, histogram counts equal the requests, and `promtool check metrics`
finds nothing wrong."""
import http.client
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import free_port, port_open, raw_request, wait_for

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, frozenset(labels)): value} of every sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        assert m, "bad sample line: %r" % line
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def config(backend, metrics_port, dead_port, extra=""):
    return """
workers: 2
listeners:
  - name: public
    address: 127.0.0.1:{port}
metrics:
  address: 127.0.0.1:%d
%s
upstreams:
  app:
    servers: [ { address: 127.0.0.1:%d } ]
  dead:
    servers: [ { address: 127.0.0.1:%d } ]
routes:
  - name: hello
    match: { path: /hello }
    respond: { status: 200, body: "hi" }
  - name: app
    match: { path_prefix: /app }
    upstream: app
  - name: dead
    match: { path_prefix: /dead }
    upstream: dead
  - name: limited
    match: { path_prefix: /limited }
    upstream: app
    policies:
      - rate_limit: { limit: 2, window: 1h }
""" % (metrics_port, extra, backend.port, dead_port)


def start(junction, backends, extra=""):
    (b,) = backends(1)
    mport, dead = free_port(), free_port()
    j = junction(config(b, mport, dead, extra), expect_errors=True)
    wait_for(lambda: port_open(mport), what="metrics port")
    j.backend = b
    return j, mport


def scrape(mport):
    c = http.client.HTTPConnection("127.0.0.1", mport, timeout=10)
    c.request("GET", "/metrics")
    r = c.getresponse()
    body = r.read().decode()
    assert r.status == 200, body
    assert r.getheader("Content-Type").startswith("text/plain; version=0.0.4")
    c.close()
    return body


def send(port, method, path, n):
    statuses = []
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(n):
        c.request(method, path, body=b"x" if method in ("POST", "PUT") else None)
        r = c.getresponse()
        r.read()
        statuses.append(r.status)
    c.close()
    return statuses


# (method, path, count, expected status)
MIX = [
    ("GET", "/hello", 5, 200),
    ("HEAD", "/hello", 2, 200),
    ("GET", "/app/x", 4, 200),
    ("POST", "/app/y", 3, 200),
    ("DELETE", "/app/z", 1, 200),
    ("PROPFIND", "/app/w", 1, 501),  # the backend knows no PROPFIND
    ("GET", "/nope", 3, 404),
    ("GET", "/dead", 2, 502),
]


def run_mix(port):
    for method, path, n, status in MIX:
        assert send(port, method, path, n) == [status] * n, (method, path)
    assert sorted(send(port, "GET", "/limited", 5)) == [200, 200, 429, 429, 429]
    reply = raw_request(port, b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400"), reply


def test_counters_agree_with_the_requests_sent(junction, backends):
    j, mport = start(junction, backends)
    # The harness's readiness probe connected once: wait for its accept.
    accepted = wait_for(lambda: value(parse(scrape(mport)), "junction_connections_accepted_total",
                                      listener="public"), what="the probe's accept")
    run_mix(j.port)
    # The last response leaves before its stream is counted: wait for the
    # gauges to settle rather than racing them.
    wait_for(lambda: value(parse(scrape(mport)), "junction_connections_open",
                           listener="public") == 0, what="connections closed")
    s = parse(scrape(mport))
    req = "junction_http_requests_total"
    assert value(s, req, route="hello", method="GET", code_class="2xx") == 5
    assert value(s, req, route="hello", method="HEAD", code_class="2xx") == 2
    assert value(s, req, route="app", method="GET", code_class="2xx") == 4
    assert value(s, req, route="app", method="POST", code_class="2xx") == 3
    assert value(s, req, route="app", method="DELETE", code_class="2xx") == 1
    assert value(s, req, route="app", method="OTHER", code_class="5xx") == 1
    assert value(s, req, route="_none", method="GET", code_class="4xx") == 3
    assert value(s, req, route="_none", method="OTHER", code_class="4xx") == 1  # malformed
    assert value(s, req, route="dead", method="GET", code_class="5xx") == 2
    assert value(s, req, route="limited", method="GET", code_class="2xx") == 2
    assert value(s, req, route="limited", method="GET", code_class="4xx") == 3
    total = sum(v for (name, _), v in s.items() if name == req)
    assert total == 5 + 2 + 4 + 3 + 1 + 1 + 3 + 1 + 2 + 5

    dur = "junction_http_request_duration_seconds"
    for route, n in (("hello", 7), ("app", 9), ("dead", 2), ("limited", 5), ("_none", 4)):
        assert value(s, dur + "_count", route=route) == n, route
        assert value(s, dur + "_bucket", route=route, le="+Inf") == n, route
        assert value(s, dur + "_sum", route=route) > 0, route
    up = "junction_upstream_response_duration_seconds"
    assert value(s, up + "_count", route="app") == 9
    assert value(s, up + "_count", route="limited") == 2
    assert value(s, up + "_count", route="dead") == 0  # no server ever answered

    assert value(s, "junction_policy_rejections_total", route="limited", policy="rate_limit",
                 code="429") == 3
    assert value(s, "junction_http_requests_in_flight", listener="public") == 0
    assert value(s, "junction_connections_accepted_total", listener="public") == accepted + len(MIX) + 2
    assert value(s, "junction_received_bytes_total", listener="public") > 0
    assert value(s, "junction_sent_bytes_total", listener="public") > 0
    assert value(s, "junction_upstream_server_up", upstream="app",
                 server="127.0.0.1:%d" % j.backend.port) == 1
    assert value(s, "junction_build_info", version=open(os.path.join(
        os.path.dirname(__file__), "../../VERSION")).read().strip()) == 1
    assert value(s, "junction_config_generation") == 1
    assert 0 < value(s, "junction_process_start_time_seconds") <= time.time()


def test_histogram_buckets_are_cumulative_and_sub_millisecond(junction, backends):
    j, mport = start(junction, backends)
    send(j.port, "GET", "/hello", 3)
    # A stream is counted just after its response left: wait, not race.
    s = wait_for(lambda: (lambda m: m if value(m, "junction_http_request_duration_seconds_count",
                                                route="hello") == 3 else None)(
        parse(scrape(mport))), what="three requests counted")
    name = "junction_http_request_duration_seconds_bucket"
    les = [le for (n, labels), _ in s.items() if n == name and ("route", "hello") in labels
           for k, le in labels if k == "le"]
    assert "0.0005" in les and "0.001" in les and "+Inf" in les
    finite = sorted(float(le) for le in les if le != "+Inf")
    counts = [value(s, name, route="hello", le=le) for le in
              [l for l in les if l != "+Inf"]]
    ordered = [value(s, name, route="hello", le=("%g" % b)) for b in finite]
    assert ordered == sorted(ordered) and len(counts) == len(finite)
    assert value(s, name, route="hello", le="+Inf") == 3


def test_promtool_finds_nothing_wrong(junction, backends):
    j, mport = start(junction, backends)
    run_mix(j.port)
    text = scrape(mport)
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stdout + r.stderr


def test_metrics_disabled_records_nothing(junction, backends):
    j, mport = start(junction, backends, extra="  enabled: false")
    send(j.port, "GET", "/hello", 3)
    send(j.port, "GET", "/app", 2)
    s = parse(scrape(mport))
    assert not [k for k in s if k[0] == "junction_http_requests_total"]
    assert value(s, "junction_http_request_duration_seconds_count", route="hello") == 0
    assert value(s, "junction_connections_accepted_total", listener="public") == 0


@pytest.mark.parametrize("section,error", [
    ("metrics: { enabled: maybe }", ":6:21: enabled"),
    ("metrics: { address: nowhere }", ":6:21: address: invalid address"),
    ("metrics: { port: 9 }", ":6:12: "),
    ("metrics: [1]", ":6:10: "),
    ("metrics: { address: 'localhost:8080' }", ":6:21: address: localhost:8080 is also the "
                                              "address of listener public"),
])
def test_metrics_section_errors_name_the_place(tmp_path, section, error):
    path = tmp_path / "bad.yaml"
    path.write_text("""
listeners:
  - name: public
    address: 127.0.0.1:8080
routes: [ { name: r, match: { path: / }, respond: { status: 200 } } ]
%s
""" % section)
    from conftest import BIN
    r = subprocess.run([BIN, "check", "-c", str(path)], capture_output=True, text=True)
    assert r.returncode != 0
    assert str(path) + error in r.stderr, r.stderr


def test_http2_and_tls_are_counted(junction, backends, tmp_path):
    """h2 over TLS (ALPN) and h2c streams count like HTTP/1.1 requests; TLS
    handshakes and failed handshakes are counted per TLS listener."""
    import ssl
    from h2client import H2Client
    d = str(tmp_path)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", d + "/k.pem", "-out",
                    d + "/c.pem", "-subj", "/CN=a.test", "-addext", "subjectAltName=DNS:a.test",
                    "-days", "2"], check=True, capture_output=True)
    (b,) = backends(1)
    mport = free_port()
    j = junction("""
workers: 2
listeners:
  - { name: plain, address: 127.0.0.1:{port0} }
  - name: secure
    address: 127.0.0.1:{port1}
    tls: { certificates: [ { cert: %s/c.pem, key: %s/k.pem } ] }
metrics: { address: 127.0.0.1:%d }
access_log: { path: none }
upstreams:
  app: { servers: [ { address: 127.0.0.1:%d } ] }
routes:
  - { name: app, match: { path_prefix: / }, upstream: app }
""" % (d, d, mport, b.port), nports=2, expect_errors=True)
    wait_for(lambda: port_open(mport), what="metrics port")
    # The harness's readiness probe opened and closed a connection on each
    # port: on the TLS one, a handshake that failed. Wait for it to count.
    errors = "junction_tls_handshake_errors_total"
    wait_for(lambda: value(parse(scrape(mport)), errors, listener="secure") == 1,
             what="the probe's handshake counted")
    before = parse(scrape(mport))
    c = H2Client(j.ports[0])  # h2c, prior knowledge
    for _ in range(3):
        assert c.get("/x").status == 200
    c.close()
    ctx = ssl.create_default_context(cafile=d + "/c.pem")
    ctx.set_alpn_protocols(["h2"])
    t = H2Client(j.ports[1], tls_ctx=ctx, host="a.test")
    for _ in range(2):
        assert t.get("/y", method="POST", body=b"abc").status == 200
    t.close()
    s = socket.create_connection(("127.0.0.1", j.ports[1]))
    s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")  # plain text to a TLS port
    s.recv(100)
    s.close()
    wait_for(lambda: value(parse(scrape(mport)), errors, listener="secure") == 2,
             what="the failed handshake counted")
    req = "junction_http_requests_total"

    def counted():
        after = parse(scrape(mport))
        got = {m: value(after, req, route="app", method=m, code_class="2xx") -
               value(before, req, route="app", method=m, code_class="2xx") for m in ("GET", "POST")}
        return after if got == {"GET": 3, "POST": 2} else None
    after = wait_for(counted, what="3 GET and 2 POST over HTTP/2 counted")
    assert value(after, "junction_tls_handshakes_total", listener="secure") == 1
    assert ("junction_tls_handshakes_total", frozenset({("listener", "plain")})) not in after
    assert value(after, "junction_connections_accepted_total", listener="secure") == \
        value(before, "junction_connections_accepted_total", listener="secure") + 2
