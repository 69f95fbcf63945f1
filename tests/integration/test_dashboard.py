"""The admin dashboard: the page built into the binary, and the page itself in
headless Chromium (tests/browser/dashboard.mjs, Playwright) against the real
binary with real backends, active health checks and live traffic."""
import http.client
import json
import os
import subprocess
import threading

import pytest

from conftest import wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
BROWSER_DIR = os.path.join(ROOT, "tests/browser")
SCREENSHOT = os.path.join(ROOT, "build/test-artifacts/dashboard.png")
TOKEN = "dashboard-test-token-7f3a"

CONFIG = """
workers: 2
listeners:
  - name: public
    address: 127.0.0.1:{port0}
admin: { address: 127.0.0.1:{port1}, token_file: %(token_file)s }
access_log: { path: none }
routes:
  - name: app
    upstream: app
upstreams:
  app:
    servers:
%(servers)s
    health: { path: /healthz, interval: 100ms, timeout: 80ms, healthy_threshold: 1,
              unhealthy_threshold: 1 }
"""


def start(junction, backends, tmp_path):
    token_file = tmp_path / "admin.token"
    token_file.write_text(TOKEN + "\n")
    bs = backends(3, names=["steady", "killed", "drained"])
    servers = "\n".join("      - { address: 127.0.0.1:%d }" % b.port for b in bs)
    j = junction(CONFIG % {"token_file": token_file, "servers": servers}, nports=2)
    return j, bs


def admin_get(j, path, token=TOKEN):
    c = http.client.HTTPConnection("127.0.0.1", j.ports[1], timeout=10)
    c.request("GET", path, headers={"Authorization": "Bearer " + token} if token else {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r.getheader("Content-Type", ""), body


class Traffic:
    """A client sending requests through the public listener until stopped,
    so the charts have something to draw. Failures (the killed server) are
    expected and not counted."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop.is_set():
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                for _ in range(50):
                    if self.stop.is_set():
                        break
                    c.request("GET", "/items")
                    c.getresponse().read()
                    self.sent += 1
                    self.stop.wait(0.01)
                c.close()
            except (OSError, http.client.HTTPException):
                self.stop.wait(0.05)

    def close(self):
        self.stop.set()
        self.thread.join(10)


def test_dashboard_page_is_built_in_and_served_without_token(junction, backends, tmp_path):
    j, _ = start(junction, backends, tmp_path)
    status, ctype, body = admin_get(j, "/", token=None)
    assert status == 200, body
    assert ctype.startswith("text/html"), ctype
    with open(os.path.join(ROOT, "src/admin/dashboard.html"), "rb") as f:
        assert body == f.read()
    # The page's data stays behind the token.
    status, _, _ = admin_get(j, "/upstreams", token=None)
    assert status == 401


def run_browser(env):
    """Runs dashboard.mjs; returns the process (stdout and stderr are files in env's dir)."""
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules/playwright-core")):
        pytest.fail("tests/browser/node_modules is missing: `make integration` runs npm ci there")
    return subprocess.Popen(["node", os.path.join(BROWSER_DIR, "dashboard.mjs")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_dashboard_in_chromium_shows_health_drains_and_draws(junction, backends, tmp_path):
    j, (steady, killed, drained) = start(junction, backends, tmp_path)
    kill_file = tmp_path / "kill-request"
    addr = lambda b: "127.0.0.1:%d" % b.port
    env = dict(os.environ, JN_DASH_URL="http://127.0.0.1:%d/" % j.ports[1], JN_DASH_TOKEN=TOKEN,
               JN_DASH_KILL=addr(killed), JN_DASH_KILL_FILE=str(kill_file),
               JN_DASH_DRAIN=addr(drained), JN_DASH_SCREENSHOT=SCREENSHOT)
    traffic = Traffic(j.port)
    proc = run_browser(env)
    output = ""
    try:
        # The script asks for the kill once the page shows the servers healthy.
        wait_for(lambda: kill_file.exists() or proc.poll() is not None, timeout=60,
                 what="the browser script to ask for a server to be killed")
        if kill_file.exists():
            assert kill_file.read_text().strip() == addr(killed)
            killed.close()
        output, _ = proc.communicate(timeout=120)
    finally:
        traffic.close()
        if proc.poll() is None:
            proc.kill()
            output += proc.communicate()[0]
    assert proc.returncode == 0, "browser test failed (screenshot %s):\n%s" % (SCREENSHOT, output)
    result = json.loads(output.strip().splitlines()[-1].split(" ", 1)[1])
    assert traffic.sent > 0
    assert os.path.getsize(SCREENSHOT) > 0
    if result["drain"] != "done":
        pytest.skip("everything but the drain click passed; " + result["drain"])
    # What the page showed is what Junction does. (A runtime change may make a
    # new generation whose checks take an interval to find the dead server.)
    def servers():
        status, _, body = admin_get(j, "/upstreams")
        assert status == 200, body
        return {s["address"]: s for u in json.loads(body)["upstreams"] for s in u["servers"]}

    wait_for(lambda: servers()[addr(killed)]["health"] == "unhealthy", what="killed unhealthy")
    now = servers()
    assert now[addr(drained)]["drain"] is True
    assert now[addr(steady)]["drain"] is False
