"""request_limits: a route's max_body_size (413, at once for a
Content-Length, counted as it streams for chunked and HTTP/2 bodies),
max_headers (431) and max_url_length (414), through the real binary."""
import http.client
import json
import socket
import subprocess
import threading

from conftest import BIN, read_head, recv_until_close
from h2client import H2Backend, H2Client


def cfg(b, limits):
    return """
workers: 1
listeners:
  - name: public
    address: 127.0.0.1:{port}
upstreams:
  app:
    servers: [ { address: 127.0.0.1:%d } ]
routes:
  - name: limited
    match: { path_prefix: /limited }
    upstream: app
    policies:
      - request_limits: %s
  - name: free
    match: { path_prefix: / }
    upstream: app
""" % (b.port, limits)


def post(port, path, body, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def raw(port, data):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    return recv_until_close(s)


def status_of(resp):
    return int(resp.split(b" ", 2)[1])


def test_content_length_over_the_limit_is_413_at_once(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, "{ max_body_size: 1k }"))
    r, data = post(j.port, "/limited/up", b"x" * 1025)
    assert r.status == 413
    body = json.loads(data)
    assert body["error"] == "request body too large"
    assert body["request_id"] == r.getheader("X-Request-Id")
    assert b.received == []
    # Exactly the limit passes; another route has no limit.
    assert post(j.port, "/limited/up", b"x" * 1024)[0].status == 200
    assert post(j.port, "/other", b"x" * 5000)[0].status == 200
    assert [x["body_len"] for x in b.received] == [1024, 5000]


def test_expect_continue_over_the_limit_gets_413_instead_of_100(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, "{ max_body_size: 100 }"))
    s = socket.create_connection(("127.0.0.1", j.port), timeout=10)
    s.sendall(b"PUT /limited HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n"
              b"Expect: 100-continue\r\n\r\n")
    head = read_head(s)
    s.close()
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b.received == []


def chunked(pieces):
    out = b""
    for p in pieces:
        out += b"%x\r\n%s\r\n" % (len(p), p)
    return out + b"0\r\n\r\n"


def test_chunked_body_crossing_the_limit_is_413_and_never_completes_upstream(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, "{ max_body_size: 8k }"))
    head = b"POST /limited/c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    resp = raw(j.port, head + chunked([b"a" * 3000] * 4))  # 12000 bytes
    assert status_of(resp) == 413, resp
    assert b"request body too large" in resp
    # Under the limit, in the same pieces, it goes through whole.
    resp = raw(j.port, head.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n") +
               chunked([b"a" * 3000] * 2))
    assert status_of(resp) == 200, resp
    # The upstream got only the complete request: the 413 one never ended.
    assert [x["body_len"] for x in b.received] == [6000]
    log = [l for l in j.access_lines() if l.get("status") == 413]
    assert len(log) == 1


def test_a_body_passing_the_limit_after_the_response_began_cuts_the_exchange(junction,
                                                                            raw_server):
    got = []
    closed = threading.Event()

    def behave(srv, c):
        data = read_head(c)
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        while True:  # an early answer, then the rest of the body as it comes
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
        got.append(data)
        closed.set()

    u = raw_server(behave)
    j = junction(cfg(u, "{ max_body_size: 4k }"))
    s = socket.create_connection(("127.0.0.1", j.port), timeout=10)
    s.sendall(b"POST /limited HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
              b"%x\r\n%s\r\n" % (1000, b"a" * 1000))
    seen = b""
    while b"hello" not in seen:
        chunk = s.recv(65536)
        assert chunk, seen
        seen += chunk
    assert seen.startswith(b"HTTP/1.1 200 "), seen
    try:
        s.sendall(chunked([b"b" * 2500] * 2))
    except OSError:
        pass
    rest = recv_until_close(s)  # cut: no 413, no end of the chunked response
    assert b"413" not in rest and not (seen + rest).endswith(b"0\r\n\r\n"), rest
    assert closed.wait(10)
    assert not got[0].endswith(b"0\r\n\r\n")  # the upstream's request never ended
    assert got[0].count(b"b") < 5000


def test_chunked_body_exactly_at_the_limit_passes(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, "{ max_body_size: 6000 }"))
    head = (b"POST /limited HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n")
    assert status_of(raw(j.port, head + chunked([b"a" * 3000] * 2))) == 200
    assert status_of(raw(j.port, head + chunked([b"a" * 3000] * 2 + [b"z"]))) == 413
    assert [x["body_len"] for x in b.received] == [6000]


