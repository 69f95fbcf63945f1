"""Client certificates (mTLS) and session tickets under rotating keys
(docs/tls.md) through the real binary: a test CA, a client certificate it
signed, an expired one (made with `openssl ca`, which takes explicit dates),
and one from another CA; curl, openssl s_client and Python's ssl as
clients."""
import http.client
import os
import socket
import ssl
import subprocess

import pytest

from conftest import BIN, wait_for

CONF = """
workers: 1
listeners:
  - name: tls
    address: 127.0.0.1:{port0}
    tls:
      certificates:
        - { cert: %(dir)s/server.crt, key: %(dir)s/server.key }
%(tls_extra)s
  - name: plain
    address: 127.0.0.1:{port1}
%(more_listeners)s
access_log: { path: none }
timeouts: { drain: 1s }
upstreams:
  app:
    servers:
      - { address: 127.0.0.1:%(backend)d }
routes:
  - { name: app, match: { path_prefix: / }, upstream: app }
"""

REQUIRED = """      client_ca: %(dir)s/ca.crt
      client_subject_header: X-Client-Subject"""
OPTIONAL = REQUIRED + "\n      verify_client: optional"
SUBJECT = "CN=alice,O=Example Org"

CA_CONF = """[ ca ]
default_ca = test_ca
[ test_ca ]
database = {d}/index.txt
new_certs_dir = {d}
serial = {d}/serial
default_md = sha256
policy = any
email_in_dn = no
unique_subject = no
[ any ]
commonName = supplied
organizationName = optional
"""


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(d, name, cn):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.crt", "-subj", f"/CN={cn}",
            "-days", "2")


def make_csr(d, name, subj):
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{d}/{name}.key", "-subj", subj, "-out", f"{d}/{name}.csr")


def sign(d, name, ca, ext):
    with open(f"{d}/{name}.ext", "w") as f:
        f.write(ext)
    openssl("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/{ca}.crt", "-CAkey",
            f"{d}/{ca}.key", "-CAcreateserial", "-days", "2", "-out", f"{d}/{name}.crt",
            "-extfile", f"{d}/{name}.ext")


def sign_expired(d, name, ca):
    """`openssl x509` of OpenSSL 3.0 cannot set dates in the past; `openssl ca` can."""
    with open(f"{d}/ca.cnf", "w") as f:
        f.write(CA_CONF.format(d=d))
    open(f"{d}/index.txt", "w").close()
    with open(f"{d}/serial", "w") as f:
        f.write("1000\n")
    openssl("ca", "-batch", "-config", f"{d}/ca.cnf", "-cert", f"{d}/{ca}.crt", "-keyfile",
            f"{d}/{ca}.key", "-in", f"{d}/{name}.csr", "-out", f"{d}/{name}.crt", "-notext",
            "-startdate", "20200101000000Z", "-enddate", "20200102000000Z")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("mtls"))
    make_ca(d, "ca", "Junction test CA")
    make_ca(d, "other", "Some other CA")
    make_csr(d, "server", "/CN=mtls.test")
    sign(d, "server", "ca", "subjectAltName=DNS:mtls.test\n")
    client_ext = "extendedKeyUsage=clientAuth\n"
    make_csr(d, "client", "/O=Example Org/CN=alice")
    sign(d, "client", "ca", client_ext)
    make_csr(d, "rogue", "/O=Example Org/CN=alice")
    sign(d, "rogue", "other", client_ext)
    make_csr(d, "expired", "/O=Example Org/CN=alice")
    sign_expired(d, "expired", "ca")
    return d


@pytest.fixture
def mtls_junction(junction, backends, certs):
    def start(tls_extra="", more_listeners="", expect_errors=False):
        b = backends(1)[0]
        conf = CONF % {"dir": certs, "tls_extra": tls_extra % {"dir": certs},
                       "more_listeners": more_listeners % {"dir": certs}, "backend": b.port}
        j = junction(conf, nports=3 if more_listeners else 2, expect_errors=expect_errors)
        j.backend = b
        return j
    return start


def curl(port, certs, client=None, headers=()):
    args = ["curl", "-sS", "--http1.1", "--cacert", f"{certs}/ca.crt",
            "--resolve", f"mtls.test:{port}:127.0.0.1"]
    if client:
        args += ["--cert", f"{certs}/{client}.crt", "--key", f"{certs}/{client}.key"]
    for h in headers:
        args += ["-H", h]
    return subprocess.run(args + [f"https://mtls.test:{port}/hello"], capture_output=True,
                          text=True, timeout=20)


