#!/usr/bin/python3
"""`make bench`: Junction against nginx and HAProxy on this machine, and what Junction's
routing and load balancing cost.

1. Throughput: the three proxies configured alike (one worker, keep-alive round robin to the
   same two nginx backends), driven by wrk in interleaved rounds; medians of requests/s,
   latency, the proxy's own CPU time per request and its RSS.
2. Routing cost: Junction with 5 routes against 5,000 (path prefixes, then exact hosts).
3. Idle keep-alive memory: RSS growth of each proxy per idle keep-alive client connection.
4. Only with --callgrind: user-space instructions per request under callgrind, a count that
   machine noise does not move (the three proxies, and Junction with 5 and 5,000 routes).
5. Load-balancing algorithms: Junction with each `balance:` algorithm over 2 and 50 servers,
   each against round robin over the same pool (with --callgrind also instructions per
   request with 50 servers).
6. TCP mode, 1 GiB each way through Junction's tcp listener, HAProxy's
   mode tcp and nginx's stream module (bench/tcp_peer.py at both ends).
7. Protocols: the proxies of part 1 behind TLS 1.3 (ECDSA P-256):
   HTTPS requests/s over kept-alive connections (wrk), new full TLS handshakes per second
   (wrk, Connection: close, resumption off through bench/wrk_no_resume.c), and HTTP/2
   requests/s over TLS with h2load (10 connections x 10 streams).
8. Policies (bench/policies.py): the same route with no policies, with key_auth +
   rate_limit, and with jwt (RS256) + rate_limit; requests/s and CPU per request.
9. Metrics and access log (bench/observability.py): the same route with both off, each on
   alone, and both on (JSON access log to a file); requests/s and CPU per request.

The measuring method (wrk warm-up then a measured run, CPU and RSS read from /proc) is the
reference harness's, ../shared/bench/compare.py, imported from there when it exists, else
bench/benchlib.py (part 5 always uses bench/benchlib.py, which can give wrk a Lua script).
Python 3 standard library only; all traffic stays on 127.0.0.1, and every
process started here is stopped before the script ends. See bench/README.md.
"""
import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import re
import resource
import selectors
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(ROOT, "..", "shared", "bench")
JUNCTION = os.path.join(ROOT, "build", "junction")
# main() copies the binary into the temporary directory and points BIN at the copy, so that
# a rebuild by someone else during the (minutes long) run cannot swap it under the bench.
BIN = JUNCTION
JUNCTION_YAML = os.path.join(HERE, "junction-bench.yaml")
BACKEND_PORTS = (9001, 9002)


def load_method():
    """The reference harness's module when ../shared/bench is there, else our own copy."""
    if os.path.isfile(os.path.join(SHARED, "compare.py")):
        sys.path.insert(0, os.path.abspath(SHARED))
        import compare as method
        return method, os.path.abspath(os.path.join(SHARED, "compare.py"))
    sys.path.insert(0, HERE)
    import benchlib as method
    return method, os.path.join(HERE, "benchlib.py")


M, METHOD_SOURCE = load_method()
sys.path.insert(0, HERE)
import benchlib  # noqa: E402  part 5's method: M's, plus a wrk script (see its docstring)
import observability  # noqa: E402  part 9
import policies  # noqa: E402  part 8


def peer_file(name):
    """A peer configuration: the shared one when present, else bench/'s own."""
    shared = os.path.abspath(os.path.join(SHARED, name))
    return shared if os.path.isfile(shared) else os.path.join(HERE, name)


def config_port(path, pattern):
    with open(path) as f:
        m = re.search(pattern, f.read())
    if not m:
        sys.exit(f"bench: cannot find the listening port in {path}")
    return int(m.group(1))


# ---------------------------------------------------------------------------------------
# Processes: every child is registered so that the finally block of main() can stop it.

CHILDREN = []


def raise_nofile():
    """preexec_fn: soft RLIMIT_NOFILE up to the hard limit (10k idle clients need it)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def spawn(argv, log_path):
    with open(log_path, "ab") as log:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=log, start_new_session=True, preexec_fn=raise_nofile)
    CHILDREN.append(p)
    return p


def stop(p, grace=15):
    """SIGTERM to the child's process group, SIGKILL after grace seconds. Returns the exit
    status the child had before we signalled it (None when it was still running)."""
    early = p.poll()
    if early is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(timeout=grace)
        except ProcessLookupError:
            p.wait()
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    if p in CHILDREN:
        CHILDREN.remove(p)
    return early


def stop_all():
    for p in list(CHILDREN):
        stop(p, grace=5)


def port_free(port):
    """True when nothing is bound to 127.0.0.1:port (Junction binds with SO_REUSEPORT, so a
    stale instance would otherwise silently share the port with the one we start)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are fine
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def log_lines(path):
    try:
        with open(path, errors="replace") as f:
            return [line.rstrip("\n") for line in f if line.strip()]
    except OSError:
        return []


# ---------------------------------------------------------------------------------------
# Small HTTP/1.1 client for the idle-connection test and the sanity check.

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: junction-bench\r\n\r\n"


def parse_response(buf):
    """(status, keep_alive) once buf holds a whole response, else None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    fields = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip().lower()
    body = buf[end + 4:]
    if "chunked" in fields.get("transfer-encoding", ""):
        if not body.endswith(b"0\r\n\r\n"):
            return None
    elif len(body) < int(fields.get("content-length", "0")):
        return None
    return status, "close" not in fields.get("connection", "")


WINDOW = 256  # requests in flight at once while the idle connections are opened


def open_idle_connections(port, count, window=WINDOW, timeout=120):
    """Opens count connections to 127.0.0.1:port, each sending one request and reading its
    whole response, at most window at a time. Returns (idle sockets, statistics)."""
    sel = selectors.DefaultSelector()
    idle, pending = [], {}
    stats = dict(started=0, failed=0, closed_by_server=0, statuses={})
    deadline = time.monotonic() + timeout
    while (stats["started"] < count or pending) and time.monotonic() < deadline:
        while stats["started"] < count and len(pending) < window:
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            pending[s] = {"sock": s, "sent": False, "buf": b""}
            sel.register(s, selectors.EVENT_WRITE, pending[s])
            stats["started"] += 1
        for key, _ in sel.select(timeout=0.5):
            st, s = key.data, key.data["sock"]
            try:
                if not st["sent"]:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise OSError(err, os.strerror(err))
                    s.sendall(REQUEST)  # a few dozen bytes: fits any fresh socket buffer
                    st["sent"] = True
                    sel.modify(s, selectors.EVENT_READ, st)
                    continue
                chunk = s.recv(65536)
                if not chunk:
                    raise OSError("closed before a whole response")
                st["buf"] += chunk
                done = parse_response(st["buf"])
                if done is None:
                    continue
            except (OSError, ValueError, IndexError):
                stats["failed"] += 1
                sel.unregister(s)
                del pending[s]
                s.close()
                continue
            sel.unregister(s)
            del pending[s]
            status, keep_alive = done
            stats["statuses"][status] = stats["statuses"].get(status, 0) + 1
            if keep_alive:
                idle.append(s)
            else:
                stats["closed_by_server"] += 1
                s.close()
    for s in pending:
        stats["failed"] += 1
        sel.unregister(s)
        s.close()
    sel.close()
    return idle, stats


def count_still_open(socks):
    """How many of socks the server has not closed (an idle socket that is readable has
    either been closed by the server or was sent something unexpected)."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    gone = 0
    for key, _ in sel.select(timeout=0):
        try:
            if key.fileobj.recv(1, socket.MSG_PEEK) == b"":
                gone += 1
        except OSError:
            gone += 1
    sel.close()
    return len(socks) - gone


