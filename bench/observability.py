"""Part 9 of `make bench` (bench/run.py): what metrics and the access log cost.

Junction alone, one worker, in interleaved rounds of wrk, with the same proxied route four
ways: metrics off and no access log ("both off"); metrics on; a JSON access log written to a
file; and both on. W3C trace context is always on (it has no switch), so it is in every
variant alike. Reported: requests/s and CPU per request, medians, and each variant against
"both off" (target, issue 6: metrics and access log together cost at most 5% of requests/s);
with --callgrind, also user-space instructions per request of each, which machine noise does
not move.
"""
import os
import subprocess
import types

HEAD = """workers: 1
listeners:
  - {{ name: bench, address: 127.0.0.1:{port} }}
access_log: {access_log}
metrics: {{ enabled: {metrics} }}
error_log: {{ level: warn }}
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

BASE = "both off"
VARIANTS = {  # name: (metrics, access log)
    BASE: (False, False),
    "metrics on": (True, False),
    "access log on (JSON file)": (False, True),
    "metrics + access log on": (True, True),
}
BOTH = "metrics + access log on"


def variants(tmp, backend_ports, port=8080):
    out = []
    for name, (metrics, log) in VARIANTS.items():
        slug = name.split(" (")[0].replace(" + ", "-").replace(" ", "-")
        path = os.path.join(tmp, f"obs-{slug}-access.log")
        text = HEAD.format(port=port, b0=backend_ports[0], b1=backend_ports[1],
                           metrics="true" if metrics else "false",
                           access_log=f"{{ path: {path}, format: json }}" if log
                           else "{ path: none }")
        cfg = os.path.join(tmp, f"obs-{slug}.yaml")
        with open(cfg, "w") as f:
            f.write(text)
        out.append(dict(name=name, cfg=cfg, access=path if log else None,
                        log=os.path.join(tmp, f"obs-{slug}.log")))
    return out


def part_observability(a, tmp, h):
    """h: the harness (bench/run.py's helpers: section, interleave, medians, ...)."""
    h.section(f"9. Metrics and access log: {a.rounds} interleaved round(s) of {a.dur}s, "
              f"wrk -t1 -c{a.conns}")
    vs = variants(tmp, h.BACKEND_PORTS)
    ok = []
    for v in vs:
        chk = subprocess.run([h.BIN, "check", "-c", v["cfg"]], capture_output=True, text=True)
        if chk.returncode != 0:
            print(f"  {v['name']}: configuration refused:\n{chk.stderr.strip()}")
            continue
        ok.append(v)

    def measure(c):
        v = c[1]
        if v["access"] and os.path.exists(v["access"]):
            os.unlink(v["access"])  # each run writes a fresh file, as a rotated log would
        opts = types.SimpleNamespace(conns=a.conns, dur=a.dur, path="/", script=None)
        r = h.benchlib.run_one(h.shell_cmd([h.BIN, "-c", v["cfg"]], v["log"]), 8080, opts)
        if v["access"] and r is not None:
            r["log_lines"] = sum(1 for _ in open(v["access"])) if os.path.exists(v["access"]) \
                else 0
        return r

    by_round = h.interleave(
        [(v["name"], v) for v in ok], a.rounds, measure,
        lambda n, r: f"{n:28s} {r['rps']:9.0f} req/s  cpu {r['cpu_us']:6.1f} us/req  "
                     f"errors {r['errs']}" + (f"  log lines {r['log_lines']}"
                                              if "log_lines" in r else ""))
    med = h.medians(by_round)
    rows = [[n, f"{m['rps']:.0f}", f"{m['p99']:.2f}", f"{m['cpu_us']:.1f}", f"{m['rss_mb']:.1f}",
             f"{h.sum_errors(by_round, n)}"] for n, m in med.items()]
    print()
    print(h.fmt_table(["variant", "req/s", "p99 ms", "cpu us/req", "RSS MiB", "errors (sum)"],
                      rows))
    ratios = {}
    for name in VARIANTS:
        if name == BASE or name not in med or BASE not in med:
            continue
        ratios[name] = dict(
            rps=med[name]["rps"] / med[BASE]["rps"],
            cpu=med[name]["cpu_us"] / med[BASE]["cpu_us"],
            rps_rounds=h.per_round_ratio(by_round, name, [BASE], "rps", max),
            cpu_rounds=h.per_round_ratio(by_round, name, [BASE], "cpu_us", min))
    if ratios:
        print(f"  variant / {BASE}                 ratio of medians   median of per-round ratios")
        for name, x in ratios.items():
            print(f"    {name:28s} req/s  x{x['rps']:.3f}           x{x['rps_rounds']:.3f}")
            print(f"    {name:28s} cpu    x{x['cpu']:.3f}           x{x['cpu_rounds']:.3f}")
        print(f"  (target: '{BOTH}' req/s at least x0.95 of '{BASE}')")
    out = dict(medians=med, by_round=by_round, ratios=ratios)
    if a.callgrind:
        out["callgrind"] = observability_callgrind(a, tmp, h, ok)
    return out


def observability_callgrind(a, tmp, h, ok):
    secs = 3 if a.quick else a.callgrind_dur
    print(f"\n  instructions per request under callgrind (wrk -t1 -c10, {secs}s):")
    res = {}
    for v in ok:
        r = h.callgrind_one("obs-" + v["name"].split(" (")[0].replace(" ", "_"),
                            [h.BIN, "-c", v["cfg"]], 8080, "/", secs, tmp)
        res[v["name"]] = r
        if "error" in r:
            print(f"    {v['name']:28s} {r['error']}")
            continue
        base = res.get(BASE, {}).get("ir_per_req")
        ratio = f"x{r['ir_per_req'] / base:.3f}" if base else ""
        print(f"    {v['name']:28s} {r['ir_per_req']:9.0f} instr/req  {ratio:8s} "
              f"({r['requests']} requests, non-2xx {r['non2xx']})")
    return res


def summarize(p):
    for name, x in p.get("ratios", {}).items():
        print(f"  observability, {name}: req/s x{x['rps']:.3f} (per round "
              f"x{x['rps_rounds']:.3f}), CPU/req x{x['cpu']:.3f} (per round "
              f"x{x['cpu_rounds']:.3f}) of {BASE}")
    cg = p.get("callgrind", {})
    base = cg.get(BASE, {}).get("ir_per_req")
    for name, r in cg.items():
        if base and "ir_per_req" in r and name != BASE:
            print(f"  observability, {name}: instructions/request x{r['ir_per_req'] / base:.3f} "
                  f"of {BASE}")
