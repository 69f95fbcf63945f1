"""The jwt policy through the real binary: tokens minted here with PyJWT
(python3-jwt) and keys made with cryptography, for every algorithm; the
attacks a verifier must refuse (alg none, the HS256-with-the-RSA-public-key
confusion, a bad signature); the claims (exp, nbf, iss, aud, leeway);
claims_to_headers and consumer_claim as the upstream sees them; a JWKS
served over HTTP and rotated while Junction runs; configuration errors."""
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import socketserver
import subprocess
import threading
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import ECAlgorithm, HMACAlgorithm, OKPAlgorithm, RSAAlgorithm

from conftest import BIN, wait_for

HMAC_SECRET = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def keys():
    """Private keys by name, with the JWK of their public half."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    made = {
        "rsa": (rsa_key, RSAAlgorithm.to_jwk(rsa_key.public_key())),
        "p256": ec.generate_private_key(ec.SECP256R1()),
        "p384": ec.generate_private_key(ec.SECP384R1()),
        "p521": ec.generate_private_key(ec.SECP521R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
        "ed448": ed448.Ed448PrivateKey.generate(),
    }
    out = {"rsa": made["rsa"]}
    for name in ("p256", "p384", "p521"):
        out[name] = (made[name], ECAlgorithm.to_jwk(made[name].public_key()))
    for name in ("ed25519", "ed448"):
        out[name] = (made[name], OKPAlgorithm.to_jwk(made[name].public_key()))
    out["hmac"] = (HMAC_SECRET, HMACAlgorithm.to_jwk(HMAC_SECRET))
    return out


ALGS = {"RS256": "rsa", "RS384": "rsa", "RS512": "rsa", "PS256": "rsa", "PS384": "rsa",
        "PS512": "rsa", "ES256": "p256", "ES384": "p384", "ES512": "p521", "EdDSA": "ed25519",
        "HS256": "hmac", "HS384": "hmac", "HS512": "hmac"}


def jwks_doc(keys, names):
    out = []
    for name in names:
        jwk = json.loads(keys[name][1])
        jwk["kid"] = name
        out.append(jwk)
    return json.dumps({"keys": out})


def claims(**kw):
    now = int(time.time())
    base = {"sub": "alice", "iss": "https://issuer.test", "aud": "api", "exp": now + 300,
            "iat": now}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def mint(keys, alg, kid="default", **kw):
    key = keys[ALGS[alg]][0]
    headers = {} if kid is None else {"kid": ALGS[alg] if kid == "default" else kid}
    return jwt.encode(claims(**kw), key, algorithm=alg, headers=headers)


def forge(header, payload, secret=None):
    """A token built by hand: unsigned, or HMAC-signed with any bytes."""
    signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    sig = b"" if secret is None else hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64(sig)


def cfg(b, jwt_settings, extra=""):
    return """
workers: 2
listeners:
  - name: public
    address: 127.0.0.1:{port}
%s
upstreams:
  app:
    servers: [ { address: 127.0.0.1:%d } ]
routes:
  - name: api
    match: { path_prefix: / }
    upstream: app
    policies:
      - jwt: %s
