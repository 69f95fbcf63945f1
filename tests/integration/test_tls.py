"""TLS termination on http listeners (docs/tls.md) through the real binary:
certificates made here with the openssl CLI (a CA, leaves for a.test,
*.b.test and a default), real clients (curl, openssl s_client, Python's ssl),
SNI, versions, keep-alive, large bodies, stalled handshakes and
configuration errors."""
import hashlib
import http.client
import http.server
import os
import socket
import ssl
import subprocess
import time

import pytest

from conftest import BIN, Backend, wait_for

CONF = """
workers: 1
listeners:
  - name: tls
    address: 127.0.0.1:{port}
    tls:
      certificates:
        - { cert: %(dir)s/default.crt, key: %(dir)s/default.key }
        - { cert: %(dir)s/a.crt, key: %(dir)s/a.key }
        - { cert: %(dir)s/b.crt, key: %(dir)s/b.key }
%(tls_extra)s
access_log: { path: none }
timeouts: { drain: 1s%(timeouts)s }
upstreams:
  app:
    servers:
      - { address: 127.0.0.1:%(backend)d }
routes:
  - { name: app, match: { path_prefix: / }, upstream: app }
"""


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_leaf(d, name, cn, san):
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{d}/{name}.key", "-subj", f"/CN={cn}", "-out", f"{d}/{name}.csr")
    with open(f"{d}/{name}.ext", "w") as f:
        f.write(f"subjectAltName={san}\n")
    openssl("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.crt", "-CAkey",
            f"{d}/ca.key", "-CAcreateserial", "-days", "2", "-out", f"{d}/{name}.crt",
            "-extfile", f"{d}/{name}.ext")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("certs"))
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.crt", "-subj", "/CN=Junction test CA",
            "-days", "2")
    make_leaf(d, "default", "default.test", "DNS:default.test")
    make_leaf(d, "a", "a.test", "DNS:a.test")
    make_leaf(d, "b", "wild.b.test", "DNS:*.b.test")
    return d


@pytest.fixture
def tls_junction(junction, backends, certs):
    def start(tls_extra="", timeouts="", backend=None, expect_errors=False):
        b = backend or backends(1)[0]
        conf = CONF % {"dir": certs, "tls_extra": tls_extra, "timeouts": timeouts,
                       "backend": b.port}
        j = junction(conf, expect_errors=expect_errors)
        j.backend = b
        return j
    return start


def curl(port, host, *extra, certs):
    return subprocess.run(["curl", "-sS", "--http1.1", "--cacert", f"{certs}/ca.crt",
                           "--resolve", f"{host}:{port}:127.0.0.1", *extra,
                           f"https://{host}:{port}/hello"],
                          capture_output=True, text=True, timeout=20)


def subject_for(port, servername=None):
    args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-alpn", "h2,http/1.1"]
    if servername:
        args += ["-servername", servername]
    else:
        args += ["-noservername"]
    p = subprocess.run(args, input="", capture_output=True, text=True, timeout=20)
    lines = [l for l in p.stdout.splitlines() if l.startswith("subject=")]
    alpn = [l for l in p.stdout.splitlines() if l.startswith("ALPN")]
    return (lines[0] if lines else p.stdout + p.stderr), (alpn[0] if alpn else "")


def client_context(certs):
    ctx = ssl.create_default_context(cafile=f"{certs}/ca.crt")
    return ctx


def https_connection(port, certs, host="a.test", timeout=30):
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout)
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    conn.sock = client_context(certs).wrap_socket(raw, server_hostname=host)
    return conn


def test_curl_over_tls_reaches_the_backend(tls_junction, certs):
    j = tls_junction()
    p = curl(j.port, "a.test", certs=certs)
    assert p.returncode == 0, p.stderr
    assert '"path": "/hello"' in p.stdout
    headers = dict((k.lower(), v) for k, v in j.backend.received[-1]["headers"])
    assert headers["x-forwarded-proto"] == "https"