def get_once(port, path="/", headers=""):
    """Status and body of one GET on a fresh connection (used as a sanity check); headers:
    extra header lines, each ending in CRLF."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
                  "Connection: close\r\n\r\n".encode())
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


# ---------------------------------------------------------------------------------------
# Reporting helpers

def median_of(results):
    """Per-key medians, leaving out NaN: compare.py's latency parsing gives NaN when wrk's
    "+/- Stdev" column happens to end in "50%" or "99%" (its pattern matches there first),
    and a NaN would make the median meaningless."""
    out = {}
    for k in results[0]:
        values = [r[k] for r in results if not math.isnan(r[k])]
        out[k] = statistics.median(values) if values else float("nan")
    return out


def fmt_table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def section(title):
    print(f"\n== {title}", flush=True)


def shell_cmd(argv, log_path):
    """A shell command line for the reference method's run_one (which runs it with sh):
    exec keeps the proxy as the measured process; stderr is kept for the report."""
    return "exec " + " ".join(map(shlex.quote, argv)) + f" 2>>{shlex.quote(log_path)}"


# ---------------------------------------------------------------------------------------
# Rounds: every contender once per round, the order rotated from round to round, so that a
# slow patch of a shared machine falls on all of them rather than on one.

def interleave(contenders, rounds, measure, describe):
    """contenders: list of (name, ...) tuples; measure(contender) -> dict or None.
    Returns by_round: one dict name -> result per round."""
    by_round = []
    for r in range(rounds):
        k = r % len(contenders)
        got = {}
        for c in contenders[k:] + contenders[:k]:
            res = measure(c)
            if res is None:
                print(f"  round {r + 1}: {c[0]}: no result (did not listen, or wrk failed)")
                continue
            got[c[0]] = res
            print(f"  round {r + 1}: {describe(c[0], res)}", flush=True)
        by_round.append(got)
    return by_round


def medians(by_round):
    names = []
    for got in by_round:
        names += [n for n in got if n not in names]
    return {n: median_of([got[n] for got in by_round if n in got]) for n in names}


def per_round_ratio(by_round, num, dens, key, pick):
    """Median over rounds of got[num][key] / pick(got[d][key] for d in dens): a ratio taken
    within each round, so slow and fast patches of a noisy machine cancel out."""
    ratios = [got[num][key] / pick(got[d][key] for d in dens if d in got)
              for got in by_round if num in got and any(d in got for d in dens)]
    return statistics.median(ratios) if ratios else None


def sum_errors(by_round, name):
    return sum(got[name]["errs"] for got in by_round if name in got)


# ---------------------------------------------------------------------------------------
# Part 1: throughput

def part_throughput(a, tmp, peers):
    section(f"1. Throughput: {a.rounds} interleaved round(s) of {a.dur}s, wrk -t1 "
            f"-c{a.conns}, path /")
    jlog = os.path.join(tmp, "junction-throughput.log")
    entries = [("junction", 8080, shell_cmd([BIN, "-c", JUNCTION_YAML], jlog))]
    for name, (port, argv) in peers.items():
        entries.append((name, port, shell_cmd(argv, os.path.join(tmp, f"{name}.log"))))
    # wrk straight to one nginx backend, no proxy in between (the command only holds the
    # place of a proxy for run_one): the ceiling for any proxy on this machine.
    entries.append(("direct", BACKEND_PORTS[0], "exec sleep 3600"))
    opts = types.SimpleNamespace(conns=a.conns, dur=a.dur, path="/")
    by_round = interleave(
        entries, a.rounds, lambda e: M.run_one(e[2], e[1], opts),
        lambda n, r: f"{n:9s} {r['rps']:9.0f} req/s  p99 {r['p99']:6.2f} ms  "
                     f"cpu {r['cpu_us']:6.1f} us/req  errors {r['errs']}")
    med = medians(by_round)
    rows = []
    for name, m in med.items():
        proxy = name != "direct"
        rows.append([name, f"{m['rps']:.0f}", f"{m['p50']:.2f}", f"{m['p99']:.2f}",
                     f"{m['cpu_us']:.1f}" if proxy else "-", f"{m['rss_mb']:.1f}" if proxy else "-",
                     f"{sum_errors(by_round, name)}",
                     f"{sum(name in got for got in by_round)}"])
    print()
    print(fmt_table(["proxy", "req/s", "p50 ms", "p99 ms", "cpu us/req", "RSS MiB",
                     "errors (sum)", "runs"], rows))
    print("  (medians over rounds; 'direct' is wrk straight to backend :9001, the ceiling)")
    out = dict(medians=med, by_round=by_round)
    names = [n for n in peers if n in med]
    if "junction" in med and names:
        j = med["junction"]
        out["rps_ratio"] = j["rps"] / max(med[n]["rps"] for n in names)
        out["cpu_ratio"] = j["cpu_us"] / min(med[n]["cpu_us"] for n in names)
        out["p99_ratio"] = j["p99"] / min(med[n]["p99"] for n in names)
        out["rps_ratio_rounds"] = per_round_ratio(by_round, "junction", names, "rps", max)
        out["cpu_ratio_rounds"] = per_round_ratio(by_round, "junction", names, "cpu_us", min)
        print("  Junction / best peer        ratio of medians   median of per-round ratios")
        print(f"    req/s (higher is better)   x{out['rps_ratio']:.2f}"
              f"              x{out['rps_ratio_rounds']:.2f}")
        print(f"    cpu/req (lower is better)  x{out['cpu_ratio']:.2f}"
              f"              x{out['cpu_ratio_rounds']:.2f}")
        print(f"    p99 (lower is better)      x{out['p99_ratio']:.2f}")
    out["junction_log"] = log_lines(jlog)
    return out


# ---------------------------------------------------------------------------------------
# Part 2: routing cost

ROUTE_HEAD = """workers: 1
listeners:
  - {{ name: bench, address: 127.0.0.1:{port} }}
access_log: {{ path: none }}
error_log: {{ level: warn }}
upstreams:
  backends:
    keepalive: 128
    servers:
      - {{ address: 127.0.0.1:{b0} }}
      - {{ address: 127.0.0.1:{b1} }}
