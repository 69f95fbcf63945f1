"""Zero-downtime binary upgrade: `junction -c FILE --upgrade` (or SIGUSR2 to
the running one) takes the listening sockets over a Unix socket; the old
process stops accepting, drains and exits; no request fails meanwhile."""
import http.client
import os
import signal
import subprocess

from conftest import BIN, SteadyLoad, wait_for

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
    load = SteadyLoad(j.port, "/x", retry_reused=True)
    try:
        load.wait_more(100, "load running")
        new, log = run_new(j, tmp_path)
        assert j.proc.wait(timeout=30) == 0, j.stderr()
        assert "the new process serves" in j.stderr()
        load.wait_more(200, "load served by the new process")
    finally:
        load.stop()  # asserts no request failed
    assert new.poll() is None
    assert "(upgrade)" in open(log).read()
    stop_new(new, log)


def test_sigusr2_starts_the_new_binary_which_takes_over(junction, backends, tmp_path):
    (b,) = backends(1)
    j = junction(CONFIG % b.port)
    load = SteadyLoad(j.port, "/x", threads=2, retry_reused=True)
    try:
        load.wait_more(50, "load running")
        j.proc.send_signal(signal.SIGUSR2)
        assert j.proc.wait(timeout=30) == 0, j.stderr()
        load.wait_more(100, "load served by the new process")
    finally:
        load.stop()  # asserts no request failed
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