def test_sni_picks_the_certificate(tls_junction):
    j = tls_junction()
    assert "CN = a.test" in subject_for(j.port, "a.test")[0]
    assert "CN = a.test" in subject_for(j.port, "A.Test")[0]
    assert "CN = wild.b.test" in subject_for(j.port, "x.b.test")[0]
    # A wildcard covers one label only; unknown names and no SNI get the default.
    assert "CN = default.test" in subject_for(j.port, "y.x.b.test")[0]
    assert "CN = default.test" in subject_for(j.port, "b.test")[0]
    assert "CN = default.test" in subject_for(j.port, "other.test")[0]
    assert "CN = default.test" in subject_for(j.port, None)[0]


def test_min_version_13_refuses_a_tls12_client(tls_junction, certs):
    j = tls_junction(tls_extra='      min_version: "1.3"', expect_errors=False)
    assert curl(j.port, "a.test", "--tls-max", "1.2", certs=certs).returncode != 0
    p = curl(j.port, "a.test", certs=certs)
    assert p.returncode == 0, p.stderr
    # The default (1.2) takes such a client.


def test_tls12_client_is_served_by_default(tls_junction, certs):
    j = tls_junction()
    p = curl(j.port, "a.test", "--tls-max", "1.2", certs=certs)
    assert p.returncode == 0, p.stderr


