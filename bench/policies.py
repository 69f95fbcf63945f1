"""Part 8 of `make bench` (bench/run.py): what the gateway policies cost.

Junction alone, one worker, in interleaved rounds of wrk, with the same route three ways:
no policies; key_auth + rate_limit; jwt (RS256, a JWKS file) + rate_limit, with its cache of
verified tokens and without it (a client that sends a new token on every request). The rate limit
is keyed by the consumer and set high enough never to refuse, so every request pays for a
key lookup (or a signature check) and a counter update on a key that every connection
shares, the worst case for contention. The RS256 token is minted here with the openssl
command (no Python package needed). Reported: requests/s and CPU per request, medians, and
each policy set against no policies (target: at most 10% of throughput); with --callgrind,
also user-space instructions per request of each, which machine noise does not move.
"""
import base64
import json
import os
import subprocess
import types

API_KEY = "bench-key-0123456789abcdef"

HEAD = """workers: 1
listeners:
  - {{ name: bench, address: 127.0.0.1:{port} }}
access_log: {{ path: none }}
error_log: {{ level: warn }}
consumers:
  - name: bench
    api_keys: [ {{ key: "{key}" }} ]
upstreams:
  backends:
    keepalive: 128
    servers:
      - {{ address: 127.0.0.1:{b0} }}
      - {{ address: 127.0.0.1:{b1} }}
routes:
  - name: all
    match: {{ path_prefix: / }}
    upstream: backends
"""

# Far above what one worker can serve: the limit is counted, never reached.
RATE = "      - rate_limit: { limit: 100000000, window: 1s, key: consumer, algorithm: token_bucket }\n"

POLICIES = {
    "no policies": "",
    "key_auth + rate_limit": "    policies:\n      - key_auth: {}\n" + RATE,
    "jwt RS256 + rate_limit": ("    policies:\n      - jwt: { algorithms: [RS256], jwks_file: JWKS,"
                               " issuer: bench, consumer_claim: sub }\n" + RATE),
    # The same without the token cache: what a client pays that sends a new token each time.
    "jwt RS256 uncached + rate_limit": ("    policies:\n      - jwt: { algorithms: [RS256],"
                                        " jwks_file: JWKS, issuer: bench, consumer_claim: sub,"
                                        " cache_size: 0 }\n" + RATE),
}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_rs256(tmp):
    """An RSA key, its JWKS file and a token for consumer 'bench' valid for a day."""
    key = os.path.join(tmp, "bench-rsa.pem")
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    mod = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"], check=True,
                         capture_output=True, text=True).stdout.strip().split("=", 1)[1]
    n = bytes.fromhex(mod)
    jwks = os.path.join(tmp, "bench-jwks.json")
    with open(jwks, "w") as f:
        json.dump({"keys": [{"kty": "RSA", "kid": "bench", "alg": "RS256", "use": "sig",
                             "n": b64url(n), "e": b64url((65537).to_bytes(3, "big"))}]}, f)
    now = int(subprocess.run(["date", "+%s"], capture_output=True, text=True).stdout)
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "bench"}).encode())
    claims = b64url(json.dumps({"sub": "bench", "iss": "bench", "iat": now,
                                "exp": now + 86400}).encode())
    signing = f"{header}.{claims}".encode()
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing,
                         check=True, capture_output=True).stdout
    return jwks, f"{header}.{claims}.{b64url(sig)}"


def wrk_script(tmp, slug, headers):
    path = os.path.join(tmp, f"policy-{slug}.lua")
    with open(path, "w") as f:
        for k, v in headers.items():
            f.write(f'wrk.headers["{k}"] = "{v}"\n')
    return path


def variants(tmp, backend_ports, port=8080):
    jwks, token = mint_rs256(tmp)
    out = []
    for name, pol in POLICIES.items():
        text = HEAD.format(port=port, key=API_KEY, b0=backend_ports[0], b1=backend_ports[1])
        text += pol.replace("JWKS", jwks)
        slug = "-".join(w for w in name.split() if w.isalnum() or "_" in w)
        cfg = os.path.join(tmp, f"policy-{slug}.yaml")
        with open(cfg, "w") as f:
            f.write(text)
        headers = {}
        if "key_auth" in name:
            headers["X-API-Key"] = API_KEY
        if "jwt" in name:
            headers["Authorization"] = "Bearer " + token
        out.append(dict(name=name, cfg=cfg, headers=headers,
                        script=wrk_script(tmp, slug, headers) if headers else None,
                        log=os.path.join(tmp, f"policy-{slug}.log")))
    return out