""" % (extra, b.port, jwt_settings)


def get(port, token=None, headers=None, path="/"):
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = "Bearer " + token
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request("GET", path, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def refused(port, token, why, headers=None):
    r, data = get(port, token, headers)
    assert r.status == 401, data
    assert json.loads(data)["error"] == why
    assert r.getheader("WWW-Authenticate").startswith('Bearer error="invalid_token"')
    return r


@pytest.fixture
def file_junction(junction, backends, keys, tmp_path):
    def start(settings="", names=tuple(set(ALGS.values())) + ("ed448",), algorithms=None,
              extra=""):
        (b,) = backends(1)
        path = tmp_path / "jwks.json"
        path.write_text(jwks_doc(keys, names))
        algs = algorithms or list(ALGS)
        j = junction(cfg(b, "{ jwks_file: %s, algorithms: [%s]%s }"
                            % (path, ", ".join(algs), settings), extra))
        return j, b
    return start


def test_every_algorithm_verifies_with_and_without_kid(file_junction, keys):
    j, b = file_junction()
    for alg in ALGS:
        for kid in ("default", None):
            r, data = get(j.port, mint(keys, alg, kid=kid))
            assert r.status == 200, (alg, kid, data)
    # EdDSA with Ed448 too: the kid names it, or the keys of its type are tried.
    for kid in ("ed448", None):
        tok = jwt.encode(claims(), keys["ed448"][0], algorithm="EdDSA",
                         headers={"kid": kid} if kid else {})
        assert get(j.port, tok)[0].status == 200
    assert len(b.received) == 2 * len(ALGS) + 2


def test_missing_token_gets_401_with_a_bare_bearer_challenge(file_junction):
    j, b = file_junction()
    for headers in ({}, {"Authorization": "Basic YTpi"}):
        r, data = get(j.port, headers=headers)
        assert r.status == 401
        assert r.getheader("WWW-Authenticate") == "Bearer"
        body = json.loads(data)
        assert body["error"] == "missing token" and body["request_id"]
    assert b.received == []


def test_alg_none_is_refused(file_junction):
    j, b = file_junction()
    for alg in ("none", "None", "NONE"):
        refused(j.port, forge({"alg": alg, "typ": "JWT"}, claims()), "algorithm not allowed")
        refused(j.port, forge({"alg": alg, "kid": "rsa"}, claims()) + "c2ln",
                "algorithm not allowed")
    assert b.received == []


def test_hs256_signed_with_the_rsa_public_key_is_refused(file_junction, keys):
    """The classic confusion: the RSA public key (PEM, or the JWK's n) used as
    an HMAC secret. An RSA key never verifies an HMAC algorithm, whether or
    not HS256 is allowed."""
    pub = keys["rsa"][0].public_key()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = pub.public_bytes(serialization.Encoding.PEM, spki)
    der = pub.public_bytes(serialization.Encoding.DER, spki)
    j, b = file_junction(names=("rsa",), algorithms=["RS256", "HS256"])
    for secret in (pem, der):
        refused(j.port, forge({"alg": "HS256", "kid": "rsa"}, claims(), secret),
                "no key for the algorithm")
        refused(j.port, forge({"alg": "HS256"}, claims(), secret), "no key for the algorithm")
    assert b.received == []


def test_an_algorithm_left_out_of_algorithms_is_refused(file_junction, keys):
    j, b = file_junction(algorithms=["RS256"])
    assert get(j.port, mint(keys, "RS256"))[0].status == 200
    for alg in ("ES256", "PS256", "HS256", "RS512"):
        refused(j.port, mint(keys, alg), "algorithm not allowed")
    assert len(b.received) == 1


def test_a_jwk_alg_pins_its_key_to_that_algorithm(junction, backends, keys, tmp_path):
    (b,) = backends(1)
    jwk = json.loads(keys["rsa"][1])
    jwk.update(kid="rsa", alg="RS256")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    j = junction(cfg(b, "{ jwks_file: %s, algorithms: [RS256, PS256] }" % path))
    assert get(j.port, mint(keys, "RS256"))[0].status == 200
    refused(j.port, mint(keys, "PS256"), "no key for the algorithm")


def test_a_bad_signature_is_refused(file_junction, keys):
    j, b = file_junction()
    for alg in ("RS256", "ES256", "EdDSA", "HS256", "PS256"):
        tok = mint(keys, alg)
        head, payload, sig = tok.split(".")
        other = b64(json.dumps(claims(sub="admin")).encode())
        refused(j.port, ".".join((head, other, sig)), "bad signature")
        flipped = sig[:-6] + ("AAAAAA" if sig[-6:] != "AAAAAA" else "BBBBBB")
        refused(j.port, ".".join((head, payload, flipped)), "bad signature")
    assert b.received == []


def test_malformed_tokens_are_refused(file_junction, keys):
    j, b = file_junction()
    good = mint(keys, "RS256")
    for tok in ("abc", good + ".x", good.replace(".", "..", 1), "a.b.c", "...",
                good[:-1] + "!", b64(b"[]") + "." + good.split(".", 1)[1]):
        refused(j.port, tok, "malformed token")
    assert b.received == []


def test_expiry_not_before_and_leeway(file_junction, keys):
    j, b = file_junction(settings=", leeway: 30s")
    now = int(time.time())
    refused(j.port, mint(keys, "ES256", exp=now - 120), "token expired")
    refused(j.port, mint(keys, "ES256", nbf=now + 600), "token not yet valid")
    refused(j.port, mint(keys, "ES256", exp=None), "token has no expiry")
    refused(j.port, mint(keys, "ES256", exp="soon"), "invalid claim")
    # Within the leeway both ways.
    assert get(j.port, mint(keys, "ES256", exp=now - 5))[0].status == 200
    assert get(j.port, mint(keys, "ES256", nbf=now + 5))[0].status == 200
    assert len(b.received) == 2


def test_exp_may_be_optional(file_junction, keys):
    j, _ = file_junction(settings=", require_exp: false")
    assert get(j.port, mint(keys, "ES256", exp=None))[0].status == 200
    refused(j.port, mint(keys, "ES256", exp=int(time.time()) - 600), "token expired")


def test_issuer_and_audience(file_junction, keys):
    j, b = file_junction(settings=", issuer: https://issuer.test, audiences: [api, other]")
    assert get(j.port, mint(keys, "RS256"))[0].status == 200
    assert get(j.port, mint(keys, "RS256", aud=["x", "other"]))[0].status == 200
    refused(j.port, mint(keys, "RS256", iss="https://evil.test"), "wrong issuer")
    refused(j.port, mint(keys, "RS256", iss=None), "wrong issuer")
    refused(j.port, mint(keys, "RS256", aud="web"), "wrong audience")
    refused(j.port, mint(keys, "RS256", aud=["web", "x"]), "wrong audience")
    refused(j.port, mint(keys, "RS256", aud=None), "wrong audience")
    assert len(b.received) == 2


def test_unknown_kid_from_a_file_is_refused(file_junction, keys):
    j, _ = file_junction()
    refused(j.port, mint(keys, "RS256", kid="nope"), "unknown key")


def received_headers(b, i=-1):
    return {k.lower(): v for k, v in b.received[i]["headers"]}


def test_claims_to_headers_replaces_and_removes_client_copies(file_junction, keys):
    j, b = file_junction(settings=", claims_to_headers: { sub: X-User-Id, tier: X-Tier, "
                                  "n: X-Number }")
    r, _ = get(j.port, mint(keys, "ES256", tier="gold", n=42),
               headers={"X-User-Id": "mallory", "X-Tier": "platinum"})
    assert r.status == 200
    h = received_headers(b)
    assert h["x-user-id"] == "alice" and h["x-tier"] == "gold" and h["x-number"] == "42"
    assert [k for k, _ in b.received[-1]["headers"]].count("X-User-Id") == 1
    # Authorization is forwarded by default.
    assert h["authorization"].startswith("Bearer ")
    # A claim that is absent (or not text) still removes what the client sent.
    r, _ = get(j.port, mint(keys, "ES256", tier=["a"]), headers={"X-Tier": "platinum"})
    assert r.status == 200
    assert "x-tier" not in received_headers(b) and "x-number" not in received_headers(b)
    # A claim holding a line break is never copied into a header.
    r, _ = get(j.port, mint(keys, "ES256", sub="alice\r\nX-Admin: 1"),
               headers={"X-User-Id": "mallory"})
    assert r.status == 200
    h = received_headers(b)
    assert "x-user-id" not in h and "x-admin" not in h


def test_hide_credentials_drops_authorization(file_junction, keys):
    j, b = file_junction(settings=", hide_credentials: true")
    assert get(j.port, mint(keys, "RS256"))[0].status == 200
    assert "authorization" not in received_headers(b)


def test_consumer_claim_names_a_known_consumer(file_junction, keys):
    j, b = file_junction(settings=", consumer_claim: sub",
                         extra="consumers:\n  - name: alice\n  - name: bob\n")
    assert get(j.port, mint(keys, "RS256", sub="alice"))[0].status == 200
    assert get(j.port, mint(keys, "RS256", sub="bob"))[0].status == 200
    refused(j.port, mint(keys, "RS256", sub="carol"), "unknown consumer")
    refused(j.port, mint(keys, "RS256", sub=None), "unknown consumer")
    assert len(b.received) == 2


def test_token_from_header_query_and_cookie(file_junction, keys):
    j, b = file_junction(settings=", token_from: [header:X-Token, query:access_token, "
                                  "cookie:jwt], hide_credentials: true")
    tok = mint(keys, "ES256")
    assert get(j.port, headers={"X-Token": tok})[0].status == 200
    assert "x-token" not in received_headers(b)
    assert get(j.port, headers={"X-Token": "Bearer " + tok})[0].status == 200
    assert get(j.port, path="/?a=1&access_token=" + tok)[0].status == 200
    assert get(j.port, headers={"Cookie": "a=b; jwt=%s; c=d" % tok})[0].status == 200
    # The first place listed that has a token is the one used.
    refused(j.port, None, "bad signature",
            headers={"X-Token": tok[:-4] + "AAAA", "Cookie": "jwt=" + tok})
    # Authorization is not among them here.
    r, data = get(j.port, tok)
    assert r.status == 401 and json.loads(data)["error"] == "missing token"
    assert len(b.received) == 4


def test_a_query_token_is_hidden_upstream_and_never_logged(file_junction, keys):
    j, b = file_junction(settings=", token_from: [query:access_token], hide_credentials: true",
                         extra="access_log: { path: stdout, format: json }")
    tok = mint(keys, "ES256")
    assert get(j.port, path="/p?a=1&access_token=" + tok + "&b=2")[0].status == 200
    assert b.received[-1]["path"] == "/p?a=1&b=2"
    r, _ = get(j.port, path="/p?access_token=" + tok[:-4] + "AAAA")
    assert r.status == 401
    wait_for(lambda: len(j.access_lines()) == 2, what="2 access log lines")
    assert sorted(x["path"] for x in j.access_lines()) == ["/p", "/p?a=1&b=2"]


def test_a_query_token_kept_upstream_is_still_left_out_of_the_log(file_junction, keys):
    j, b = file_junction(settings=", token_from: [query:access_token]",
                         extra="access_log: { path: stdout, format: json }")
    tok = mint(keys, "ES256")
    assert get(j.port, path="/p?access_token=" + tok + "&b=2")[0].status == 200
    assert b.received[-1]["path"] == "/p?access_token=" + tok + "&b=2"
    wait_for(lambda: len(j.access_lines()) == 1, what="1 access log line")
    assert j.access_lines()[0]["path"] == "/p?b=2"


def test_secret_file_holds_a_raw_hmac_secret(junction, backends, keys, tmp_path):
    (b,) = backends(1)
    path = tmp_path / "secret"
    path.write_bytes(HMAC_SECRET + b"\n")
    j = junction(cfg(b, "{ secret_file: %s, algorithms: [HS256, HS512] }" % path))
    assert get(j.port, jwt.encode(claims(), HMAC_SECRET, algorithm="HS256"))[0].status == 200
    assert get(j.port, jwt.encode(claims(), HMAC_SECRET, algorithm="HS512"))[0].status == 200
    refused(j.port, jwt.encode(claims(), b"other secret", algorithm="HS256"), "bad signature")


class JWKSServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Serves self.doc at /jwks and counts the fetches; set doc to rotate."""
    daemon_threads = True

    def __init__(self, doc):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.fetches += 1
                if outer.hold is not None:
                    outer.hold.wait(30)
                body = outer.doc.encode()
                self.send_response(200 if self.path == "/jwks" else 404)
                self.send_header("Content-Type", "application/json")
                if outer.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(body), 100):
                        part = body[i:i + 100]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

        super().__init__(("127.0.0.1", 0), Handler)
        self.doc, self.fetches, self.chunked, self.hold, self.tls = doc, 0, False, None, None
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def get_request(self):
        sock, addr = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True)
        return sock, addr

    def handle_error(self, request, client_address):
        pass  # a client refusing the certificate is what some tests want


