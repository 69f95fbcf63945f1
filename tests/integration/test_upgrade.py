"""Zero-downtime binary upgrade: `junction -c FILE --upgrade` (or SIGUSR2 to
the running one) takes the listening sockets over a Unix socket; the old
process stops accepting, drains and exits; no request fails meanwhile."""
import http.client
import os
import signal
import subprocess
import threading

from conftest import BIN, wait_for

CONFIG = """
workers: 2
listeners:
  - name: public
    address: 127.0.0.1:{port}
upstreams:
  app:
    servers: [ { address: 127.0.0.1:%d } ]
routes:
  - match: { path_prefix: / }
    upstream: app
"""


def load(port, stop, stats, keep_alive):
    """Steady requests. Like browsers and curl, a request that finds its
    reused keep-alive connection closed before any byte of the response
    (the server was closing it as idle) is sent again once on a new one
    (RFC 9112, 9.3.1); any other failure counts."""
    conn, reused = None, False
    while not stop.is_set():
        try:
            if conn is None:
                conn, reused = http.client.HTTPConnection("127.0.0.1", port, timeout=10), False
            conn.request("GET", "/x")
            r = conn.getresponse()
            r.read()
            stats["ok" if r.status == 200 else "bad"] += 1
            if r.status != 200:
                stats["why"].append(r.status)
            reused = True
            if not keep_alive or r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
            if not reused:
                stats["bad"] += 1
                stats["why"].append(repr(e))
            else:
                stats["retried"] += 1
            conn.close()
            conn = None
        except (OSError, http.client.HTTPException) as e:
            stats["bad"] += 1
            stats["why"].append(repr(e))
            conn = None
    if conn is not None:
        conn.close()


def start_load(port, n=4):
    stop = threading.Event()
    stats = [{"ok": 0, "bad": 0, "retried": 0, "why": []} for _ in range(n)]
    threads = [threading.Thread(target=load, args=(port, stop, stats[i], i % 2 == 0))
               for i in range(n)]
    for t in threads:
        t.start()
    return stop, stats, threads


def total(stats, key="ok"):
    return sum(s[key] for s in stats)


def run_new(j, tmp_path, *extra):
    wait_for(lambda: os.path.exists(j.path + ".upgrade.sock"), what="upgrade socket")
    err = open(os.path.join(str(tmp_path), "new.log"), "w")
    return subprocess.Popen([BIN, "-c", j.path, "--upgrade", *extra], stdout=subprocess.DEVNULL,
                            stderr=err), os.path.join(str(tmp_path), "new.log")


def stop_new(proc, log):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    text = open(log).read()
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "[error]"):
        assert bad not in text, text


def test_upgrade_under_load_fails_no_request(junction, backends, tmp_path):
    (b,) = backends(1)
    j = junction(CONFIG % b.port)
    stop, stats, threads = start_load(j.port)
    try:
        wait_for(lambda: total(stats) > 100, what="load running")
        new, log = run_new(j, tmp_path)
        assert j.proc.wait(timeout=30) == 0, j.stderr()
        assert "the new process serves" in j.stderr()
        before = total(stats)
        wait_for(lambda: total(stats) > before + 200, what="load served by the new process")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert total(stats, "bad") == 0, [w for s in stats for w in s["why"]][:10]
    assert new.poll() is None
    assert "(upgrade)" in open(log).read()
    stop_new(new, log)


def test_sigusr2_starts_the_new_binary_which_takes_over(junction, backends, tmp_path):
    (b,) = backends(1)
    j = junction(CONFIG % b.port)
    stop, stats, threads = start_load(j.port, 2)
    try:
        wait_for(lambda: total(stats) > 50, what="load running")
        j.proc.send_signal(signal.SIGUSR2)
        assert j.proc.wait(timeout=30) == 0, j.stderr()
        before = total(stats)
        wait_for(lambda: total(stats) > before + 100, what="load served by the new process")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert total(stats, "bad") == 0, [w for s in stats for w in s["why"]][:10]
    assert "SIGUSR2: started" in j.stderr()
    out = subprocess.run(["pgrep", "-f", "--", "-c %s --upgrade$" % j.path],
                         capture_output=True, text=True).stdout.split()
    assert len(out) == 1, out
    pid = int(out[0])
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not os.path.exists("/proc/%d" % pid) or
             open("/proc/%d/stat" % pid).read().split()[2] == "Z", what="new process stops")


def test_a_failed_upgrade_leaves_the_old_process_serving(junction, backends, tmp_path):
    (b,) = backends(1)
    j = junction(CONFIG % b.port)
    wait_for(lambda: os.path.exists(j.path + ".upgrade.sock"), what="upgrade socket")
    good = open(j.path).read()
    with open(j.path, "w") as f:
        f.write(good.replace("routes:", "routes: [\nbroken"))
    new, log = run_new(j, tmp_path)
    assert new.wait(timeout=30) == 1
    assert "junction.yaml:" in open(log).read()
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=10)
    c.request("GET", "/still")
    assert c.getresponse().status == 200
    c.close()
    assert j.proc.poll() is None


def test_upgrade_without_a_running_process_says_so(tmp_path):
    path = os.path.join(str(tmp_path), "j.yaml")
    with open(path, "w") as f:
        f.write(CONFIG.replace("{port}", "1") % 2)
    r = subprocess.run([BIN, "-c", path, "--upgrade"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "upgrade socket" in r.stderr and "is Junction running" in r.stderr, r.stderr


def test_a_bare_connection_to_the_upgrade_socket_takes_nothing(junction, backends):
    (b,) = backends(1)
    j = junction(CONFIG % b.port)
    path = j.path + ".upgrade.sock"
    wait_for(lambda: os.path.exists(path), what="upgrade socket")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    s.close()
    c = http.client.HTTPConnection("127.0.0.1", j.port, timeout=10)
    c.request("GET", "/still")
    assert c.getresponse().status == 200
    c.close()
    assert j.proc.poll() is None
    assert "handed over" not in j.stderr()


def test_a_clean_stop_removes_the_upgrade_socket(junction, backends):
    (b,) = backends(1)
    j = junction(CONFIG % b.port)
    path = j.path + ".upgrade.sock"
    wait_for(lambda: os.path.exists(path), what="upgrade socket")
    assert j.stop() == 0
    assert not os.path.exists(path)


def test_the_admin_and_metrics_listeners_are_handed_over_too(junction, backends, tmp_path):
    (b,) = backends(1)
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    extra = ("admin: { address: 127.0.0.1:{port1}, token_file: %s }\n"
             "metrics: { address: 127.0.0.1:{port2} }\n" % token)
    j = junction(CONFIG.replace("upstreams:", extra + "upstreams:") % b.port, nports=3)
    new, log = run_new(j, tmp_path)
    assert j.proc.wait(timeout=30) == 0, j.stderr()
    # Two workers' sockets, the admin's and the metrics listener's.
    assert "4 listening sockets handed over" in j.stderr(), j.stderr()
    c = http.client.HTTPConnection("127.0.0.1", j.ports[1], timeout=10)
    c.request("GET", "/status", headers={"Authorization": "Bearer t0ken"})
    r = c.getresponse()
    assert r.status == 200 and b"generation" in r.read()
    c.close()
    c = http.client.HTTPConnection("127.0.0.1", j.ports[2], timeout=10)
    c.request("GET", "/metrics")
    assert c.getresponse().status == 200
    c.close()
    assert "handed-over socket" not in open(log).read()  # every one was taken
    stop_new(new, log)