def received_headers(backend, name):
    return [v for k, v in backend.received[-1]["headers"] if k.lower() == name.lower()]


def test_required_with_a_valid_certificate_forwards_the_subject(mtls_junction, certs):
    j = mtls_junction(REQUIRED)
    p = curl(j.port, certs, "client")
    assert p.returncode == 0, p.stderr
    assert '"path": "/hello"' in p.stdout
    assert received_headers(j.backend, "X-Client-Subject") == [SUBJECT]


@pytest.mark.parametrize("client", [None, "expired", "rogue"],
                         ids=["no certificate", "expired", "unknown CA"])
def test_required_refuses_the_handshake_without_a_valid_certificate(mtls_junction, certs, client):
    j = mtls_junction(REQUIRED)
    p = curl(j.port, certs, client)
    assert p.returncode != 0, p.stdout
    assert j.backend.received == []
    wait_for(lambda: "TLS handshake failed" in j.stderr(), what="the failure logged")


def test_optional_without_a_certificate_is_served_without_a_subject(mtls_junction, certs):
    j = mtls_junction(OPTIONAL)
    p = curl(j.port, certs, None, headers=["X-Client-Subject: CN=admin"])
    assert p.returncode == 0, p.stderr
    assert received_headers(j.backend, "X-Client-Subject") == []
    p = curl(j.port, certs, "client")
    assert p.returncode == 0, p.stderr
    assert received_headers(j.backend, "X-Client-Subject") == [SUBJECT]


@pytest.mark.parametrize("client", ["expired", "rogue"])
def test_optional_refuses_an_invalid_certificate(mtls_junction, certs, client):
    j = mtls_junction(OPTIONAL)
    assert curl(j.port, certs, client).returncode != 0
    assert j.backend.received == []


def test_a_client_sent_subject_header_is_replaced(mtls_junction, certs):
    j = mtls_junction(REQUIRED)
    p = curl(j.port, certs, "client",
             headers=["X-Client-Subject: CN=admin", "x-client-subject: CN=root"])
    assert p.returncode == 0, p.stderr
    assert received_headers(j.backend, "X-Client-Subject") == [SUBJECT]


def test_a_plain_http_client_cannot_inject_the_subject_header(mtls_junction):
    j = mtls_junction(REQUIRED)
    conn = http.client.HTTPConnection("127.0.0.1", j.ports[1], timeout=10)
    conn.request("GET", "/plain", headers={"X-Client-Subject": SUBJECT})
    r = conn.getresponse()
    r.read()
    assert r.status == 200
    assert j.backend.received[-1]["path"] == "/plain"
    assert received_headers(j.backend, "X-Client-Subject") == []
    conn.close()


def test_the_subject_is_not_forwarded_unless_configured(mtls_junction, certs):
    j = mtls_junction("      client_ca: %(dir)s/ca.crt")
    p = curl(j.port, certs, "client", headers=["X-Client-Subject: CN=admin"])
    assert p.returncode == 0, p.stderr
    assert received_headers(j.backend, "X-Client-Subject") == ["CN=admin"]
    assert curl(j.port, certs, None).returncode != 0  # required is the default


def s_client(port, certs, *extra, request=None):
    args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "mtls.test",
            "-CAfile", f"{certs}/ca.crt", *extra]
    if request is not None:
        args.append("-ign_eof")
    return subprocess.run(args, input=request or "", capture_output=True, text=True, timeout=20)


GET = "GET /again HTTP/1.1\r\nHost: mtls.test\r\nConnection: close\r\n\r\n"


def test_a_resumed_session_keeps_the_verified_subject(mtls_junction, certs, tmp_path):
    j = mtls_junction(REQUIRED)
    sess = str(tmp_path / "sess.pem")
    cert = ["-cert", f"{certs}/client.crt", "-key", f"{certs}/client.key", "-tls1_2"]
    first = s_client(j.port, certs, *cert, "-sess_out", sess)
    assert "New," in first.stdout, first.stdout + first.stderr
    # Resumed without sending the certificate again: the session carries it.
    second = s_client(j.port, certs, "-tls1_2", "-sess_in", sess, request=GET)
    assert "Reused," in second.stdout, second.stdout + second.stderr
    assert "HTTP/1.1 200" in second.stdout
    assert received_headers(j.backend, "X-Client-Subject") == [SUBJECT]