@pytest.fixture
def jwks_server():
    made = []

    def make(doc):
        s = JWKSServer(doc)
        made.append(s)
        return s
    yield make
    for s in made:
        s.shutdown()
        s.server_close()


def test_jwks_url_rotation_is_picked_up_on_an_unknown_kid(junction, backends, keys,
                                                         jwks_server):
    (b,) = backends(1)
    srv = jwks_server(jwks_doc(keys, ["rsa"]))
    j = junction(cfg(b, "{ jwks_url: 'http://127.0.0.1:%d/jwks', algorithms: [RS256, ES256], "
                        "jwks_min_refresh: 0s }" % srv.port))
    # The first request may come before the first fetch ends: it waits for it.
    assert get(j.port, mint(keys, "RS256"))[0].status == 200
    before = srv.fetches
    srv.chunked = True
    srv.doc = jwks_doc(keys, ["p256"])
    # A kid it does not know: the request waits for the refresh it triggers.
    r, data = get(j.port, mint(keys, "ES256"))
    assert r.status == 200, data
    assert srv.fetches > before
    # The old key is gone with the rotation.
    refused(j.port, mint(keys, "RS256"), "unknown key")
    assert len(b.received) == 2


def test_jwks_min_refresh_limits_fetches_on_unknown_kids(junction, backends, keys, jwks_server):
    (b,) = backends(1)
    srv = jwks_server(jwks_doc(keys, ["rsa"]))
    j = junction(cfg(b, "{ jwks_url: 'http://127.0.0.1:%d/jwks', algorithms: [RS256], "
                        "jwks_min_refresh: 1h }" % srv.port))
    assert get(j.port, mint(keys, "RS256"))[0].status == 200
    fetches = srv.fetches
    for _ in range(5):
        refused(j.port, mint(keys, "RS256", kid="unknown"), "unknown key")
    assert srv.fetches == fetches


