"""Measurement method of the reference harness (../shared/bench/compare.py), written again
for machines where the shared directory is missing. bench/run.py imports the shared module
when it exists and this one otherwise, so both must keep the same contract:

  wait_port(port, timeout=10) -> bool       True once 127.0.0.1:port accepts a connection
  tree_cpu(pid) -> int                      utime+stime clock ticks of pid and its descendants
  tree_rss_kb(pid) -> int                   summed VmRSS (KiB) of pid and its descendants
  to_ms(text) -> float                      a wrk duration ("812.00us", "3.10ms", "1.2s") in ms
  run_one(cmd, port, a) -> dict | None      start cmd (shell, own session), warm up with wrk
      for 2 s, measure a.dur seconds with a.conns connections on a.path, stop cmd; returns
      rps, p50, p99 (ms), cpu_us (proxy CPU per request), rss_mb, errs; None if it never
      listened.

One extension that compare.py does not have: when a.script is set (it may be absent), wrk
runs that Lua script (`wrk -s`) in both the warm-up and the measured run. Part 5 of run.py
uses it to send requests that differ in path and header, so it always calls this module's
run_one, whichever module measures the other parts.
"""
import os
import re
import signal
import socket
import subprocess
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def wait_port(port, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _descendants(pid):
    """pid and every process below it, read from /proc/PID/task/TID/children."""
    seen, stack = [], [pid]
    while stack:
        p = stack.pop()
        seen.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return seen


def tree_cpu(pid):
    ticks = 0
    for p in _descendants(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                # The command name may hold spaces and parentheses: split after the last ')'.
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (all threads)
    return ticks


def tree_rss_kb(pid):
    kib = 0
    for p in _descendants(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        kib += int(line.split()[1])
                        break
        except OSError:
            continue
    return kib


_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)\b", text)
    return float(m.group(1)) * _UNIT_MS[m.group(2)] if m else float("nan")


def parse_wrk(out):
    """The figures of one `wrk --latency` report, or None when wrk printed no summary."""
    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not total or not rps:
        return None
    p50 = re.search(r"\s50%\s+(\S+)", out)
    p99 = re.search(r"\s99%\s+(\S+)", out)
    errs = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errs += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errs += sum(int(g) for g in m.groups())
    return dict(requests=int(total.group(1)), rps=float(rps.group(1)),
                p50=to_ms(p50.group(1)) if p50 else float("nan"),
                p99=to_ms(p99.group(1)) if p99 else float("nan"), errs=errs)


def _stop(proc, grace=15):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run_one(cmd, port, a):
    proc = subprocess.Popen(cmd, shell=True, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_port(port):
            return None
        url = f"http://127.0.0.1:{port}{a.path}"
        wrk = ["wrk", "-t1", f"-c{a.conns}"]
        script = getattr(a, "script", None)
        if script:
            wrk += ["-s", script]
        subprocess.run(wrk + ["-d2s", url], capture_output=True)  # warm-up, not measured
        cpu0 = tree_cpu(proc.pid)
        out = subprocess.run(wrk + [f"-d{a.dur}s", "--latency", url],
                             capture_output=True, text=True).stdout
        cpu1 = tree_cpu(proc.pid)
        rss = tree_rss_kb(proc.pid)
        r = parse_wrk(out)
        if r is None:
            return None
        cpu_us = (cpu1 - cpu0) / CLOCK_TICKS * 1e6 / max(r["requests"], 1)
        return dict(rps=r["rps"], p50=r["p50"], p99=r["p99"], cpu_us=cpu_us,
                    rss_mb=rss / 1024, errs=r["errs"])
    finally:
        _stop(proc)