routes:
"""


def routes_config(kind, n, port=8080):
    """A Junction configuration with n routes of one kind, and the request path that hits
    the route in the middle of the file. 'prefix': /svc0000 ... each a path_prefix; 'host':
    exact hosts svc0000.bench.test ..., where the middle one is 127.0.0.1 (the Host that
    wrk sends), so that wrk needs no extra header."""
    mid = n // 2
    lines = [ROUTE_HEAD.format(port=port, b0=BACKEND_PORTS[0], b1=BACKEND_PORTS[1])]
    for i in range(n):
        if kind == "prefix":
            match = f"path_prefix: /svc{i:04d}"
        else:
            match = "host: 127.0.0.1" if i == mid else f"host: svc{i:04d}.bench.test"
        lines.append(f"  - {{ name: r{i}, match: {{ {match} }}, upstream: backends }}\n")
    path = f"/svc{mid:04d}/item" if kind == "prefix" else "/item"
    return "".join(lines), path


def routing_variants(tmp):
    """Writes the four routing configurations; checks each one loads and routes."""
    variants = []
    for kind in ("prefix", "host"):
        for n in (5, 5000):
            name = f"{n} {kind} routes"
            text, path = routes_config(kind, n)
            cfg = os.path.join(tmp, f"routes-{kind}-{n}.yaml")
            log = os.path.join(tmp, f"routes-{kind}-{n}.log")
            with open(cfg, "w") as f:
                f.write(text)
            t0 = time.monotonic()
            chk = subprocess.run([BIN, "check", "-c", cfg], capture_output=True, text=True)
            check_s = time.monotonic() - t0
            if chk.returncode != 0:
                print(f"  {name}: configuration refused:\n{chk.stderr.strip()}")
                continue
            status, _ = check_route(cfg, path, log)
            variants.append(dict(name=name, kind=kind, n=n, cfg=cfg, path=path, log=log,
                                 check_s=check_s, sanity_status=status))
            print(f"  {name}: GET {path} -> {status}; `junction check` {check_s * 1e3:.0f} ms")
    return variants


def part_routing(a, tmp):
    section(f"2. Routing cost: {a.rounds} interleaved round(s) of {a.dur}s, "
            f"wrk -t1 -c{a.conns}")
    variants = routing_variants(tmp)

    def measure(c):
        v = c[1]
        opts = types.SimpleNamespace(conns=a.conns, dur=a.dur, path=v["path"])
        return M.run_one(shell_cmd([BIN, "-c", v["cfg"]], v["log"]), 8080, opts)
    by_round = interleave(
        [(v["name"], v) for v in variants], a.rounds, measure,
        lambda n, r: f"{n:18s} {r['rps']:9.0f} req/s  cpu {r['cpu_us']:6.1f} us/req  "
                     f"errors {r['errs']}")
    med = medians(by_round)
    rows = [[n, f"{m['rps']:.0f}", f"{m['p99']:.2f}", f"{m['cpu_us']:.1f}", f"{m['rss_mb']:.1f}",
             f"{sum_errors(by_round, n)}"] for n, m in med.items()]
    print()
    print(fmt_table(["configuration", "req/s", "p99 ms", "cpu us/req", "RSS MiB",
                     "errors (sum)"], rows))
    ratios = {}
    for kind in ("prefix", "host"):
        small, big = f"5 {kind} routes", f"5000 {kind} routes"
        if small in med and big in med:
            ratios[kind] = dict(
                rps=med[big]["rps"] / med[small]["rps"],
                cpu=med[big]["cpu_us"] / med[small]["cpu_us"],
                rps_rounds=per_round_ratio(by_round, big, [small], "rps", max),
                cpu_rounds=per_round_ratio(by_round, big, [small], "cpu_us", min))
    if ratios:
        print("  5,000 routes / 5 routes      ratio of medians   median of per-round ratios")
        for kind, x in ratios.items():
            print(f"    {kind:6s} req/s                x{x['rps']:.2f}"
                  f"              x{x['rps_rounds']:.2f}")
            print(f"    {kind:6s} cpu/req              x{x['cpu']:.2f}"
                  f"              x{x['cpu_rounds']:.2f}")
        print("  (1.00 = routing cost independent of the number of routes)")
    return dict(medians=med, by_round=by_round, ratios=ratios,
                logs={v["name"]: log_lines(v["log"]) for v in variants},
                variants=[{k: v[k] for k in ("name", "path", "check_s", "sanity_status")}
                          for v in variants])


def check_route(cfg, path, log):
    """Starts Junction on cfg and sends one request to path: the route must really be hit."""
    p = spawn([BIN, "-c", cfg], log)
    try:
        if not M.wait_port(8080):
            return None, b""
        return get_once(8080, path)
    except OSError as e:
        return f"error: {e}", b""
    finally:
        stop(p)


# ---------------------------------------------------------------------------------------
# Part 3: idle keep-alive memory

def idle_variants(tmp, peers_conf, count):
    """Commands for the idle test: Junction with the bench configuration; nginx and HAProxy
    with their bench configuration, given room for count connections."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    need = count + 2048
    nginx_conf, haproxy_cfg = peers_conf["nginx"], peers_conf["haproxy"]
    with open(nginx_conf) as f:
        text = f.read()
    text, k = re.subn(r"worker_connections\s+\d+\s*;", f"worker_connections {need};", text)
    if not k:
        raise RuntimeError(f"{nginx_conf}: no worker_connections to raise")
    text = re.sub(r"(?m)^\s*pid\s+[^;]*;", "", text)
    text = (f"pid {tmp}/idle-nginx.pid;\nworker_rlimit_nofile {max(limit, need + 64)};\n"
            + text)
    nginx_idle = os.path.join(tmp, "idle-nginx.conf")
    with open(nginx_idle, "w") as f:
        f.write(text)
    # HAProxy reserves two descriptors per connection (client and server side) and refuses
    # to start when maxconn does not fit in its descriptor limit, which cannot exceed our
    # hard limit: where count does not fit, it gets as many connections as fit.
    ha_maxconn = min(need, (limit - 200) // 2)
    ha_count = min(count, ha_maxconn - 64)
    with open(haproxy_cfg) as f:
        text = f.read()
    text = re.sub(r"(?m)^[ \t]*(maxconn|ulimit-n)\s+\d+[ \t]*\n", "", text)
    text = re.sub(r"(?m)^global[ \t]*$",
                  f"global\n  ulimit-n {limit}\n  maxconn {ha_maxconn}", text, count=1)
    # The frontends' own limit (maxconn in defaults) must be raised too.
    text = re.sub(r"(?m)^defaults\b.*$", lambda m: f"{m.group(0)}\n  maxconn {ha_maxconn}",
                  text, count=1)
    haproxy_idle = os.path.join(tmp, "idle-haproxy.cfg")
    with open(haproxy_idle, "w") as f:
        f.write(text)
    return [("junction", 8080, [BIN, "-c", JUNCTION_YAML], count),
            ("nginx", peers_conf["nginx_port"], ["nginx", "-c", nginx_idle], count),
            ("haproxy", peers_conf["haproxy_port"], ["haproxy", "-f", haproxy_idle], ha_count)]


def idle_one(name, port, argv, count, tmp):
    log = os.path.join(tmp, f"idle-{name}.log")
    p = spawn(argv, log)
    warm = []
    conns = []
    try:
        if not M.wait_port(port):
            return dict(error="did not listen", log=log_lines(log))
        # Warm up with the same concurrency as the measurement (WINDOW requests in flight),
        # then close: RSS before then already holds what a proxy allocates for a burst of
        # requests (upstream connections, buffer pools, malloc arenas), and the difference
        # is what the idle connections themselves cost.
        warm, _ = open_idle_connections(port, 2 * WINDOW)
        for s in warm:
            s.close()
        time.sleep(1.0)
        rss0 = M.tree_rss_kb(p.pid)
        # Two halves, RSS after each: the second half's growth is the marginal cost of an
        # idle connection, free of one-off costs (tables that grow once, arena set-up).
        t0 = time.monotonic()
        half = count // 2
        conns, stats = open_idle_connections(port, half)
        time.sleep(1.0)
        rss_half = M.tree_rss_kb(p.pid)
        more, stats2 = open_idle_connections(port, count - half)
        conns += more
        open_s = time.monotonic() - t0 - 1.0
        for k in ("started", "failed", "closed_by_server"):
            stats[k] += stats2[k]
        for k, v in stats2["statuses"].items():
            stats["statuses"][k] = stats["statuses"].get(k, 0) + v
        time.sleep(1.0)
        rss1 = M.tree_rss_kb(p.pid)
        still_open = count_still_open(conns)
        alive = p.poll() is None
        res = dict(rss_before_kb=rss0, rss_half_kb=rss_half, rss_after_kb=rss1,
                   idle=len(conns), wanted=count, still_open=still_open, open_s=open_s,
                   alive=alive, **stats,
                   kib_per_conn=(rss1 - rss0) / len(conns) if conns else float("nan"),
                   marginal_kib_per_conn=(rss1 - rss_half) / len(more) if more
                   else float("nan"))
    finally:
        for s in conns:
            s.close()
        early = stop(p)
    res["exit_before_stop"] = early
    res["log"] = log_lines(log)
    return res


def part_idle(a, tmp, peers_conf):
    count = a.idle
    section(f"3. Idle keep-alive memory: {count} idle keep-alive client connections per proxy")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < count + 256:
        print(f"  RLIMIT_NOFILE hard limit {hard} is too low for {count} connections; skipped")
        return dict(skipped=f"RLIMIT_NOFILE hard limit {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    out = {}
    for name, port, argv, n in idle_variants(tmp, peers_conf, count):
        r = idle_one(name, port, argv, n, tmp)
        out[name] = r
        if "error" in r:
            print(f"  {name}: {r['error']}: " + " | ".join(r["log"][-3:]))
            continue
        print(f"  {name}: {r['idle']} idle of {n} in {r['open_s']:.1f}s; statuses "
              f"{r['statuses']}, failed {r['failed']}, closed by server {r['closed_by_server']};"
              f" still open after 1s: {r['still_open']}", flush=True)
    rows = [[n, f"{r['rss_before_kb'] / 1024:.1f}", f"{r['rss_half_kb'] / 1024:.1f}",
             f"{r['rss_after_kb'] / 1024:.1f}", f"{r['idle']}", f"{r['kib_per_conn']:.2f}",
             f"{r['marginal_kib_per_conn']:.2f}"]
            for n, r in out.items() if "error" not in r]
    print()
    print(fmt_table(["proxy", "RSS before MiB", "half open", "all open", "idle conns",
                     "KiB/conn (all)", "KiB/conn (2nd half)"], rows))
    print("  KiB/conn (all) = (all open - before) / conns; (2nd half) = growth while the second"
          "\n  half was opened, per connection. User-space memory only: RSS does not count the"
          "\n  kernel's socket buffers, nor what a proxy allocated for all its connection slots"
          "\n  at start-up (nginx does, for worker_connections).")
    return out


# ---------------------------------------------------------------------------------------
# Part 4 (optional, --callgrind): user-space instructions per request, counted by callgrind.
# Unlike time, an instruction count does not depend on what else the machine is doing, so it
# confirms or refutes small differences that the noisy parts 1 and 2 cannot resolve. It
# counts user space only: system calls and the kernel's TCP work are not in it.

def callgrind_one(name, argv, port, path, secs, tmp, wrk_args=(), warm_s=0):
    """Instructions per request of argv under callgrind, counted during a wrk run of secs
    seconds (wrk_args: extra wrk options). warm_s seconds of wrk before counting open the
    upstream connections first (part 5: one per server of a 50-server pool)."""
    out = os.path.join(tmp, f"callgrind-{name}.out")
    log = os.path.join(tmp, f"callgrind-{name}.log")
    p = spawn(["valgrind", "--tool=callgrind", "--instr-atstart=no",
               f"--callgrind-out-file={out}"] + argv, log)
    control = lambda onoff: subprocess.run(["callgrind_control", "-i", onoff, str(p.pid)],
                                           capture_output=True, timeout=60)
    try:
        if not M.wait_port(port, timeout=60):
            return dict(error="did not listen under valgrind")
        get_once(port, path)  # start-up and first-request set-up are not counted
        url = f"http://127.0.0.1:{port}{path}"
        if warm_s:
            subprocess.run(["wrk", "-t1", "-c10", f"-d{warm_s}s", *wrk_args, url],
                           capture_output=True)
        control("on")
        wrk = subprocess.run(["wrk", "-t1", "-c10", f"-d{secs}s", *wrk_args, url],
                             capture_output=True, text=True)
        control("off")
    finally:
        early = stop(p, grace=60)  # callgrind writes its file when the process exits
    m = re.search(r"(\d+) requests in", wrk.stdout)
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk.stdout)
    total = None
    try:
        with open(out) as f:
            for line in f:
                if line.startswith("totals:"):
                    total = int(line.split()[1])
    except OSError:
        pass
    if not m or total is None:
        return dict(error=f"no figures (exit status {early})")
    return dict(requests=int(m.group(1)), ir_per_req=total / max(int(m.group(1)), 1),
                non2xx=int(errs.group(1)) if errs else 0)


def part_callgrind(a, tmp, peers_conf):
    secs = 3 if a.quick else a.callgrind_dur
    section(f"4. User-space instructions per request (callgrind, wrk -t1 -c10 for {secs}s)")
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        print("  valgrind is not installed; skipped")
        return dict(skipped="no valgrind")
    with open(peers_conf["nginx"]) as f:
        text = re.sub(r"(?m)^\s*pid\s+[^;]*;", "", f.read())
    # One process that does the work: the worker itself, no master.
    nginx_single = os.path.join(tmp, "callgrind-nginx.conf")
    with open(nginx_single, "w") as f:
        f.write(f"master_process off;\npid {tmp}/callgrind-nginx.pid;\n" + text)
    runs = [("junction", [BIN, "-c", JUNCTION_YAML], 8080, "/"),
            ("nginx", ["nginx", "-c", nginx_single], peers_conf["nginx_port"], "/"),
            ("haproxy", ["haproxy", "-f", peers_conf["haproxy"]], peers_conf["haproxy_port"],
             "/")]
    for kind in ("prefix", "host"):
        for n in (5, 5000):
            text, path = routes_config(kind, n)
            cfg = os.path.join(tmp, f"callgrind-routes-{kind}-{n}.yaml")
            with open(cfg, "w") as f:
                f.write(text)
            runs.append((f"junction, {n} {kind} routes", [BIN, "-c", cfg], 8080, path))
    out = {}
    for name, argv, port, path in runs:
        r = callgrind_one(name.replace(", ", "-").replace(" ", "-"), argv, port, path, secs, tmp)
        out[name] = r
        if "error" in r:
            print(f"  {name}: {r['error']}")
        else:
            print(f"  {name:28s} {r['ir_per_req']:9.0f} instructions/request "
                  f"({r['requests']} requests, non-2xx {r['non2xx']})", flush=True)
    ok = {n: r for n, r in out.items() if "error" not in r}
    peers = [ok[n]["ir_per_req"] for n in ("nginx", "haproxy") if n in ok]
    if "junction" in ok and peers:
        out["junction_vs_best_peer"] = ok["junction"]["ir_per_req"] / min(peers)
        print(f"  Junction / fewest of the peers: x{out['junction_vs_best_peer']:.2f}")
    for kind in ("prefix", "host"):
        small, big = ok.get(f"junction, 5 {kind} routes"), ok.get(f"junction, 5000 {kind} routes")
        if small and big:
            out[f"routes_{kind}_ratio"] = big["ir_per_req"] / small["ir_per_req"]
            print(f"  5,000 / 5 {kind} routes: x{out[f'routes_{kind}_ratio']:.3f}")
    return out


# ---------------------------------------------------------------------------------------
# Part 5: load-balancing algorithms. Junction with each `balance:` algorithm over a pool of 2
# and of 50 servers, the same load for all, in interleaved rounds like part 2; each compared,
# round by round, with round robin over the same pool. wrk sends the requests of ALGO_KEYS
# users in turn, each with its own path and X-User header, so that the hashing algorithms
# really spread over the pool; every algorithm, round robin included, gets this traffic.

ALGORITHMS = (  # (name in the report, balance:, hash_key: or None)
    ("round_robin", "round_robin", None),
    ("least_conn", "least_conn", None),
    ("p2c", "p2c", None),
    ("ewma", "ewma", None),
    ("random", "random", None),
    ("ip_hash", "ip_hash", None),
    ("consistent_hash header", "consistent_hash", "header:X-User"),
    ("consistent_hash path", "consistent_hash", "path"),
)
POOL_SIZES = (2, 50)
# Both pools are served by one nginx worker listening on 50 ports, so that the 2- and the
# 50-server pools have the same backend capacity behind them.
ALGO_BACKEND_PORTS = tuple(range(9101, 9151))
ALGO_KEYS = 1000
ALGO_TARGET = 0.95  # the issue: no algorithm below 95% of round robin's requests/s

ALGO_BACKEND_CONF = """# bench/run.py part 5: like backend-nginx.conf, one worker, on {n} ports.
daemon off;
worker_processes 1;
pid {tmp}/algo-backend.pid;
error_log /dev/null crit;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  server {{
{listens}    location / {{ return 200 "hello from backend $server_port\\n"; }}
  }}
}}
"""

ALGO_CONFIG = """workers: 1
listeners:
  - {{ name: bench, address: 127.0.0.1:{port} }}
access_log: {{ path: none }}
error_log: {{ level: warn }}
upstreams:
  backends:
    balance: {balance}
    keepalive: 128
{hash_key}    servers:
{servers}routes:
  - {{ name: all, match: {{ path_prefix: / }}, upstream: backends }}
"""

# Each request of the wrk script is prepared once in init(); request() hands them out in turn.
ALGO_WRK_SCRIPT = """-- bench/run.py part 5: {n} users in turn, each with its own path, X-User.
local requests, n, i = {{}}, {n}, 0
function init(args)
  for k = 0, n - 1 do
    requests[k] = wrk.format("GET", string.format("/u/%04d", k),
                             {{ ["X-User"] = string.format("u%04d", k) }})
  end
end
function request()
  i = (i + 1) % n
  return requests[i]
end
"""


def algo_request(k):
    """Path and extra header lines of user k's request, as the wrk script sends them."""
    return f"/u/{k:04d}", f"X-User: u{k:04d}\r\n"


def algo_config(balance, hash_key, nservers, port=8080):
    """A Junction configuration: one upstream of nservers servers balanced by balance."""
    key = f'    hash_key: "{hash_key}"\n' if hash_key else ""
    servers = "".join(f"      - {{ address: 127.0.0.1:{p} }}\n"
                      for p in ALGO_BACKEND_PORTS[:nservers])
    return ALGO_CONFIG.format(port=port, balance=balance, hash_key=key, servers=servers)


def algo_label(name, n):
    return f"{name}, {n}"


def check_spread(cfg, log, requests=200):
    """Starts Junction on cfg and sends the first requests of the wrk script's users, one
    connection each. Returns (statuses, how many different servers answered)."""
    p = spawn([BIN, "-c", cfg], log)
    statuses, servers = {}, set()
    try:
        if not M.wait_port(8080):
            return {"did not listen": 1}, 0
        for k in range(requests):
            status, body = get_once(8080, *algo_request(k % ALGO_KEYS))
            statuses[status] = statuses.get(status, 0) + 1
            servers.add(body.strip())
    except OSError as e:
        statuses[f"error: {e}"] = 1
    finally:
        stop(p)
    return statuses, len(servers)


def algo_variants(tmp):
    """Writes one configuration per algorithm and pool size; checks that each loads, answers
    200 and spreads requests over the pool."""
    variants = []
    for name, balance, hash_key in ALGORITHMS:
        for n in POOL_SIZES:
            label = algo_label(name, n)
            stem = f"algo-{name.replace(' ', '-')}-{n}"
            cfg, log = os.path.join(tmp, stem + ".yaml"), os.path.join(tmp, stem + ".log")
            with open(cfg, "w") as f:
                f.write(algo_config(balance, hash_key, n))
            chk = subprocess.run([BIN, "check", "-c", cfg], capture_output=True, text=True)
            if chk.returncode != 0:
                print(f"  {label}: configuration refused:\n{chk.stderr.strip()}")
                continue
            statuses, reached = check_spread(cfg, log)
            variants.append(dict(name=label, algorithm=name, balance=balance,
                                 hash_key=hash_key, servers=n, cfg=cfg, log=log,
                                 sanity_statuses=statuses, servers_reached=reached))
            print(f"  {label:26s} 200 users' requests -> statuses {statuses}, "
                  f"{reached} of {n} servers answered", flush=True)
    return variants


def algo_callgrind(a, tmp, variants, script):
    """Instructions per request (part 4's method, after a 2 s wrk warm-up that opens the
    upstream connections) of each algorithm with 50 servers, and of round robin with 2,
    under the wrk script's traffic."""
    secs = 3 if a.quick else a.callgrind_dur
    print(f"\n  Instructions per request (callgrind, wrk -t1 -c10 for {secs}s after 2s of warm-up,"
          " same requests):")
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        print("  valgrind is not installed; skipped")
        return {}
    out = {}
    for v in variants:
        if v["servers"] != max(POOL_SIZES) and v["name"] != algo_label("round_robin", 2):
            continue
        r = callgrind_one(os.path.basename(v["cfg"])[:-5], [BIN, "-c", v["cfg"]], 8080, "/",
                          secs, tmp, wrk_args=("-s", script), warm_s=2)
        out[v["name"]] = r
        if "error" in r:
            print(f"  {v['name']}: {r['error']}")
        else:
            print(f"  {v['name']:28s} {r['ir_per_req']:9.0f} instructions/request "
                  f"({r['requests']} requests, non-2xx {r['non2xx']})", flush=True)
    return out


def part_algorithms(a, tmp):
    section(f"5. Load-balancing algorithms: {a.rounds} interleaved round(s) of {a.dur}s, "
            f"wrk -t1 -c{a.conns}, {ALGO_KEYS} users in turn (path /u/NNNN, X-User: uNNNN)")
    print(f"  method   {os.path.normpath(benchlib.__file__)} (its run_one, with wrk -s)")
    script = os.path.join(tmp, "algo-users.lua")
    with open(script, "w") as f:
        f.write(ALGO_WRK_SCRIPT.format(n=ALGO_KEYS))
    backend_conf = os.path.join(tmp, "algo-backend.conf")
    listens = "".join(f"    listen 127.0.0.1:{p} reuseport backlog=4096;\n"
                      for p in ALGO_BACKEND_PORTS)
    with open(backend_conf, "w") as f:
        f.write(ALGO_BACKEND_CONF.format(n=len(ALGO_BACKEND_PORTS), tmp=tmp, listens=listens))
    backend_log = os.path.join(tmp, "algo-backend.log")
    backend = spawn(["nginx", "-c", backend_conf], backend_log)
    try:
        if not all(M.wait_port(p) for p in ALGO_BACKEND_PORTS):
            print("  the nginx backend on ports 9101-9150 did not start: "
                  + " | ".join(log_lines(backend_log)))
            return dict(skipped="backend did not start")
        print(f"  backend: one nginx worker on 127.0.0.1:{ALGO_BACKEND_PORTS[0]}-"
              f"{ALGO_BACKEND_PORTS[-1]}; the 2-server pools use its first two ports")
        variants = algo_variants(tmp)

        def measure(c):
            opts = types.SimpleNamespace(conns=a.conns, dur=a.dur, path="/", script=script)
            return benchlib.run_one(shell_cmd([BIN, "-c", c[1]["cfg"]], c[1]["log"]), 8080,
                                    opts)
        by_round = interleave(
            [(v["name"], v) for v in variants], a.rounds, measure,
            lambda n, r: f"{n:26s} {r['rps']:9.0f} req/s  cpu {r['cpu_us']:6.1f} us/req  "
                         f"errors {r['errs']}")
        counts = algo_callgrind(a, tmp, variants, script) if a.callgrind else {}
        if backend.poll() is not None:
            print(f"  note: the part 5 backend exited early (status {backend.returncode})")
    finally:
        stop(backend)
    return algo_report(a, variants, by_round, counts)


def algo_report(a, variants, by_round, counts):
    """The table of part 5, and the figures for the summary and --json."""
    med = medians(by_round) if any(by_round) else {}
    rows, table = [], {}
    for v in variants:
        name, n = v["name"], v["servers"]
        base = algo_label("round_robin", n)
        m = med.get(name)
        x = dict(algorithm=v["algorithm"], servers=n, servers_reached=v["servers_reached"])
        if m is not None:
            ratios = [got[name]["rps"] / got[base]["rps"] for got in by_round
                      if name in got and base in got]
            x.update(rps=m["rps"], p99=m["p99"], cpu_us=m["cpu_us"],
                     errors=sum_errors(by_round, name),
                     rps_ratio_rounds=statistics.median(ratios) if ratios else None,
                     rps_ratios=ratios,
                     cpu_ratio_rounds=per_round_ratio(by_round, name, [base], "cpu_us", min))
        c = counts.get(name, {})
        if "ir_per_req" in c:
            x["ir_per_req"] = c["ir_per_req"]
            rr = counts.get(algo_label("round_robin", n), {})
            if "ir_per_req" in rr:
                x["ir_ratio"] = c["ir_per_req"] / rr["ir_per_req"]
        table[name] = x
        is_base = name == base
        r = x.get("rps_ratio_rounds")
        rows.append([
            v["algorithm"], f"{n}",
            f"{x['rps']:.0f}" if m else "-", f"{x['cpu_us']:.1f}" if m else "-",
            "-" if is_base or r is None else f"x{r:.3f}",
            "-" if is_base or not x.get("rps_ratios") else
            f"{min(x['rps_ratios']):.2f}-{max(x['rps_ratios']):.2f}",
            "-" if is_base or x.get("cpu_ratio_rounds") is None else
            f"x{x['cpu_ratio_rounds']:.3f}",
            "-" if is_base or r is None else ("yes" if r >= ALGO_TARGET else "NO"),
            f"{x['ir_per_req']:.0f}" if "ir_per_req" in x else "",
            f"x{x['ir_ratio']:.3f}" if "ir_ratio" in x and not is_base else ""])
    print()
    print(fmt_table(["algorithm", "servers", "req/s", "cpu us/req", "req/s vs RR",
                     "(rounds)", "cpu vs RR", f">= {ALGO_TARGET:.2f}", "instr/req",
                     "instr vs RR"], rows))
    print(f"  req/s and cpu us/req: medians over rounds; 'vs RR': median over rounds of the\n"
          f"  ratio to round robin over the same pool in the same round, '(rounds)' their\n"
          f"  range; '>= {ALGO_TARGET:.2f}': the issue's target, no algorithm below "
          f"{ALGO_TARGET:.0%} of round\n  robin's req/s. On a shared machine a few % is "
          f"within the noise: see the range, and\n  the instruction counts (--callgrind) for "
          f"a noise-free comparison. Every connection\n  comes from 127.0.0.1, so ip_hash "
          f"sends every request to one server.")
    below = [n for n, x in table.items()
             if x.get("rps_ratio_rounds") is not None and x["rps_ratio_rounds"] < ALGO_TARGET]
    return dict(table=table, medians=med, by_round=by_round, callgrind=counts,
                below_target=below, target=ALGO_TARGET,
                logs={v["name"]: log_lines(v["log"]) for v in variants},
                variants=[{k: v[k] for k in ("name", "balance", "hash_key", "servers",
                                             "sanity_statuses", "servers_reached")}
                          for v in variants])


# ---------------------------------------------------------------------------------------
# Part 6: TCP mode. One transfer of --tcp-bytes (1 GiB) each way through Junction's tcp
# listener, HAProxy's `mode tcp` (by default, and with splice(2) switched on)
# and nginx's `stream` module, to the source/sink server of bench/tcp_peer.py; "direct" is
# the client straight to that server, the ceiling. Each proxy has one worker (thread or
# process) and is started afresh for each round; a 64 MiB transfer warms it up first.

TCP_SOURCE_PORT = 9201
TCP_PORTS = {"junction": 8191, "nginx": 8192, "haproxy": 8193, "haproxy-splice": 8194}
TCP_PEER = os.path.join(HERE, "tcp_peer.py")
TCP_WARMUP = 64 << 20

TCP_JUNCTION = """workers: 1
listeners:
  - {{ name: tcp, address: 127.0.0.1:{port}, protocol: tcp, upstream: source }}
access_log: {{ path: none }}
error_log: {{ level: warn }}
upstreams:
  source:
    servers: [ {{ address: 127.0.0.1:{source} }} ]
"""

TCP_HAPROXY = """global
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 120s
  timeout server 120s
{splice}
frontend tcp
  bind 127.0.0.1:{port}
  default_backend source
backend source
  server s1 127.0.0.1:{source}
"""

# proxy_half_close: without it nginx ends the session when the client shuts its sending side,
# before the server's answer of the upload test.
TCP_NGINX = """{load_module}daemon off;
worker_processes 1;
pid {tmp}/tcp-nginx.pid;
error_log stderr error;
events {{ worker_connections 1024; }}
stream {{
  server {{
    listen 127.0.0.1:{port};
    proxy_pass 127.0.0.1:{source};
    proxy_half_close on;
  }}
}}
"""


def nginx_stream_module():
    """The load_module line nginx needs for `stream`: "" when it is built in, None when the
    module is missing (Debian: libnginx-mod-stream)."""
    try:
        r = subprocess.run(["nginx", "-V"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    args = (r.stdout + r.stderr).split()
    if "--with-stream" in args:
        return ""
    for d in ("/usr/lib/nginx/modules", "/usr/share/nginx/modules"):
        path = os.path.join(d, "ngx_stream_module.so")
        if os.path.isfile(path):
            return f"load_module {path};\n"
    return None


def tcp_contenders(tmp):
    """(name, port, argv or None) for each contender that can run here."""
    def write(name, text):
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path
    src = TCP_SOURCE_PORT
    out = [("junction", TCP_PORTS["junction"],
            [BIN, "-c", write("tcp-junction.yaml",
                              TCP_JUNCTION.format(port=TCP_PORTS["junction"], source=src))])]
    module = nginx_stream_module()
    if module is None:
        print("  nginx has no stream module (install libnginx-mod-stream); nginx left out")
    else:
        conf = write("tcp-nginx.conf", TCP_NGINX.format(load_module=module, tmp=tmp,
                                                        port=TCP_PORTS["nginx"], source=src))
        out.append(("nginx", TCP_PORTS["nginx"], ["nginx", "-c", conf]))
    # splice-auto did not splice at all in HAProxy 2.6's mode tcp (strace: recvfrom/sendto
    # of 16 KiB); these two options do, through 64 KiB pipes.
    splice_on = "  option splice-request\n  option splice-response"
    for name, splice in (("haproxy", ""), ("haproxy-splice", splice_on)):
        cfg = write(f"tcp-{name}.cfg", TCP_HAPROXY.format(splice=splice, port=TCP_PORTS[name],
                                                          source=src))
        out.append((name, TCP_PORTS[name], ["haproxy", "-f", cfg]))
    out.append(("direct", src, None))
    return out


def tcp_one(c, size, tmp):
    """One contender: GiB/s each way, and the proxy's CPU seconds per GiB moved."""
    import tcp_peer
    name, port, argv = c
    log = os.path.join(tmp, f"tcp-{name}.log")
    p = spawn(argv, log) if argv else None
    ticks = os.sysconf("SC_CLK_TCK")
    try:
        if not M.wait_port(port):
            return None
        tcp_peer.transfer(port, "down", TCP_WARMUP)
        out = {}
        for kind in ("down", "up"):
            cpu0 = M.tree_cpu(p.pid) if p else 0
            secs = tcp_peer.transfer(port, kind, size)
            cpu1 = M.tree_cpu(p.pid) if p else 0
            out[f"{kind}_gibps"] = size / secs / (1 << 30)
            out[f"{kind}_cpu"] = (cpu1 - cpu0) / ticks / (size / (1 << 30))
        return out
    except (OSError, RuntimeError) as e:
        print(f"  {name}: transfer failed: {e}")
        return None
    finally:
        if p:
            stop(p)


def part_tcp(a, tmp):
    size = a.tcp_bytes
    section(f"6. TCP mode: {size / (1 << 30):g} GiB each way, {a.rounds} interleaved round(s)")
    busy = [pt for pt in (TCP_SOURCE_PORT, *TCP_PORTS.values()) if not port_free(pt)]
    if busy:
        print(f"  ports already in use on 127.0.0.1: {busy}; skipped")
        return dict(skipped=f"ports in use: {busy}")
    source = spawn([sys.executable, TCP_PEER, "serve", str(TCP_SOURCE_PORT)],
                   os.path.join(tmp, "tcp-source.log"))
    try:
        if not M.wait_port(TCP_SOURCE_PORT):
            return dict(skipped="the source server did not start")
        by_round = interleave(
            tcp_contenders(tmp), a.rounds, lambda c: tcp_one(c, size, tmp),
            lambda n, r: f"{n:14s} down {r['down_gibps']:5.2f} GiB/s ({r['down_cpu']:4.2f} "
                         f"CPU s/GiB)  up {r['up_gibps']:5.2f} GiB/s ({r['up_cpu']:4.2f})")
    finally:
        stop(source)
    med = medians(by_round)
    rows = [[n, f"{m['down_gibps']:.2f}", f"{m['up_gibps']:.2f}",
             f"{m['down_cpu']:.2f}" if n != "direct" else "-",
             f"{m['up_cpu']:.2f}" if n != "direct" else "-",
             f"{sum(n in got for got in by_round)}"] for n, m in med.items()]
    print()
    print(fmt_table(["proxy", "down GiB/s", "up GiB/s", "CPU s/GiB down", "CPU s/GiB up",
                     "runs"], rows))
    print("  (medians over rounds; CPU = the proxy's user + system time per GiB moved;"
          "\n   'direct' is the client straight to the source server, the ceiling)")
    out = dict(medians=med, by_round=by_round, bytes=size,
               junction_log=log_lines(os.path.join(tmp, "tcp-junction.log")))
    peers = [n for n in ("nginx", "haproxy", "haproxy-splice") if n in med]
    if "junction" in med and peers:
        print("  Junction / best peer        ratio of medians   median of per-round ratios")
        for kind in ("down", "up"):
            g, c = f"{kind}_gibps", f"{kind}_cpu"
            out[f"{kind}_ratio"] = med["junction"][g] / max(med[n][g] for n in peers)
            out[f"{kind}_ratio_rounds"] = per_round_ratio(by_round, "junction", peers, g, max)
            out[f"{kind}_cpu_ratio"] = med["junction"][c] / min(med[n][c] for n in peers)
            print(f"    {kind:4s} GiB/s (higher better)   x{out[f'{kind}_ratio']:.2f}"
                  f"              x{out[f'{kind}_ratio_rounds']:.2f}")
            print(f"    {kind:4s} CPU/GiB (lower better)  x{out[f'{kind}_cpu_ratio']:.2f}")
    return out


# ---------------------------------------------------------------------------------------
# Part 7: protocols. The three proxies of part 1 (one worker each, same two nginx backends,
# keep-alive round robin, no access log) with TLS 1.3 and HTTP/2 in front: HTTPS over
# kept-alive connections (wrk), new full TLS handshakes per second (wrk, one request per
# connection, session resumption switched off in wrk by bench/wrk_no_resume.c), and HTTP/2
# over TLS with h2load (10 connections x 10 streams). Same certificate for all: ECDSA P-256,
# made with openssl in the temporary directory.

PROTO_PORTS = {"junction": 8443, "nginx": 8444, "haproxy": 8445}
PROTO_KINDS = ("https", "handshake", "h2")
PROTO_H2_CONNS, PROTO_H2_STREAMS = 10, 10
NO_RESUME_C = os.path.join(HERE, "wrk_no_resume.c")

PROTO_JUNCTION = """# part 7: junction-bench.yaml with a TLS 1.3 listener (ALPN h2, http/1.1)
workers: 1
listeners:
  - name: bench
    address: 127.0.0.1:{port}
    tls:
      certificates: [ {{ cert: {cert}, key: {key} }} ]
      min_version: "1.3"
access_log: {{ path: none }}
error_log: {{ level: warn }}
upstreams:
  backends:
    balance: round_robin
    keepalive: 128
    servers:
      - {{ address: 127.0.0.1:{b0} }}
      - {{ address: 127.0.0.1:{b1} }}
routes:
  - name: all
    match: {{ path_prefix: / }}
    upstream: backends
"""


class ProtoError(Exception):
    """A contender did not negotiate what part 7 asked for (TLS 1.3, h2): the part stops."""


def proto_configs(tmp, peers_conf):
    """Certificate and the three configurations. nginx's and HAProxy's are part 1's, with
    only the listening line changed (so they stay configured alike); Junction's is
    junction-bench.yaml's with a tls: section."""
    cert, key = os.path.join(tmp, "proto-cert.pem"), os.path.join(tmp, "proto-key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise ProtoError("openssl could not make the certificate: " + r.stderr.strip())
    combined = os.path.join(tmp, "proto-cert-key.pem")  # HAProxy: cert and key in one file
    with open(combined, "w") as f:
        f.write(open(cert).read() + open(key).read())

    def write(name, text):
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path
    jcfg = write("proto-junction.yaml", PROTO_JUNCTION.format(
        port=PROTO_PORTS["junction"], cert=cert, key=key, b0=BACKEND_PORTS[0],
        b1=BACKEND_PORTS[1]))
    with open(peers_conf["nginx"]) as f:
        text = f.read()
    text, k = re.subn(
        r"listen\s+127\.0\.0\.1:\d+([^;]*);",
        lambda m: f"listen 127.0.0.1:{PROTO_PORTS['nginx']} ssl http2{m.group(1)};\n"
                  f"    ssl_certificate {cert}; ssl_certificate_key {key};\n"
                  f"    ssl_protocols TLSv1.3;", text, count=1)
    if not k:
        raise ProtoError(f"{peers_conf['nginx']}: no listen line to give ssl http2")
    text = re.sub(r"(?m)^\s*pid\s+[^;]*;", f"pid {tmp}/proto-nginx.pid;", text)
    ncfg = write("proto-nginx.conf", text)
    with open(peers_conf["haproxy"]) as f:
        text = f.read()
    text, k = re.subn(r"(?m)^(\s*)bind\s+127\.0\.0\.1:\d+.*$",
                      lambda m: f"{m.group(1)}bind 127.0.0.1:{PROTO_PORTS['haproxy']} ssl crt "
                                f"{combined} alpn h2,http/1.1 ssl-min-ver TLSv1.3",
                      text, count=1)
    if not k:
        raise ProtoError(f"{peers_conf['haproxy']}: no bind line to give ssl crt")
    hcfg = write("proto-haproxy.cfg", text)
    return [("junction", PROTO_PORTS["junction"], [BIN, "-c", jcfg], jcfg),
            ("nginx", PROTO_PORTS["nginx"], ["nginx", "-c", ncfg], ncfg),
            ("haproxy", PROTO_PORTS["haproxy"], ["haproxy", "-f", hcfg], hcfg)]


def build_no_resume(tmp):
    """bench/wrk_no_resume.c built into tmp (an LD_PRELOAD shim for wrk), or None."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None
    out = os.path.join(tmp, "wrk_no_resume.so")
    r = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", out, NO_RESUME_C, "-ldl"],
                       capture_output=True, text=True)
    return out if r.returncode == 0 else None


def parse_h2load(out):
    """The figures of one h2load report, or None."""
    fin = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", out)
    reqs = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                     r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out)
    if not fin or not reqs or not codes:
        return None
    total, _, done, ok, failed, errored, tmo = map(int, reqs.groups())
    return dict(rps=float(fin.group(1)), requests=int(codes.group(1)),
                errs=failed + errored + tmo + int(codes.group(3)) + int(codes.group(4)),
                mean_ms=M.to_ms(mean.group(1)) if mean else float("nan"),
                alpn=(re.search(r"Application protocol: (\S+)", out) or [None, None])[1],
                tls=(re.search(r"TLS Protocol: (\S+)", out) or [None, None])[1])


def h2load(argv, timeout):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout).stdout
    except subprocess.TimeoutExpired as e:  # h2load has hung here with --h1 + Connection: close
        return (e.stdout or b"").decode(errors="replace") + "\n(h2load timed out)"


def proto_sanity(name, port):
    """20 requests over h2 and 20 over http/1.1 with h2load: TLS 1.3, the right ALPN, 200s.
    Raises ProtoError otherwise."""
    url = f"https://127.0.0.1:{port}/"
    for alpn, extra in (("h2", []), ("http/1.1", ["--h1"])):
        out = h2load(["h2load", "-n", "20", "-c", "1", *extra, url], 30)
        r = parse_h2load(out)
        if not r or r["tls"] != "TLSv1.3" or r["alpn"] != alpn or r["requests"] != 20:
            raise ProtoError(f"{name}: expected TLSv1.3, ALPN {alpn} and 20 2xx; h2load said "
                             f"TLS {r and r['tls']}, ALPN {r and r['alpn']}, "
                             f"2xx {r and r['requests']}:\n{out.strip()[-600:]}")
    return True


def proto_one(c, kind, a, tmp, shim):
    """One contender, one kind: start it, warm up 2 s, measure a.dur s, stop it."""
    name, port, argv, _ = c
    log = os.path.join(tmp, f"proto-{name}.log")
    p = spawn(argv, log)
    try:
        if not M.wait_port(port):
            return None
        url = f"https://127.0.0.1:{port}/"
        env, counts = None, None
        if kind == "h2":
            cmd = ["h2load", "-c", str(PROTO_H2_CONNS), "-m", str(PROTO_H2_STREAMS), "-D"]
            h2load(cmd + ["2", url], 60)
            cpu0 = M.tree_cpu(p.pid)
            out = h2load(cmd + [str(a.dur), url], a.dur + 60)
            cpu1 = M.tree_cpu(p.pid)
            r = parse_h2load(out)
            if r is None:
                print(f"  {name} h2: no h2load summary:\n{out.strip()[-400:]}")
                return None
            if r["alpn"] != "h2" or r["tls"] != "TLSv1.3":
                raise ProtoError(f"{name}: h2load negotiated {r['tls']} / {r['alpn']}, not "
                                 "TLSv1.3 / h2")
            res = dict(rps=r["rps"], mean_ms=r["mean_ms"], errs=r["errs"])
            n = r["requests"]
        else:
            wrk = ["wrk", "-t1", f"-c{a.conns}"]
            if kind == "handshake":
                wrk += ["-H", "Connection: close"]
                counts = os.path.join(tmp, f"proto-counts-{name}")
                env = dict(os.environ, LD_PRELOAD=shim, JN_TLS_COUNTS=counts)
            subprocess.run(wrk + ["-d2s", url], capture_output=True, env=env)
            if counts and os.path.exists(counts):
                os.unlink(counts)  # count the measured run only
            cpu0 = M.tree_cpu(p.pid)
            out = subprocess.run(wrk + [f"-d{a.dur}s", "--latency", url],
                                 capture_output=True, text=True, env=env).stdout
            cpu1 = M.tree_cpu(p.pid)
            r = benchlib.parse_wrk(out)
            if r is None:
                return None
            res = dict(rps=r["rps"], p50=r["p50"], p99=r["p99"], errs=r["errs"])
            n = r["requests"]
            if counts:
                full = resumed = 0
                for line in log_lines(counts):
                    f = line.split()
                    full, resumed = full + int(f[1]), resumed + int(f[3])
                if resumed or full < n * 0.9:
                    raise ProtoError(f"{name}: wrk made {full} full handshakes and {resumed} "
                                     f"resumed ones for {n} requests: not one full handshake "
                                     "per request (is the LD_PRELOAD shim working?)")
                res.update(full=full, resumed=resumed)
        res.update(cpu_us=(cpu1 - cpu0) / os.sysconf("SC_CLK_TCK") * 1e6 / max(n, 1),
                   rss_mb=M.tree_rss_kb(p.pid) / 1024)
        return res
    finally:
        stop(p)


def part_protocols(a, tmp, peers_conf):
    section(f"7. Protocols (TLS 1.3, ECDSA P-256): {a.rounds} interleaved round(s) of {a.dur}s;"
            f" https: wrk -t1 -c{a.conns}; handshake: the same with Connection: close, no "
            f"resumption; h2: h2load -c{PROTO_H2_CONNS} -m{PROTO_H2_STREAMS}")
    missing = [b for b in ("h2load", "openssl") if shutil.which(b) is None]
    if missing:
        print(f"  missing {', '.join(missing)} (nghttp2-client, openssl); skipped")
        return dict(skipped="missing " + ", ".join(missing))
    busy = [pt for pt in PROTO_PORTS.values() if not port_free(pt)]
    if busy:
        print(f"  ports already in use on 127.0.0.1: {busy}; skipped")
        return dict(skipped=f"ports in use: {busy}")
    contenders = proto_configs(tmp, peers_conf)
    kinds = list(PROTO_KINDS)
    shim = build_no_resume(tmp)
    if shim is None:
        print("  no C compiler to build bench/wrk_no_resume.c: handshake measure left out")
        kinds.remove("handshake")
    for c in contenders:
        p = spawn(c[2], os.path.join(tmp, f"proto-{c[0]}.log"))
        try:
            if not M.wait_port(c[1]):
                raise ProtoError(f"{c[0]} did not listen on {c[1]}: "
                                 + " | ".join(log_lines(os.path.join(tmp, f"proto-{c[0]}.log"))))
            proto_sanity(c[0], c[1])
        finally:
            stop(p)
        print(f"  {c[0]:9s} :{c[1]}  TLSv1.3 with ALPN h2 and http/1.1: 20 + 20 requests, "
              f"all 2xx ({os.path.basename(c[3])})")
    by_kind = {k: [] for k in kinds}
    unit = dict(https="req/s", handshake="conn/s", h2="req/s")
    for r in range(a.rounds):
        for kind in kinds:
            k = r % len(contenders)
            got = {}
            for c in contenders[k:] + contenders[:k]:
                res = proto_one(c, kind, a, tmp, shim)
                if res is None:
                    print(f"  round {r + 1}: {kind:9s} {c[0]}: no result")
                    continue
                got[c[0]] = res
                print(f"  round {r + 1}: {kind:9s} {c[0]:9s} {res['rps']:9.0f} {unit[kind]}  "
                      f"cpu {res['cpu_us']:6.1f} us/{unit[kind][:-2]}  errors {res['errs']}",
                      flush=True)
            by_kind[kind].append(got)
    out = dict(kinds=kinds, by_kind=by_kind, medians={}, ratios={},
               configs={c[0]: c[3] for c in contenders})
    rows = []
    for kind in kinds:
        med = medians(by_kind[kind]) if any(by_kind[kind]) else {}
        out["medians"][kind] = med
        for n, m in med.items():
            lat = (f"{m['p50']:.2f} / {m['p99']:.2f}" if kind != "h2"
                   else f"mean {m['mean_ms']:.2f}")
            rows.append([kind, n, f"{m['rps']:.0f} {unit[kind]}", f"{m['cpu_us']:.1f}", lat,
                         f"{m['rss_mb']:.1f}", f"{sum_errors(by_kind[kind], n)}",
                         f"{sum(n in got for got in by_kind[kind])}"])
        peers = [n for n in ("nginx", "haproxy") if n in med]
        if "junction" in med and peers:
            out["ratios"][kind] = dict(
                rps=med["junction"]["rps"] / max(med[n]["rps"] for n in peers),
                rps_rounds=per_round_ratio(by_kind[kind], "junction", peers, "rps", max),
                cpu=med["junction"]["cpu_us"] / min(med[n]["cpu_us"] for n in peers),
                cpu_rounds=per_round_ratio(by_kind[kind], "junction", peers, "cpu_us", min))
    print()
    print(fmt_table(["measure", "proxy", "rate", "cpu us/each", "p50 / p99 ms", "RSS MiB",
                     "errors (sum)", "runs"], rows))
    print("  (medians over rounds; handshake: one request per new TLS connection, each a full\n"
          "   handshake; cpu: the proxy's user + system time per request or connection)")
    if out["ratios"]:
        print("  Junction / best peer        ratio of medians   median of per-round ratios")
        for kind, x in out["ratios"].items():
            print(f"    {kind:9s} rate (higher better)  x{x['rps']:.2f}"
                  f"              x{x['rps_rounds']:.2f}")
            print(f"    {kind:9s} cpu (lower better)    x{x['cpu']:.2f}"
                  f"              x{x['cpu_rounds']:.2f}")
    out["junction_log"] = log_lines(os.path.join(tmp, "proto-junction.log"))
    return out


# ---------------------------------------------------------------------------------------

def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def first_line(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    with open(BIN, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    built = datetime.datetime.fromtimestamp(os.path.getmtime(JUNCTION)).astimezone()
    return dict(date=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
                nproc=os.cpu_count(), cpu=model, kernel=platform.release(),
                junction=f"{first_line([BIN, '--version'])} (build/junction of "
                         f"{built:%Y-%m-%d %H:%M}, sha256 {digest})",
                nginx=first_line(["nginx", "-v"]), haproxy=first_line(["haproxy", "-v"]),
                wrk=first_line(["wrk", "-v"]))


def preflight(peer_ports, extra_ports=()):
    missing = [b for b in ("nginx", "haproxy", "wrk") if shutil.which(b) is None]
    if not os.access(JUNCTION, os.X_OK):
        missing.append(JUNCTION + " (run `make build/junction`)")
    if missing:
        sys.exit("bench: missing: " + ", ".join(missing) + " (scripts/install-deps.sh)")
    busy = [p for p in (8080, *peer_ports, *BACKEND_PORTS, *extra_ports) if not port_free(p)]
    if busy:
        sys.exit(f"bench: ports already in use on 127.0.0.1: {busy}; stop what holds them")


def on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def main():
    global BIN
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--dur", type=int, default=5, help="seconds of each measured wrk run")
    ap.add_argument("--quick", action="store_true",
                    help="1 round of 2s, 2,000 idle connections: to check the harness")
    ap.add_argument("--conns", type=int, default=50, help="wrk connections (default 50)")
    ap.add_argument("--idle", type=int, default=10000, help="idle connections in part 3")
    ap.add_argument("--parts", default="1,2,3,5,6,7,8,9",
                    help="which parts to run (default 1,2,3,5,6,7,8,9)")
    ap.add_argument("--callgrind", action="store_true",
                    help="also run part 4: instructions per request under callgrind "
                         "(and, in part 5, per algorithm with 50 servers)")
    ap.add_argument("--callgrind-dur", type=int, default=10, help="seconds per callgrind run")
    ap.add_argument("--tcp-bytes", type=int, default=1 << 30,
                    help="bytes of each part 6 transfer (default 1 GiB)")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.dur, a.idle = 1, 2, min(a.idle, 2000)
        a.tcp_bytes = min(a.tcp_bytes, 256 << 20)
    parts = {p.strip() for p in a.parts.split(",")} | ({"4"} if a.callgrind else set())
    signal.signal(signal.SIGTERM, on_sigterm)

    nginx_conf, haproxy_cfg = peer_file("proxy-nginx.conf"), peer_file("proxy-haproxy.cfg")
    backend_conf = peer_file("backend-nginx.conf")
    nginx_port = config_port(nginx_conf, r"listen\s+127\.0\.0\.1:(\d+)")
    haproxy_port = config_port(haproxy_cfg, r"bind\s+127\.0\.0\.1:(\d+)")
    preflight((nginx_port, haproxy_port), ALGO_BACKEND_PORTS if "5" in parts else ())
    peers = {"nginx": (nginx_port, ["nginx", "-c", nginx_conf]),
             "haproxy": (haproxy_port, ["haproxy", "-f", haproxy_cfg])}
    peers_conf = dict(nginx=nginx_conf, haproxy=haproxy_cfg, nginx_port=nginx_port,
                      haproxy_port=haproxy_port)

    tmp = tempfile.mkdtemp(prefix="junction-bench-")
    results = dict(args=vars(a), method=METHOD_SOURCE)
    try:
        BIN = os.path.join(tmp, "junction")
        shutil.copy2(JUNCTION, BIN)
        results["machine"] = info = machine()
        print("Junction benchmark:",
              " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]))
        for k, v in info.items():
            print(f"  {k:8s} {v}")
        print(f"  method   {os.path.normpath(METHOD_SOURCE)}")
        print(f"  configs  {JUNCTION_YAML}\n           {nginx_conf}\n           {haproxy_cfg}"
              f"\n           backends: {backend_conf}")
        load = open("/proc/loadavg").read().split()[:3]
        print(f"  load     {' '.join(load)} (1, 5, 15 min) before the run")
        backend = spawn(["nginx", "-c", backend_conf], os.path.join(tmp, "backend.log"))
        if not all(M.wait_port(p) for p in BACKEND_PORTS):
            sys.exit("bench: the nginx backends did not start: "
                     + " | ".join(log_lines(os.path.join(tmp, "backend.log"))))
        # Sanity: Junction answers through the backends before anything is measured.
        p = spawn([BIN, "-c", JUNCTION_YAML], os.path.join(tmp, "sanity.log"))
        try:
            if not M.wait_port(8080):
                sys.exit("bench: Junction did not listen on 8080: "
                         + " | ".join(log_lines(os.path.join(tmp, "sanity.log"))))
            status, body = get_once(8080)
            print(f"  sanity   GET / through Junction -> {status} {body.strip()[:40]!r}")
        finally:
            stop(p)
        if "1" in parts:
            results["throughput"] = part_throughput(a, tmp, peers)
        if "2" in parts:
            results["routing"] = part_routing(a, tmp)
        if "3" in parts:
            results["idle"] = part_idle(a, tmp, peers_conf)
        if "4" in parts:
            results["callgrind"] = part_callgrind(a, tmp, peers_conf)
        if "5" in parts:
            results["algorithms"] = part_algorithms(a, tmp)
        if "6" in parts:
            results["tcp"] = part_tcp(a, tmp)
        if "7" in parts:
            try:
                results["protocols"] = part_protocols(a, tmp, peers_conf)
            except ProtoError as e:
                print(f"\n  PART 7 FAILED: {e}")
                results["protocols"] = dict(failed=str(e))
        if "8" in parts:
            results["policies"] = policies.part_policies(a, tmp, sys.modules[__name__])
        if "9" in parts:
            results["observability"] = observability.part_observability(
                a, tmp, sys.modules[__name__])
        if backend.poll() is not None:
            print(f"  note: the nginx backends exited early (status {backend.returncode})")
        results["load_after"] = open("/proc/loadavg").read().split()[:3]
    finally:
        stop_all()
        if a.keep:
            print(f"\n(temporary files kept in {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    summary(results)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    if "failed" in results.get("protocols", {}):
        sys.exit(1)


def summary(res):
    section("Summary")
    if res.get("policies"):
        policies.summarize(res["policies"])
    if res.get("observability"):
        observability.summarize(res["observability"])
    t = res.get("throughput")
    if t and "rps_ratio" in t:
        m = t["medians"]
        for n in ("junction", "nginx", "haproxy"):
            if n in m:
                print(f"  {n:9s} {m[n]['rps']:8.0f} req/s  p99 {m[n]['p99']:6.2f} ms  "
                      f"{m[n]['cpu_us']:6.1f} us CPU/req  RSS {m[n]['rss_mb']:.1f} MiB")
        print(f"  Junction vs best peer: req/s x{t['rps_ratio']:.2f} "
              f"(per round x{t['rps_ratio_rounds']:.2f}), CPU/req x{t['cpu_ratio']:.2f} "
              f"(per round x{t['cpu_ratio_rounds']:.2f})")
    r = res.get("routing")
    if r:
        for kind, x in r["ratios"].items():
            print(f"  routing, 5,000 vs 5 {kind} routes: req/s x{x['rps']:.2f} "
                  f"(per round x{x['rps_rounds']:.2f}), CPU/req x{x['cpu']:.2f} "
                  f"(per round x{x['cpu_rounds']:.2f})")
    i = res.get("idle")
    if i and "skipped" not in i:
        for n, x in i.items():
            if "error" in x:
                print(f"  idle memory, {n}: {x['error']}")
            else:
                print(f"  idle memory, {n:9s} {x['kib_per_conn']:6.2f} KiB per idle keep-alive"
                      f" connection ({x['marginal_kib_per_conn']:.2f} for the second half; "
                      f"{x['idle']} connections)")
    c = res.get("callgrind")
    if c and "skipped" not in c:
        if "junction_vs_best_peer" in c:
            print(f"  instructions/request, Junction vs fewest of the peers: "
                  f"x{c['junction_vs_best_peer']:.2f}")
        for kind in ("prefix", "host"):
            if f"routes_{kind}_ratio" in c:
                print(f"  instructions/request, 5,000 vs 5 {kind} routes: "
                      f"x{c[f'routes_{kind}_ratio']:.3f}")
    g = res.get("algorithms")
    if g and "skipped" not in g:
        timed = {n: x for n, x in g["table"].items()
                 if x.get("rps_ratio_rounds") is not None and x["algorithm"] != "round_robin"}
        if timed:
            low = min(timed, key=lambda n: timed[n]["rps_ratio_rounds"])
            print(f"  algorithms, req/s vs round robin (per-round medians): lowest {low} "
                  f"x{timed[low]['rps_ratio_rounds']:.3f}; below x{g['target']:.2f}: "
                  + (", ".join(g["below_target"]) or "none"))
        counted = {n: x for n, x in g["table"].items()
                   if "ir_ratio" in x and x["algorithm"] != "round_robin"}
        if counted:
            high = max(counted, key=lambda n: counted[n]["ir_ratio"])
            print(f"  algorithms, instructions/request vs round robin (50 servers): highest "
                  f"{high} x{counted[high]['ir_ratio']:.3f}")
    t6 = res.get("tcp")
    if t6 and "down_ratio" in t6:
        m = t6["medians"]
        for n in ("junction", "nginx", "haproxy", "haproxy-splice"):
            if n in m:
                print(f"  tcp {n:14s} down {m[n]['down_gibps']:5.2f} GiB/s, up "
                      f"{m[n]['up_gibps']:5.2f} GiB/s, {m[n]['down_cpu']:4.2f}/"
                      f"{m[n]['up_cpu']:4.2f} CPU s per GiB")
        print(f"  tcp Junction vs best peer: down x{t6['down_ratio']:.2f} (per round "
              f"x{t6['down_ratio_rounds']:.2f}), up x{t6['up_ratio']:.2f} (per round "
              f"x{t6['up_ratio_rounds']:.2f})")
    t7 = res.get("protocols")
    if t7 and "failed" in t7:
        print(f"  protocols: PART 7 FAILED: {t7['failed']}")
    elif t7 and "skipped" not in t7:
        unit = dict(https="req/s", handshake="conn/s", h2="req/s")
        for kind in t7["kinds"]:
            m = t7["medians"][kind]
            figures = ", ".join(f"{n} {m[n]['rps']:.0f} ({m[n]['cpu_us']:.0f} us CPU)"
                                for n in ("junction", "nginx", "haproxy") if n in m)
            print(f"  {kind:9s} {unit[kind]}: {figures}")
            x = t7["ratios"].get(kind)
            if x:
                print(f"  {kind:9s} Junction vs best peer: x{x['rps']:.2f} (per round "
                      f"x{x['rps_rounds']:.2f}), CPU x{x['cpu']:.2f} (per round "
                      f"x{x['cpu_rounds']:.2f})")
    if "load_after" in res:
        print(f"  load average after the run: {' '.join(res['load_after'])}")
    notes = attention(res)
    if notes:
        print("  Worth a look:")
        for line in notes[:40]:
            print(f"    - {line}")
        if len(notes) > 40:
            print(f"    ... and {len(notes) - 40} more")


def attention(res):
    """Errors, failed runs and Junction's own log lines, gathered from every part."""
    notes = []
    for part in ("throughput", "routing", "algorithms"):
        x = res.get(part)
        if not x or "skipped" in x:
            continue
        names = set().union(*x["by_round"]) if x["by_round"] else set()
        for n in sorted(names):
            missing = sum(n not in got for got in x["by_round"])
            if missing:
                notes.append(f"{part}: {n}: {missing} run(s) gave no result")
            errs = sum_errors(x["by_round"], n)
            if errs:
                notes.append(f"{part}: {n}: wrk counted {errs} errors (non-2xx/3xx or socket)")
        logs = {"junction": x["junction_log"]} if part == "throughput" else x["logs"]
        for n, lines in logs.items():
            notes += [f"{part}: {n} logged: {line}" for line in lines]
    i = res.get("idle")
    if i and "skipped" not in i:
        for n, x in i.items():
            if "error" in x:
                continue
            if x["exit_before_stop"] is not None:
                notes.append(f"idle: {n} had exited (status {x['exit_before_stop']}) "
                             "before it was stopped")
            if x["failed"] or x["still_open"] < x["idle"]:
                notes.append(f"idle: {n}: {x['failed']} connections failed, "
                             f"{x['idle'] - x['still_open']} closed while idle")
            if n == "junction":
                notes += [f"idle: junction logged: {line}" for line in x["log"]]
    t6 = res.get("tcp")
    if t6 and "skipped" not in t6:
        names = set().union(*t6["by_round"]) if t6["by_round"] else set()
        for n in sorted(names):
            missing = sum(n not in got for got in t6["by_round"])
            if missing:
                notes.append(f"tcp: {n}: {missing} run(s) gave no result")
        notes += [f"tcp: junction logged: {line}" for line in t6["junction_log"]]
    t7 = res.get("protocols")
    if t7 and "by_kind" in t7:
        for kind, by_round in t7["by_kind"].items():
            names = set().union(*by_round) if by_round else set()
            for n in sorted(names):
                missing = sum(n not in got for got in by_round)
                if missing:
                    notes.append(f"protocols {kind}: {n}: {missing} run(s) gave no result")
                errs = sum_errors(by_round, n)
                if errs:
                    notes.append(f"protocols {kind}: {n}: {errs} errors")
        notes += [f"protocols: junction logged: {line}" for line in t7["junction_log"]]
    c = res.get("callgrind")
    if c and "skipped" not in c:
        for n, x in c.items():
            if isinstance(x, dict) and x.get("non2xx"):
                notes.append(f"callgrind: {n}: {x['non2xx']} non-2xx responses")
    g = res.get("algorithms")
    if g and "skipped" not in g:
        for v in g["variants"]:
            if set(v["sanity_statuses"]) != {200}:
                notes.append(f"algorithms: {v['name']}: sanity requests gave "
                             f"{v['sanity_statuses']}")
        for n, x in g["callgrind"].items():
            if x.get("non2xx") or "error" in x:
                notes.append(f"algorithms: callgrind {n}: "
                             + x.get("error", f"{x.get('non2xx')} non-2xx responses"))
    return notes


if __name__ == "__main__":
    main()