def test_jwks_url_failures_keep_the_old_keys(junction, backends, keys, jwks_server):
    (b,) = backends(1)
    srv = jwks_server(jwks_doc(keys, ["rsa"]))
    j = junction(cfg(b, "{ jwks_url: 'http://127.0.0.1:%d/jwks', algorithms: [RS256], "
                        "jwks_min_refresh: 0s }" % srv.port))
    assert get(j.port, mint(keys, "RS256"))[0].status == 200
    srv.doc = "not json"
    fetches = srv.fetches
    refused(j.port, mint(keys, "RS256", kid="unknown"), "unknown key")
    assert srv.fetches > fetches
    wait_for(lambda: "keeping the keys it had" in j.stderr(), what="the warning")
    assert get(j.port, mint(keys, "RS256"))[0].status == 200


def test_jwks_url_unreachable_gives_no_keys(junction, backends, keys):
    from conftest import free_port
    (b,) = backends(1)
    j = junction(cfg(b, "{ jwks_url: 'http://127.0.0.1:%d/jwks', algorithms: [RS256] }"
                        % free_port()))
    refused(j.port, mint(keys, "RS256"), "no keys")
    assert "[warn]" in j.stderr() or "warn" in j.stderr().lower()


def test_a_request_reset_while_waiting_for_keys_is_dropped_cleanly(junction, backends, keys,
                                                                   jwks_server):
    """HTTP/2: the stream waiting for a key set fetch is reset; the fetch
    ends later and its completion must not touch the stream (ASan checks)."""
    from h2client import H2Client
    (b,) = backends(1)
    srv = jwks_server(jwks_doc(keys, ["rsa"]))
    j = junction(cfg(b, "{ jwks_url: 'http://127.0.0.1:%d/jwks', algorithms: [RS256], "
                        "jwks_min_refresh: 0s, jwks_timeout: 20s }" % srv.port))
    h = H2Client(j.port)
    auth = lambda tok: [("authorization", "Bearer " + tok)]  # noqa: E731
    assert h.get(headers=auth(mint(keys, "RS256"))).status == 200
    before = srv.fetches
    srv.hold = threading.Event()
    sid = h.request(headers=auth(mint(keys, "RS256", kid="new")))
    wait_for(lambda: srv.fetches == before + 1, what="the refresh to start")
    h.conn.reset_stream(sid)
    h.flush()
    # Other requests go on meanwhile (and show the reset was read).
    assert h.get(headers=auth(mint(keys, "RS256"))).status == 200
    srv.hold.set()
    # A later unknown kid waits for the fetch (that one or its own).
    r = h.get(headers=auth(mint(keys, "RS256", kid="newer")))
    assert r.status == 401 and json.loads(r.data)["error"] == "unknown key"
    h.close()


