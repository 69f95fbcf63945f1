"""W3C trace context through the real binary: a valid traceparent goes on
with the same trace id and flags and Junction's own span as the parent, and
its tracestate untouched; a missing or invalid one is replaced by a new
trace (flags 01) and any tracestate dropped; the trace id is in the access
log (JSON and text). HTTP/1.1 and HTTP/2 clients, HTTP/1.1 and h2c
upstreams, all seen by backends that echo the headers they received."""
import http.client
import json
import re

import pytest

from conftest import wait_for
from h2client import H2Backend, H2Client

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
VALID = "00-%s-%s-00" % (TRACE, PARENT)
FORMAT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

CONF = """
workers: 1
listeners:
  - { name: public, address: 127.0.0.1:{port} }
access_log: { path: stdout, format: %(format)s }
upstreams:
  app: { servers: [ { address: 127.0.0.1:%(port)d } ] }
  h2app: { protocol: h2c, servers: [ { address: 127.0.0.1:%(h2port)d } ] }
routes:
  - { name: h2, match: { path_prefix: /h2 }, upstream: h2app }
  - { name: app, match: { path_prefix: / }, upstream: app }
"""


@pytest.fixture
def gateway(junction, backends):
    def start(fmt="json"):
        (b,) = backends(1)
        h2 = H2Backend()
        j = junction(CONF % {"format": fmt, "port": b.port, "h2port": h2.port})
        j.backend, j.h2 = b, h2
        return j
    yield start


def headers_seen(rec):
    """The backend's view: {lower-case name: [values]}."""
    out = {}
    items = rec["headers"].items() if isinstance(rec["headers"], dict) else rec["headers"]
    for k, v in items:
        out.setdefault(k.lower(), []).append(v)
    return out


def get(port, path="/", headers=()):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.putrequest("GET", path)
    for k, v in headers:
        c.putheader(k, v)
    c.endheaders()
    r = c.getresponse()
    body = r.read()
    c.close()
    assert r.status == 200, body
    return headers_seen(json.loads(body)), r.getheader("X-Request-Id")


def logged(j, request_id):
    return wait_for(lambda: next((l for l in j.access_lines() if l["request_id"] == request_id),
                                 None), what="the access log line")


def test_valid_traceparent_keeps_the_trace_and_gets_a_new_parent(gateway):
    j = gateway()
    seen, rid = get(j.port, headers=[("traceparent", VALID), ("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")])
    (tp,) = seen["traceparent"]
    m = FORMAT.match(tp)
    assert m, tp
    assert m.group(1) == TRACE and m.group(3) == "00"
    assert m.group(2) != PARENT and m.group(2) != "0" * 16
    assert seen["tracestate"] == ["congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"]
    assert logged(j, rid)["trace_id"] == TRACE


def test_flags_are_passed_on(gateway):
    j = gateway()
    seen, _ = get(j.port, headers=[("traceparent", "00-%s-%s-01" % (TRACE, PARENT))])
    assert seen["traceparent"][0].endswith("-01")
    assert seen["traceparent"][0].startswith("00-" + TRACE + "-")


def test_missing_traceparent_starts_a_trace(gateway):
    j = gateway()
    seen1, rid1 = get(j.port)
    seen2, rid2 = get(j.port)
    m1, m2 = FORMAT.match(seen1["traceparent"][0]), FORMAT.match(seen2["traceparent"][0])
    assert m1 and m2
    assert m1.group(3) == "01"
    assert m1.group(1) != m2.group(1) and m1.group(2) != m2.group(2)
    assert m1.group(1) != "0" * 32
    assert logged(j, rid1)["trace_id"] == m1.group(1)
    assert logged(j, rid2)["trace_id"] == m2.group(1)