def part_policies(a, tmp, h):
    """h: the harness (bench/run.py's helpers: section, interleave, medians, ...)."""
    h.section(f"8. Policies: {a.rounds} interleaved round(s) of {a.dur}s, wrk -t1 -c{a.conns}")
    vs = variants(tmp, h.BACKEND_PORTS)
    ok = []
    for v in vs:
        chk = subprocess.run([h.BIN, "check", "-c", v["cfg"]], capture_output=True, text=True)
        if chk.returncode != 0:
            print(f"  {v['name']}: configuration refused:\n{chk.stderr.strip()}")
            continue
        p = h.spawn([h.BIN, "-c", v["cfg"]], v["log"])
        try:
            if not h.M.wait_port(8080):
                print(f"  {v['name']}: Junction did not start: {h.log_lines(v['log'])}")
                continue
            lines = "".join(f"{k}: {val}\r\n" for k, val in v["headers"].items())
            status, _ = h.get_once(8080, "/", lines)
            bare, _ = h.get_once(8080, "/")
        finally:
            h.stop(p)
        print(f"  {v['name']}: GET / with credentials -> {status}, without -> {bare}")
        if status == 200 and (not v["headers"] or bare == 401):
            ok.append(v)

    def measure(c):
        v = c[1]
        opts = types.SimpleNamespace(conns=a.conns, dur=a.dur, path="/", script=v["script"])
        return h.benchlib.run_one(h.shell_cmd([h.BIN, "-c", v["cfg"]], v["log"]), 8080, opts)

    by_round = h.interleave(
        [(v["name"], v) for v in ok], a.rounds, measure,
        lambda n, r: f"{n:32s} {r['rps']:9.0f} req/s  cpu {r['cpu_us']:6.1f} us/req  "
                     f"errors {r['errs']}")
    med = h.medians(by_round)
    rows = [[n, f"{m['rps']:.0f}", f"{m['p99']:.2f}", f"{m['cpu_us']:.1f}", f"{m['rss_mb']:.1f}",
             f"{h.sum_errors(by_round, n)}"] for n, m in med.items()]
    print()
    print(h.fmt_table(["route", "req/s", "p99 ms", "cpu us/req", "RSS MiB", "errors (sum)"],
                      rows))
    ratios = {}
    base = "no policies"
    for name in POLICIES:
        if name == base or name not in med or base not in med:
            continue
        ratios[name] = dict(
            rps=med[name]["rps"] / med[base]["rps"],
            cpu=med[name]["cpu_us"] / med[base]["cpu_us"],
            rps_rounds=h.per_round_ratio(by_round, name, [base], "rps", max),
            cpu_rounds=h.per_round_ratio(by_round, name, [base], "cpu_us", min))
    if ratios:
        print("  policies / no policies       ratio of medians   median of per-round ratios")
        for name, x in ratios.items():
            print(f"    {name:32s} req/s  x{x['rps']:.2f}            x{x['rps_rounds']:.2f}")
            print(f"    {name:32s} cpu    x{x['cpu']:.2f}            x{x['cpu_rounds']:.2f}")
        print("  (target: req/s at least x0.90 of the route without policies)")
    out = dict(medians=med, by_round=by_round, ratios=ratios)
    if a.callgrind:
        out["callgrind"] = policies_callgrind(a, tmp, h, ok)
    return out


def policies_callgrind(a, tmp, h, ok):
    """With --callgrind: user-space instructions per request of each variant, a figure the
    machine's noise does not move (the time figures above swing by 1.5x between rounds)."""
    secs = 3 if a.quick else a.callgrind_dur
    print(f"\n  instructions per request under callgrind (wrk -t1 -c10, {secs}s):")
    res = {}
    for v in ok:
        args = ("-s", v["script"]) if v["script"] else ()
        r = h.callgrind_one("policy-" + v["name"].replace(" ", "_"), [h.BIN, "-c", v["cfg"]],
                            8080, "/", secs, tmp, wrk_args=args)
        res[v["name"]] = r
        if "error" in r:
            print(f"    {v['name']:32s} {r['error']}")
            continue
        base = res.get("no policies", {}).get("ir_per_req")
        ratio = f"x{r['ir_per_req'] / base:.3f}" if base else ""
        print(f"    {v['name']:32s} {r['ir_per_req']:9.0f} instr/req  {ratio:8s} "
              f"({r['requests']} requests, non-2xx {r['non2xx']})")
    return res


def summarize(p):
    for name, x in p.get("ratios", {}).items():
        print(f"  policies, {name}: req/s x{x['rps']:.2f} (per round x{x['rps_rounds']:.2f}), "
              f"CPU/req x{x['cpu']:.2f} (per round x{x['cpu_rounds']:.2f}) of no policies")
    cg = p.get("callgrind", {})
    base = cg.get("no policies", {}).get("ir_per_req")
    for name, r in cg.items():
        if base and "ir_per_req" in r and name != "no policies":
            print(f"  policies, {name}: instructions/request x{r['ir_per_req'] / base:.3f} "
                  f"of no policies")