def test_stopping_while_a_request_waits_for_keys(junction, backends, keys, jwks_server):
    """SIGTERM drains: the waiting request is answered when its fetch gives
    up (jwks_timeout), then Junction stops cleanly and joins the fetcher."""
    (b,) = backends(1)
    srv = jwks_server(jwks_doc(keys, ["rsa"]))
    j = junction(cfg(b, "{ jwks_url: 'http://127.0.0.1:%d/jwks', algorithms: [RS256], "
                        "jwks_min_refresh: 0s, jwks_timeout: 1s }" % srv.port))
    assert get(j.port, mint(keys, "RS256"))[0].status == 200
    before = srv.fetches
    srv.hold = threading.Event()
    answers = []
    t = threading.Thread(target=lambda: answers.append(get(j.port, mint(keys, "RS256",
                                                                        kid="new"))))
    t.start()
    wait_for(lambda: srv.fetches == before + 1, what="the refresh to start")
    assert j.stop() == 0
    t.join(30)
    srv.hold.set()
    r, data = answers[0]
    assert r.status == 401 and json.loads(data)["error"] == "unknown key"
    assert "timed out" in j.stderr()


@pytest.fixture(scope="module")
def jwks_certs(tmp_path_factory):
    from test_tls import make_leaf, openssl
    d = str(tmp_path_factory.mktemp("jwkscerts"))
    for ca in ("ca", "otherca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", f"{d}/{ca}.key", "-out", f"{d}/{ca}.crt", "-subj",
                f"/CN=jwt test {ca}", "-days", "2")
    make_leaf(d, "idp", "idp.test", "DNS:localhost")
    return d


