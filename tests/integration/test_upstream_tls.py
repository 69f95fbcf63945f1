"""TLS to upstream servers (docs/tls.md, "TLS to upstreams") through the real
binary: a Python HTTPS backend with a certificate from a test CA made here
with the openssl CLI; verification against the right and the wrong CA, SNI,
host name and IP checks, keep-alive reuse, session resumption, health
checks over TLS and configuration errors."""
import http.client
import json
import socket
import socketserver
import ssl
import subprocess
import http.server

import pytest

from conftest import BIN, EchoHandler, wait_for
from test_tls import make_leaf, openssl


@pytest.fixture(scope="module")
def upcerts(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("upcerts"))
    for ca, cn in (("ca", "Junction upstream test CA"), ("otherca", "Some other CA")):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", f"{d}/{ca}.key", "-out", f"{d}/{ca}.crt", "-subj", f"/CN={cn}",
                "-days", "2")
    # The backend's certificate names backend.test and localhost, not 127.0.0.1.
    make_leaf(d, "backend", "backend.test", "DNS:backend.test,DNS:localhost")
    make_leaf(d, "ipbackend", "ip backend", "IP:127.0.0.1")
    make_leaf(d, "client", "junction client", "DNS:junction.test")
    return d


class TLSBackend(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """An HTTPS echo server that records what TLS showed it: the SNI of each
    handshake, the handshakes (and whether they resumed a session) and the
    client certificate's subject."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, certs, leaf="backend", client_ca=None):
        super().__init__(("127.0.0.1", 0), EchoHandler)
        self.name = "tls"
        self.received, self.peer_ports, self.active = [], set(), 0
        self.snis, self.handshakes, self.resumed, self.client_subjects = [], 0, 0, []
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(f"{certs}/{leaf}.crt", f"{certs}/{leaf}.key")
        # Called with None when the client sends no SNI.
        self.ctx.sni_callback = lambda sock, name, ctx: self.snis.append(name)
        if client_ca:
            self.ctx.load_verify_locations(client_ca)
            self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.port = self.server_address[1]
        self.thread = __import__("threading").Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def finish_request(self, request, client_address):
        tls = self.ctx.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        try:
            tls.settimeout(10)
            tls.do_handshake()
        except (ssl.SSLError, OSError):
            return  # refused by the client (or by us): no request is read
        self.handshakes += 1
        self.resumed += tls.session_reused
        cert = tls.getpeercert()
        if cert:
            self.client_subjects.append(dict(x[0] for x in cert["subject"]))
        tls.settimeout(None)
        self.RequestHandlerClass(tls, client_address, self)

    def close(self):
        self.shutdown()
        self.server_close()


@pytest.fixture
def tls_backends(upcerts):
    made = []

    def make(**kw):
        b = TLSBackend(upcerts, **kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


CONF = """
workers: 1
listeners:
  - { name: web, address: 127.0.0.1:{port} }
access_log: { path: none }
timeouts: { drain: 1s, upstream_connect: 5s }
upstreams:
  app:
%(extra)s
    servers:
%(servers)s
    tls: %(tls)s
routes:
  - { name: app, match: { path_prefix: / }, upstream: app }
"""


def start(junction, backend_ports, tls, extra="", host="127.0.0.1", expect_errors=False):
    servers = "\n".join(f"      - {{ address: {host}:{p} }}" for p in backend_ports)
    return junction(CONF % {"servers": servers, "tls": tls, "extra": extra},
                    expect_errors=expect_errors)


def get(port, path="/hello"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


def test_the_right_ca_gives_the_backend_answer(junction, tls_backends, upcerts):
    b = tls_backends()
    j = start(junction, [b.port], f"{{ ca: {upcerts}/ca.crt, sni: backend.test }}")
    status, body = get(j.port)
    assert status == 200, body
    assert json.loads(body)["path"] == "/hello"
    assert b.handshakes == 1


def test_the_wrong_ca_gives_502_and_the_backend_sees_no_request(junction, tls_backends, upcerts):
    b = tls_backends()
    j = start(junction, [b.port], f"{{ ca: {upcerts}/otherca.crt, sni: backend.test }}",
              expect_errors=True)
    status, body = get(j.port)
    assert status == 502, body
    assert b.received == []
    assert "upstream TLS certificate verify failed: unable to get local issuer certificate" \
        in j.stderr()


def test_verify_false_accepts_a_certificate_of_an_unknown_ca(junction, tls_backends, upcerts):
    b = tls_backends()
    j = start(junction, [b.port], f"{{ verify: false, ca: {upcerts}/otherca.crt }}")
    status, body = get(j.port)
    assert status == 200, body
    assert len(b.received) == 1


def test_sni_is_the_configured_name(junction, tls_backends, upcerts):
    b = tls_backends()
    j = start(junction, [b.port], f"{{ ca: {upcerts}/ca.crt, sni: backend.test }}")
    assert get(j.port)[0] == 200
    assert b.snis == ["backend.test"]


def test_a_host_name_mismatch_gives_502(junction, tls_backends, upcerts):
    b = tls_backends()
    j = start(junction, [b.port], f"{{ ca: {upcerts}/ca.crt, sni: other.test }}",
              expect_errors=True)
    status, body = get(j.port)
    assert status == 502, body
    assert b.received == []
    assert b.snis == ["other.test"]
    assert "hostname mismatch" in j.stderr().lower()


def test_a_server_named_by_host_gets_that_name_as_sni_and_check(junction, tls_backends, upcerts):
    b = tls_backends()
    j = start(junction, [b.port], f"{{ ca: {upcerts}/ca.crt }}", host="localhost")
    assert get(j.port)[0] == 200
    assert b.snis == ["localhost"]


def test_an_ip_address_is_checked_against_the_certificate_ips(junction, tls_backends, upcerts):
    named = tls_backends()  # DNS names only: the IP check must fail
    j = start(junction, [named.port], f"{{ ca: {upcerts}/ca.crt }}", expect_errors=True)
    assert get(j.port)[0] == 502
    assert named.received == []
    assert named.snis == [None]  # an IP literal is never sent as SNI
    assert "ip address mismatch" in j.stderr().lower()


def test_a_certificate_for_the_ip_address_passes(junction, tls_backends, upcerts):
    b = tls_backends(leaf="ipbackend")
    j = start(junction, [b.port], f"{{ ca: {upcerts}/ca.crt }}")
    assert get(j.port)[0] == 200
    assert b.snis == [None]


def test_keep_alive_reuses_one_tls_connection(junction, tls_backends, upcerts):
    b = tls_backends()
    j = start(junction, [b.port], f"{{ ca: {upcerts}/ca.crt, sni: backend.test }}")
    for i in range(5):
        status, body = get(j.port, f"/r{i}")
        assert status == 200
        assert json.loads(body)["path"] == f"/r{i}"
    assert len(b.received) == 5
    assert b.handshakes == 1
    assert len(b.peer_ports) == 1


def test_a_new_connection_resumes_the_session(junction, tls_backends, upcerts):
    b = tls_backends()
    j = start(junction, [b.port], f"{{ ca: {upcerts}/ca.crt, sni: backend.test }}",
              extra="    keepalive: 0")
    for _ in range(3):
        assert get(j.port)[0] == 200
    assert b.handshakes == 3
    assert b.resumed == 2


def test_a_large_body_crosses_both_ways(junction, tls_backends, upcerts):
    b = tls_backends()
    j = start(junction, [b.port], f"{{ ca: {upcerts}/ca.crt, sni: backend.test }}")
    body = bytes(range(256)) * 4096  # 1 MiB
    conn = http.client.HTTPConnection("127.0.0.1", j.port, timeout=60)
    conn.request("POST", "/upload", body=body)
    r = conn.getresponse()
    out = json.loads(r.read())
    assert r.status == 200
    assert out["body_len"] == len(body)


def test_a_client_certificate_is_shown_to_the_server(junction, tls_backends, upcerts):
    b = tls_backends(client_ca=f"{upcerts}/ca.crt")
    j = start(junction, [b.port],
              f"{{ ca: {upcerts}/ca.crt, sni: backend.test, cert: {upcerts}/client.crt, "
              f"key: {upcerts}/client.key }}")
    assert get(j.port)[0] == 200
    assert b.client_subjects == [{"commonName": "junction client"}]


def test_a_handshake_failure_is_retried_on_another_server(junction, tls_backends, upcerts):
    bad = tls_backends(leaf="ipbackend")  # not backend.test
    good = tls_backends()
    j = start(junction, [bad.port, good.port],
              f"{{ ca: {upcerts}/ca.crt, sni: backend.test }}", expect_errors=True)
    for _ in range(4):
        assert get(j.port)[0] == 200
    assert bad.received == []
    assert len(good.received) == 4


def test_a_plain_server_fails_the_handshake_with_502(junction, backends, upcerts):
    plain = backends(1)[0]
    j = start(junction, [plain.port], f"{{ ca: {upcerts}/ca.crt, sni: backend.test }}",
              expect_errors=True)
    assert get(j.port)[0] == 502
    assert "upstream TLS handshake failed" in j.stderr()


def test_a_server_silent_in_the_handshake_is_a_connect_timeout(junction, raw_server, upcerts):
    silent = raw_server(lambda srv, c: srv.stop.wait(30))  # accepts, never answers the hello
    j = junction(CONF.replace("upstream_connect: 5s", "upstream_connect: 300ms") % {
        "servers": f"      - {{ address: 127.0.0.1:{silent.port} }}",
        "tls": f"{{ ca: {upcerts}/ca.crt, sni: backend.test }}", "extra": ""},
        expect_errors=True)
    status, body = get(j.port)
    assert status == 504, body
    assert b"upstream connect timeout" in body


def test_health_checks_speak_tls(junction, tls_backends, upcerts):
    b = tls_backends()
    j = start(junction, [b.port], f"{{ ca: {upcerts}/ca.crt, sni: backend.test }}",
              extra="    health: { interval: 50ms, timeout: 40ms, path: /healthz }")
    wait_for(lambda: any(r["path"] == "/healthz" for r in b.received), what="a TLS health check")
    assert get(j.port)[0] == 200


def test_a_health_check_to_an_unverified_server_fails(junction, tls_backends, upcerts):
    b = tls_backends()
    j = start(junction, [b.port], f"{{ ca: {upcerts}/otherca.crt, sni: backend.test }}",
              extra="    health: { interval: 50ms, timeout: 40ms, unhealthy_threshold: 1 }",
              expect_errors=True)
    wait_for(lambda: "health check failed" in j.stderr(), what="the check failure")
    assert "certificate verify failed" in j.stderr()
    assert b.received == []


def write(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return str(p)


def check(conf):
    return subprocess.run([BIN, "check", "-c", conf], capture_output=True, text=True, timeout=30)


def test_a_missing_ca_file_is_a_configuration_error(tmp_path):
    missing = str(tmp_path / "nope.crt")
    conf = write(tmp_path, f"""listeners: [ {{ name: w, address: 127.0.0.1:1 }} ]
upstreams:
  app:
    servers: [ {{ address: 127.0.0.1:2 }} ]
    tls: {{ ca: {missing} }}
""")
    for args in (["check", "-c", conf], ["-c", conf]):
        p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30)
        assert p.returncode == 1, p.stderr
        assert f"bad.yaml:5:16: tls: cannot read {missing}" in p.stderr


def test_a_ca_file_that_is_not_pem_is_a_configuration_error(tmp_path):
    junk = tmp_path / "junk.crt"
    junk.write_text("not a certificate\n")
    conf = write(tmp_path, f"""listeners: [ {{ name: w, address: 127.0.0.1:1 }} ]
upstreams:
  app:
    servers: [ {{ address: 127.0.0.1:2 }} ]
    tls:
      ca: {junk}
""")
    p = check(conf)
    assert p.returncode == 1
    assert f"bad.yaml:6:11: tls: cannot load CA file {junk}" in p.stderr


def test_tls_upstream_of_a_tcp_listener_is_a_configuration_error(tmp_path, upcerts):
    conf = write(tmp_path, f"""listeners:
  - {{ name: t, address: 127.0.0.1:1, protocol: tcp, upstream: db }}
upstreams:
  db:
    servers: [ {{ address: 127.0.0.1:2 }} ]
    tls: {{ ca: {upcerts}/ca.crt }}
""")
    p = check(conf)
    assert p.returncode == 1
    assert "bad.yaml:2:63: upstream: 'db' has tls:" in p.stderr