INVALID = [
    "00-%s-%s-0" % (TRACE, PARENT),                      # short flags
    "00-%s-%s-001" % (TRACE, PARENT),                    # version 00 is exactly 55 long
    "00-%s-%s-01-extra" % (TRACE, PARENT),               # ... even with a dash
    "00-%s-%s-01" % (TRACE.upper(), PARENT),              # upper-case hex
    "00-%s-%s-01" % (TRACE, PARENT.upper()),
    "00-%s-%s-01" % ("0" * 32, PARENT),                   # all-zero trace id
    "00-%s-%s-01" % (TRACE, "0" * 16),                    # all-zero parent id
    "ff-%s-%s-01" % (TRACE, PARENT),                      # version ff
    "0x-%s-%s-01" % (TRACE, PARENT),
    "00_%s-%s-01" % (TRACE, PARENT),                      # wrong separators
    "00-%s_%s-01" % (TRACE, PARENT),
    "00-%s-%s-0g" % (TRACE, PARENT),
    "00-%s-%s-01" % (TRACE[:-1], PARENT),                 # short trace id
    "cc-%s-%s-01x" % (TRACE, PARENT),                     # a later version: a dash must follow
    "",
    "garbage",
]


def test_invalid_traceparent_is_replaced_and_tracestate_dropped(gateway):
    j = gateway()
    for bad in INVALID:
        seen, rid = get(j.port, headers=[("traceparent", bad), ("tracestate", "congo=t61rcWkgMzE")])
        (tp,) = seen["traceparent"]
        m = FORMAT.match(tp)
        assert m and m.group(1) != TRACE and m.group(3) == "01", (bad, tp)
        assert "tracestate" not in seen, bad
        assert logged(j, rid)["trace_id"] == m.group(1)


def test_two_traceparent_fields_are_invalid(gateway):
    j = gateway()
    seen, _ = get(j.port, headers=[("traceparent", VALID), ("traceparent", VALID),
                                   ("tracestate", "a=b")])
    (tp,) = seen["traceparent"]
    assert FORMAT.match(tp).group(1) != TRACE
    assert "tracestate" not in seen


def test_a_later_version_is_read_as_00(gateway):
    j = gateway()
    seen, _ = get(j.port, headers=[("traceparent", "cc-%s-%s-01-what-comes-next" % (TRACE, PARENT)),
                                   ("tracestate", "a=b")])
    m = FORMAT.match(seen["traceparent"][0])
    assert m.group(1) == TRACE and m.group(3) == "01"
    assert seen["tracestate"] == ["a=b"]


def test_http2_client_and_h2c_upstream(gateway):
    j = gateway()
    c = H2Client(j.port)
    for path, backend in (("/x", "h1"), ("/h2/y", "h2")):
        r = c.get(path, headers=[("traceparent", VALID), ("tracestate", "k=v")])
        assert r.status == 200
        seen = headers_seen(json.loads(bytes(r.data)))
        m = FORMAT.match(seen["traceparent"][0])
        assert m and m.group(1) == TRACE and m.group(2) != PARENT, (backend, seen)
        assert seen["tracestate"] == ["k=v"]
        assert logged(j, r.headers["x-request-id"])["trace_id"] == TRACE
    r = c.get("/h2/z")
    seen = headers_seen(json.loads(bytes(r.data)))
    assert FORMAT.match(seen["traceparent"][0]).group(3) == "01"
    c.close()


def test_http1_client_and_h2c_upstream(gateway):
    j = gateway()
    seen, _ = get(j.port, "/h2/a", headers=[("traceparent", VALID)])
    m = FORMAT.match(seen["traceparent"][0])
    assert m.group(1) == TRACE and m.group(2) != PARENT


def test_text_access_log_ends_with_the_trace_id(gateway):
    j = gateway("text")
    _, rid = get(j.port, headers=[("traceparent", VALID)])

    def line():
        with open(j.outlog) as f:
            return next((l for l in f if rid in l), None)
    fields = wait_for(line, what="the access log line").split()
    assert fields[-2] == rid and fields[-1] == TRACE