def https_jwks(junction, backends, keys, jwks_server, jwks_certs, ca):
    import ssl
    (b,) = backends(1)
    srv = jwks_server(jwks_doc(keys, ["p256"]))
    srv.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv.tls.load_cert_chain(f"{jwks_certs}/idp.crt", f"{jwks_certs}/idp.key")
    return junction(cfg(b, "{ jwks_url: 'https://localhost:%d/jwks', jwks_ca: %s/%s.crt, "
                           "algorithms: [ES256] }" % (srv.port, jwks_certs, ca)))


def test_jwks_url_over_https_with_its_ca(junction, backends, keys, jwks_server, jwks_certs):
    j = https_jwks(junction, backends, keys, jwks_server, jwks_certs, "ca")
    assert get(j.port, mint(keys, "ES256"))[0].status == 200


def test_jwks_url_over_https_refuses_an_unknown_ca(junction, backends, keys, jwks_server,
                                                   jwks_certs):
    j = https_jwks(junction, backends, keys, jwks_server, jwks_certs, "otherca")
    refused(j.port, mint(keys, "ES256"), "no keys")
    assert "unable to get local issuer certificate" in j.stderr()


def check(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return subprocess.run([BIN, "check", "-c", str(p)], capture_output=True, text=True, timeout=30)


BAD_BASE = """listeners:
  - name: public
    address: 127.0.0.1:1
upstreams:
  app:
    servers: [ { address: 127.0.0.1:2 } ]
routes:
  - name: api
    match: { path_prefix: / }
    upstream: app
    policies:
"""


@pytest.mark.parametrize("item,at,message", [
    ("- jwt: { jwks_file: %(f)s, algorithms: [RS256, XS256] }", "XS256",
     "'XS256' is not an algorithm"),
    ("- jwt: { jwks_file: %(f)s, algorithms: [none] }", "none", "is refused"),
    ("- jwt: { algorithms: [RS256] }", "{", "needs exactly one key source"),
    ("- jwt: { jwks_file: %(f)s }", "{", "algorithms"),
    ("- jwt: { jwks_file: /nonexistent/jwks.json, algorithms: [RS256] }", "/nonexistent",
     "cannot read /nonexistent/jwks.json"),
    ("- jwt: { jwks_file: %(bad)s, algorithms: [RS256] }", "/", "invalid JSON"),
    ("- jwt: { jwks_file: %(small)s, algorithms: [RS256] }", "/", "at least 2048"),
    ("- jwt: { jwks_file: %(f)s, algorithms: [HS256] }", "/", "verifies any"),
    ("- jwt: { jwks_url: 'ftp://x/jwks', algorithms: [RS256] }", "'ftp", "http://"),
    ("- jwt: { jwks_url: 'http://x/jwks', jwks_ca: /x, algorithms: [RS256] }", "/x,",
     "needs an https"),
    ("- jwt: { jwks_file: %(f)s, algorithms: [RS256], leeway: 1y }", "1y", "invalid duration"),
    ("- jwt: { jwks_file: %(f)s, algorithms: [RS256], claims_to_headers: { sub: 'a b' } }",
     "'a b'", "not a valid header name"),
    ("- jwt: { secret_file: %(empty)s, algorithms: [HS256] }", "/", "is empty"),
    ("- jwt: { jwks_file: %(f)s, algorithms: [RS256], token_from: [body:x] }", "body",
     "must be header:NAME"),
    ("- jwt: { jwks_file: %(f)s, algorithms: [RS256], cache_size: -1 }", "-1", "cache_size"),
])
def test_configuration_errors_name_the_position(tmp_path, keys, item, at, message):
    f = tmp_path / "jwks.json"
    f.write_text(jwks_doc(keys, ["rsa"]))
    bad = tmp_path / "bad.json"
    bad.write_text("{ nope")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    small = tmp_path / "small.json"
    k = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    small.write_text(json.dumps({"keys": [json.loads(RSAAlgorithm.to_jwk(k.public_key()))]}))
    line = "      " + item % {"f": f, "bad": bad, "small": small, "empty": empty}
    r = check(tmp_path, BAD_BASE + line + "\n")
    assert r.returncode != 0
    assert f"bad.yaml:12:{line.index(at) + 1}:" in r.stderr, r.stderr
    assert message in r.stderr, r.stderr


# ---- the cache of verified tokens (one worker, so that a token's second
# request meets the entry its first one made) ----


def one_worker(text):
    return text.replace("workers: 2", "workers: 1", 1)


@pytest.fixture
def cached_junction(junction, backends, keys, tmp_path):
    def start(settings="", extra=""):
        (b,) = backends(1)
        path = tmp_path / "jwks.json"
        path.write_text(jwks_doc(keys, ["rsa", "p256"]))
        j = junction(one_worker(cfg(b, "{ jwks_file: %s, algorithms: [RS256, ES256]%s }"
                                       % (path, settings), extra)))
        return j, b
    return start


def test_a_cached_token_still_expires(cached_junction, keys):
    j, b = cached_junction(settings=", leeway: 0s")
    tok = mint(keys, "RS256", exp=int(time.time()) + 2)
    assert get(j.port, tok)[0].status == 200
    assert get(j.port, tok)[0].status == 200  # from the cache
    # Polled: refused once exp is reached, although it was cached.
    wait_for(lambda: get(j.port, tok)[0].status == 401, what="the token to expire")
    refused(j.port, tok, "token expired")


def test_a_cached_token_is_refused_once_its_key_is_rotated_out(junction, backends, keys,
                                                               jwks_server):
    (b,) = backends(1)
    srv = jwks_server(jwks_doc(keys, ["rsa"]))
    j = junction(one_worker(cfg(b, "{ jwks_url: 'http://127.0.0.1:%d/jwks', "
                                   "algorithms: [RS256, ES256], jwks_min_refresh: 0s }"
                                   % srv.port)))
    tok = mint(keys, "RS256")
    assert get(j.port, tok)[0].status == 200
    assert get(j.port, tok)[0].status == 200  # cached
    fetches = srv.fetches
    srv.doc = jwks_doc(keys, ["p256"])
    # An unknown kid brings the new set, which has no RSA key any more.
    assert get(j.port, mint(keys, "ES256"))[0].status == 200
    assert srv.fetches > fetches
    refused(j.port, tok, "unknown key")
    assert len(b.received) == 3


def test_the_cache_key_covers_the_signature(cached_junction, keys):
    j, b = cached_junction()
    for alg in ("RS256", "ES256"):
        tok = mint(keys, alg)
        assert get(j.port, tok)[0].status == 200
        head, payload, sig = tok.split(".")
        flipped = sig[:-6] + ("AAAAAA" if sig[-6:] != "AAAAAA" else "BBBBBB")
        refused(j.port, ".".join((head, payload, flipped)), "bad signature")
        other = b64(json.dumps(claims(sub="admin")).encode())
        refused(j.port, ".".join((head, other, sig)), "bad signature")
        assert get(j.port, tok)[0].status == 200
    assert len(b.received) == 4


def test_a_cached_token_gives_the_same_claims_headers_and_consumer(cached_junction, keys):
    j, b = cached_junction(settings=", consumer_claim: sub, claims_to_headers: "
                                    "{ sub: X-User-Id, tier: X-Tier, n: X-Number }",
                           extra="consumers:\n  - name: alice\n")
    tok = mint(keys, "RS256", tier="gold", n=42, nested={"a": 1})
    seen = []
    for _ in range(3):
        r, _ = get(j.port, tok, headers={"X-User-Id": "mallory", "X-Tier": "platinum"})
        assert r.status == 200
        h = received_headers(b)
        assert [k for k, _ in b.received[-1]["headers"]].count("X-User-Id") == 1
        seen.append((h["x-user-id"], h["x-tier"], h["x-number"]))
    assert seen == [("alice", "gold", "42")] * 3
    # A token naming an unknown consumer is refused every time, cached or not.
    carol = mint(keys, "RS256", sub="carol")
    for _ in range(2):
        refused(j.port, carol, "unknown consumer")


def test_the_cache_may_be_turned_off(cached_junction, keys):
    j, b = cached_junction(settings=", cache_size: 0, leeway: 0s, "
                                    "claims_to_headers: { sub: X-User-Id }")
    tok = mint(keys, "RS256", exp=int(time.time()) + 2)
    for _ in range(3):
        assert get(j.port, tok)[0].status == 200
        assert received_headers(b)["x-user-id"] == "alice"
    wait_for(lambda: get(j.port, tok)[0].status == 401, what="the token to expire")
    refused(j.port, tok, "token expired")


def test_a_small_cache_evicts_and_still_admits_every_token(cached_junction, keys):
    j, b = cached_junction(settings=", cache_size: 2, claims_to_headers: { sub: X-User-Id }")
    toks = [mint(keys, "ES256", sub="user%d" % i) for i in range(12)]
    for _ in range(2):
        for i, tok in enumerate(toks):
            assert get(j.port, tok)[0].status == 200
            assert received_headers(b)["x-user-id"] == "user%d" % i