def test_http2_body_without_length_is_counted_as_it_streams(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, "{ max_body_size: 64k }"))
    c = H2Client(j.port)
    try:
        r = c.get("/limited/h2", method="POST", body=b"x" * 200000)
        assert r.status == 413
        assert json.loads(bytes(r.data))["error"] == "request body too large"
        r = c.get("/limited/h2", method="POST", body=b"y" * 60000)
        assert r.status == 200
    finally:
        c.close()
    assert [x["body_len"] for x in b.received] == [60000]


def test_http2_content_length_over_the_limit_is_413(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, "{ max_body_size: 1k }"))
    c = H2Client(j.port)
    try:
        r = c.get("/limited", method="POST", body=b"z" * 5000,
                  headers=[("content-length", "5000")])
        assert r.status == 413
        assert json.loads(bytes(r.data))["error"] == "request body too large"
    finally:
        c.close()
    assert b.received == []


def test_an_h2c_upstream_never_gets_the_end_of_a_body_past_the_limit(junction):
    up = H2Backend()
    try:
        j = junction("""
workers: 1
listeners:
  - name: public
    address: 127.0.0.1:{port}
upstreams:
  h2:
    protocol: h2c
    servers: [ { address: 127.0.0.1:%d } ]
routes:
  - name: r
    match: { path_prefix: / }
    upstream: h2
    policies:
      - request_limits: { max_body_size: 8k }
""" % up.port)
        head = b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        resp = raw(j.port, head + chunked([b"a" * 3000] * 4))
        assert status_of(resp) == 413, resp
        close = head.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
        assert status_of(raw(j.port, close + chunked([b"a" * 3000] * 2))) == 200
        assert [x["body_len"] for x in up.received] == [6000]
    finally:
        up.close()


def head_with(n, target=b"/limited"):
    """A request with exactly n header fields (Host included)."""
    fields = b"Host: a\r\n" + b"".join(b"X-F%d: v\r\n" % i for i in range(n - 2))
    return b"GET " + target + b" HTTP/1.1\r\n" + fields + b"Connection: close\r\n\r\n"


def test_max_headers_counts_the_fields_as_sent(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, "{ max_headers: 10 }"))
    assert status_of(raw(j.port, head_with(10))) == 200
    resp = raw(j.port, head_with(11))
    assert status_of(resp) == 431, resp
    assert b"too many request header fields" in resp
    assert status_of(raw(j.port, head_with(11, b"/other"))) == 200
    # Hop-by-hop fields the proxy drops before the policies still count.
    many_hop = (b"GET /limited HTTP/1.1\r\nHost: a\r\n" + b"Keep-Alive: 1\r\n" * 8 +
                b"TE: trailers\r\nConnection: close\r\n\r\n")
    assert status_of(raw(j.port, many_hop)) == 431
    assert len(b.received) == 2


def test_max_headers_over_http2_counts_the_regular_fields_and_host(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, "{ max_headers: 10 }"))
    c = H2Client(j.port)
    try:
        nine = [("x-f%d" % i, "v") for i in range(9)]  # + host from :authority = 10
        assert c.get("/limited", headers=nine).status == 200
        assert c.get("/limited", headers=nine + [("x-more", "v")]).status == 431
    finally:
        c.close()
    assert len(b.received) == 1


def test_max_url_length_is_the_target_as_sent(junction, backends):
    (b,) = backends(1)
    j = junction(cfg(b, "{ max_url_length: 64 }"))
    ok = b"/limited/" + b"a" * 50 + b"?q=1"  # 63 bytes
    assert len(ok) == 63
    req = b"GET %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    assert status_of(raw(j.port, req % (ok + b"2"))) == 200  # 64: at the limit
    resp = raw(j.port, req % (ok + b"23"))
    assert status_of(resp) == 414, resp
    # The raw target counts: dot segments normalised away still weigh.
    assert status_of(raw(j.port, req % (b"/limited/" + b"./" * 30))) == 414
    assert len(b.received) == 1


def check(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return subprocess.run([BIN, "check", "-c", str(p)], capture_output=True, text=True, timeout=30)


def test_request_limits_configuration_errors(tmp_path, backends):
    (b,) = backends(1)
    text = cfg(b, "{}").replace("{port}", "1") + """
  - name: r2
    match: { path_prefix: /r2 }
    upstream: app
    policies:
      - request_limits: { max_headers: 0, max_body_size: 1q, max_url_length: -1, nope: 1 }
"""
    r = check(tmp_path, text)
    assert r.returncode != 0
    for want in ("request_limits: needs max_body_size, max_headers or max_url_length",
                 "max_headers: ", "max_body_size: invalid size '1q'", "max_url_length: ",
                 "nope"):
        assert want in r.stderr, r.stderr
    for line in r.stderr.strip().splitlines():
        assert line.startswith(str(tmp_path / "bad.yaml") + ":"), line