def test_plain_http_to_a_tls_port_is_refused(tls_junction, certs):
    j = tls_junction()
    s = socket.create_connection(("127.0.0.1", j.port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
    try:
        data = s.recv(65536)
    except ConnectionResetError:
        data = b""
    s.close()
    assert not data.startswith(b"HTTP/1.1 200")
    assert j.backend.received == []
    p = curl(j.port, "a.test", certs=certs)
    assert p.returncode == 0, p.stderr
    assert "TLS handshake failed" in j.stderr()


def client_hello():
    """The first flight of a real TLS client, made in memory."""
    ctx = ssl.create_default_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="a.test")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def test_a_client_stalled_mid_handshake_is_timed_out(tls_junction):
    j = tls_junction(timeouts=", client_header: 300ms")
    hello = client_hello()
    s = socket.create_connection(("127.0.0.1", j.port), timeout=10)
    s.sendall(hello[: len(hello) // 2])
    start = time.monotonic()
    assert s.recv(65536) == b""
    assert time.monotonic() - start < 5
    s.close()
    wait_for(lambda: "TLS handshake timeout" in j.stderr(), what="the timeout logged")


def test_several_requests_on_one_tls_connection(tls_junction, certs):
    j = tls_junction()
    conn = https_connection(j.port, certs)
    sock = conn.sock
    for i in range(5):
        conn.request("GET", f"/r{i}", headers={"Host": "a.test"})
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200
        assert f'"/r{i}"'.encode() in body
    assert conn.sock is sock
    conn.close()


class BodyEcho(http.server.BaseHTTPRequestHandler):
    """Answers a POST with the bytes of its body."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers["Content-Length"])
        body = self.rfile.read(n)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_16mib_body_both_ways_is_byte_exact(tls_junction, certs):
    b = Backend("echo", BodyEcho)
    try:
        j = tls_junction(backend=b)
        body = os.urandom(16 << 20)
        conn = https_connection(j.port, certs, timeout=120)
        conn.request("POST", "/up", body=body, headers={"Host": "a.test"})
        r = conn.getresponse()
        got = r.read()
        assert r.status == 200
        assert len(got) == len(body)
        assert hashlib.sha256(got).digest() == hashlib.sha256(body).digest()
        conn.close()
    finally:
        b.close()


def test_tls12_session_is_resumed(tls_junction, tmp_path):
    j = tls_junction()
    sess = str(tmp_path / "sess.pem")
    base = ["openssl", "s_client", "-connect", f"127.0.0.1:{j.port}", "-servername", "a.test",
            "-tls1_2"]
    first = subprocess.run(base + ["-sess_out", sess], input="", capture_output=True, text=True,
                           timeout=20)
    assert "New," in first.stdout, first.stdout + first.stderr
    second = subprocess.run(base + ["-sess_in", sess], input="", capture_output=True, text=True,
                            timeout=20)
    assert "Reused," in second.stdout, second.stdout


def write_conf(tmp_path, certs, listener_extra):
    conf = tmp_path / "bad.yaml"
    conf.write_text(f"""
listeners:
  - name: tls
    address: 127.0.0.1:1
{listener_extra}
routes:
  - {{ name: r, match: {{ path: / }}, respond: {{ status: 200 }} }}
""")
    return str(conf)


def test_a_missing_key_file_is_a_configuration_error(certs, tmp_path):
    missing = str(tmp_path / "nope.key")
    conf = write_conf(tmp_path, certs, f"""    tls:
      certificates:
        - {{ cert: {certs}/a.crt, key: {missing} }}""")
    for args in (["check", "-c", conf], ["-c", conf]):
        p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30)
        assert p.returncode == 1, p.stderr
        assert missing in p.stderr
        assert "bad.yaml:7:" in p.stderr


def test_a_key_that_does_not_match_is_a_configuration_error(certs, tmp_path):
    conf = write_conf(tmp_path, certs, f"""    tls:
      certificates:
        - {{ cert: {certs}/a.crt, key: {certs}/b.key }}""")
    p = subprocess.run([BIN, "check", "-c", conf], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert f"key {certs}/b.key does not match certificate {certs}/a.crt" in p.stderr


def test_tls_on_a_tcp_listener_is_a_configuration_error(certs, tmp_path):
    conf = tmp_path / "bad.yaml"
    conf.write_text(f"""
listeners:
  - name: t
    address: 127.0.0.1:1
    protocol: tcp
    upstream: u
    tls:
      certificates: [ {{ cert: {certs}/a.crt, key: {certs}/a.key }} ]
upstreams:
  u: {{ servers: [ {{ address: 127.0.0.1:2 }} ] }}
""")
    p = subprocess.run([BIN, "check", "-c", str(conf)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert "tls: only used with protocol: http" in p.stderr


def test_pipelined_requests_in_separate_records_are_all_answered(tls_junction, certs):
    """Twenty requests, each its own TLS record, arrive together: OpenSSL
    hands them out one record per read, and none may wait for an edge that
    will not come."""
    j = tls_junction()
    raw = socket.create_connection(("127.0.0.1", j.port), timeout=20)
    s = client_context(certs).wrap_socket(raw, server_hostname="a.test")
    for i in range(20):
        s.send(b"GET /p%d HTTP/1.1\r\nHost: a.test\r\n\r\n" % i)
    data = b""
    while data.count(b"HTTP/1.1 200") < 20 or not data.endswith(b"}"):
        chunk = s.recv(65536)
        assert chunk, data[-200:]
        data += chunk
    for i in range(20):
        assert b'"/p%d"' % i in data
    s.close()


def test_a_slow_reader_gets_a_large_response_byte_exact(tls_junction, certs):
    """Backpressure over TLS: writes that would block are retried while the
    output buffer moves and grows."""
    b = Backend("echo", BodyEcho)
    try:
        j = tls_junction(backend=b)
        body = os.urandom(4 << 20)
        raw = socket.create_connection(("127.0.0.1", j.port), timeout=60)
        s = client_context(certs).wrap_socket(raw, server_hostname="a.test")
        s.sendall(b"POST /slow HTTP/1.1\r\nHost: a.test\r\nContent-Length: %d\r\n\r\n" % len(body)
                  + body)
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(4096)
        head, _, rest = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        time.sleep(0.5)  # the socket buffers fill and Junction's writes would block
        while len(rest) < len(body):
            chunk = s.recv(16384)
            assert chunk
            rest += chunk
            time.sleep(0.001)
        assert hashlib.sha256(rest).digest() == hashlib.sha256(body).digest()
        s.close()
    finally:
        b.close()