def test_a_session_of_a_listener_without_client_certificates_does_not_resume(
        mtls_junction, certs, tmp_path):
    """A session made where no certificate was asked for must not let a client
    skip verification on a listener that requires one."""
    j = mtls_junction(REQUIRED, more_listeners="""  - name: open
    address: 127.0.0.1:{port2}
    tls:
      certificates:
        - { cert: %(dir)s/server.crt, key: %(dir)s/server.key }""")
    for version in ("-tls1_2", "-tls1_3"):
        sess = str(tmp_path / f"open{version}.pem")
        first = s_client(j.ports[2], certs, version, "-sess_out", sess, request=GET)
        assert "HTTP/1.1 200" in first.stdout, first.stdout + first.stderr
        assert os.path.getsize(sess) > 0
        second = s_client(j.port, certs, version, "-sess_in", sess, request=GET)
        assert "Reused," not in second.stdout
        assert "HTTP/1.1 200" not in second.stdout
    assert all(r["path"] == "/again" for r in j.backend.received)
    assert len(j.backend.received) == 2


# ---- session tickets ----

def ticket_context(certs, tls12):
    ctx = ssl.create_default_context(cafile=f"{certs}/ca.crt")
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def https_get(port, ctx, session=None):
    """One request on a new connection; returns (session, resumed)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    s = ctx.wrap_socket(raw, server_hostname="mtls.test", session=session)
    s.sendall(b"GET /t HTTP/1.1\r\nHost: mtls.test\r\nConnection: close\r\n\r\n")
    data = b""
    while True:  # reading to the end also takes TLS 1.3 tickets in
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    out = (s.session, s.session_reused)
    s.close()
    return out


@pytest.mark.parametrize("tls12", [False, True], ids=["TLS 1.3", "TLS 1.2"])
def test_a_ticket_resumes_the_session(mtls_junction, certs, tls12):
    j = mtls_junction()
    ctx = ticket_context(certs, tls12)
    session, resumed = https_get(j.port, ctx)
    assert not resumed
    assert session is not None and session.has_ticket
    for _ in range(3):
        _, resumed = https_get(j.port, ctx, session)
        assert resumed


@pytest.mark.parametrize("tls12", [False, True], ids=["TLS 1.3", "TLS 1.2"])
def test_a_ticket_whose_key_left_the_ring_is_not_resumed(mtls_junction, certs, tls12):
    """With ticket_key_rotation: 1s the ring (current key and two before it)
    forgets a key within three seconds: its tickets then get a full
    handshake, while a fresh ticket still resumes."""
    j = mtls_junction("      ticket_key_rotation: 1s")
    ctx = ticket_context(certs, tls12)

    def fresh_ticket_resumes():
        session, _ = https_get(j.port, ctx)
        return https_get(j.port, ctx, session)[1]

    wait_for(fresh_ticket_resumes, what="a fresh ticket resumed")
    old, _ = https_get(j.port, ctx)
    wait_for(lambda: not https_get(j.port, ctx, old)[1], timeout=20,
             what="the old ticket refused")
    wait_for(fresh_ticket_resumes, what="a fresh ticket resumed after rotations")


def write_conf(tmp_path, certs, tls_extra):
    conf = tmp_path / "bad.yaml"
    conf.write_text(f"""
listeners:
  - name: tls
    address: 127.0.0.1:1
    tls:
      certificates:
        - {{ cert: {certs}/server.crt, key: {certs}/server.key }}
{tls_extra}
routes:
  - {{ name: r, match: {{ path: / }}, respond: {{ status: 200 }} }}
""")
    return str(conf)


def check(conf):
    return subprocess.run([BIN, "check", "-c", conf], capture_output=True, text=True, timeout=30)


def test_a_client_ca_that_cannot_be_loaded_is_a_configuration_error(certs, tmp_path):
    missing = str(tmp_path / "nope.pem")
    p = check(write_conf(tmp_path, certs, f"      client_ca: {missing}"))
    assert p.returncode == 1
    assert f"bad.yaml:8:18: tls: cannot read {missing}" in p.stderr
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    p = check(write_conf(tmp_path, certs, f"      client_ca: {not_pem}"))
    assert p.returncode == 1
    assert f"bad.yaml:8:18: tls: cannot load client CA {not_pem}" in p.stderr


def test_verify_client_without_client_ca_is_a_configuration_error(certs, tmp_path):
    p = check(write_conf(tmp_path, certs, "      verify_client: required"))
    assert p.returncode == 1
    assert "bad.yaml:8:22: verify_client: needs client_ca" in p.stderr
