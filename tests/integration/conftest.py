"""Integration test harness: starts the real junction binary on an inline
configuration with free ports on 127.0.0.1, and real backends beside it."""
import collections
import http.client
import http.server
import json
import os
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time

import pytest

BIN = os.environ.get("JUNCTION_BIN", os.path.join(os.path.dirname(__file__), "../../build/junction"))
SANITIZED = os.environ.get("JUNCTION_SANITIZED") == "1"


_recent_ports = collections.deque(maxlen=64)


def free_port():
    """A port nothing listens on, never one of the last 64 handed out: the
    kernel may give the same free port twice in a row, and a test that asks
    for two (two listeners) would then get a duplicate address."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _recent_ports:
            _recent_ports.append(port)
            return port


def wait_for(cond, timeout=10.0, what="condition"):
    """Polls cond until it is true; the bound only stops a broken run."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def port_open(port):
    """True when something listens on port, on 127.0.0.1 or ::1."""
    for host in ("127.0.0.1", "::1"):
        try:
            socket.create_connection((host, port), 0.2).close()
            return True
        except OSError:
            pass
    return False


class Junction:
    def __init__(self, config, ports, tmp):
        self.ports = ports
        self.path = os.path.join(tmp, "junction.yaml")
        self.errlog = os.path.join(tmp, "stderr.log")
        self.outlog = os.path.join(tmp, "stdout.log")
        with open(self.path, "w") as f:
            f.write(config)
        self.proc = None

    def start(self):
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:quarantine_size_mb=16",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        self.proc = subprocess.Popen([BIN, "-c", self.path], stdout=open(self.outlog, "w"),
                                     stderr=open(self.errlog, "w"), env=env)
        for p in self.ports:
            wait_for(lambda: port_open(p) or self.proc.poll() is not None, what=f"port {p}")
            assert self.proc.poll() is None, self.stderr()
        return self

    @property
    def port(self):
        return self.ports[0]

    def stderr(self):
        with open(self.errlog) as f:
            return f.read()

    def access_lines(self):
        with open(self.outlog) as f:
            return [json.loads(l) for l in f if l.startswith("{")]

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("junction did not stop on " + str(sig))
        return self.proc.returncode

    def check_clean(self):
        err = self.stderr()
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:", "[error]"):
            assert bad not in err, err


@pytest.fixture
def junction(tmp_path):
    """junction(config with {port} or {port0}..{portN}, nports=1) -> started Junction."""
    started = []

    def start(config, nports=1, expect_errors=False):
        ports = [free_port() for _ in range(nports)]
        text = config.replace("{port}", str(ports[0]))
        for i, p in enumerate(ports):
            text = text.replace("{port%d}" % i, str(p))
        j = Junction(text, ports, str(tmp_path)).start()
        j.expect_errors = expect_errors
        started.append(j)
        return j

    yield start
    for j in started:
        rc = j.stop()
        assert rc == 0, j.stderr()
        if not j.expect_errors:
            j.check_clean()


def app_config(backend, routes, extra=""):
    """One worker, one listener on {port}, an upstream `app` of one backend,
    the routes given (YAML list items) and extra top-level sections."""
    return """
workers: 1
listeners:
  - name: public
    address: 127.0.0.1:{port}
%s
upstreams:
  app:
    servers: [ { address: 127.0.0.1:%d } ]
routes:
%s
""" % (extra, backend.port, routes)


class EchoHandler(http.server.BaseHTTPRequestHandler):
    """Answers with a JSON description of the request it received."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def handle_one_request(self):
        self.server.active += 1
        try:
            super().handle_one_request()
        finally:
            self.server.active -= 1

    def read_body(self):
        """The request body, chunked (trailers skipped) or sized."""
        body = b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        elif self.headers.get("Content-Length"):
            body = self.rfile.read(int(self.headers["Content-Length"]))
        return body

    def handle_any(self):
        body = self.read_body()
        rec = {"server": self.server.name, "method": self.command, "path": self.path,
               "headers": [[k, v] for k, v in self.headers.items()], "body_len": len(body),
               "body": body[:200].decode("latin-1")}
        self.server.received.append(rec)
        self.server.peer_ports.add(self.client_address[1])
        out = json.dumps(rec).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.send_header("X-Backend", self.server.name)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_any


class Holding(EchoHandler):
    """Holds every request until the test opens Holding.gate: a server that
    became slow. The server counts the requests it holds in .held."""
    gate = threading.Event()

    def handle_any(self):
        self.server.held += 1
        Holding.gate.wait(30)
        EchoHandler.handle_any(self)

    do_GET = handle_any


class Backend(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, name, handler=EchoHandler):
        super().__init__(("127.0.0.1", 0), handler)
        self.name = name
        self.received = []
        self.peer_ports = set()
        self.active = 0
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.shutdown()
        self.server_close()


@pytest.fixture
def backends():
    made = []

    def make(n=1, handler=EchoHandler, names=None):
        out = [Backend(names[i] if names else f"b{i}", handler) for i in range(n)]
        made.extend(out)
        return out

    yield make
    for b in made:
        b.close()


class RawServer:
    """A TCP server whose behaviour per connection is a Python function: for
    backends that misbehave (garbage, resets, silence)."""

    def __init__(self, behave):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.behave = behave
        self.received = []
        self.conns = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(c)
            threading.Thread(target=self.run_one, args=(c,), daemon=True).start()

    def run_one(self, c):
        try:
            self.behave(self, c)
        except OSError:
            pass

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


@pytest.fixture
def raw_server():
    made = []

    def make(behave):
        s = RawServer(behave)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def read_head(sock):
    """Reads up to the end of a header section; returns the bytes."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def recv_until_close(sock):
    """Everything the peer sends until it closes; closes sock."""
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    finally:
        sock.close()
    return out


def raw_request(port, data, timeout=10):
    """Sends raw bytes, returns everything the server sent until it closed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    return recv_until_close(s)


class SteadyLoad:
    """Client threads sending GET path until stop(): half on keep-alive
    connections, half on a new connection per request. Anything but a 200,
    or a connection error, counts as bad. With retry_reused, a request whose
    reused keep-alive connection closes before any byte of the response is
    sent again on a new one, as browsers, curl and HTTP libraries do (RFC
    9112, 9.3.1): the server may close an idle connection at any time."""

    def __init__(self, port, path="/", threads=4, retry_reused=False):
        self.port, self.path, self.retry_reused = port, path, retry_reused
        self.ok = self.bad = self.retried = 0
        self.why = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i % 2 == 0,))
                        for i in range(threads)]
        for t in self.threads:
            t.start()

    def count(self, what, why=None):
        with self.lock:
            setattr(self, what, getattr(self, what) + 1)
            if why is not None:
                self.why.append(why)

    def run(self, keep_alive):
        conn, reused = None, False
        while not self.stopping.is_set():
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                    reused = False
                conn.request("GET", self.path)
                r = conn.getresponse()
                r.read()
                self.count("ok") if r.status == 200 else self.count("bad", r.status)
                reused = True
                if not keep_alive or r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError) as e:
                if self.retry_reused and reused:
                    self.count("retried")
                else:
                    self.count("bad", repr(e))
                conn.close()
                conn = None
            except (OSError, http.client.HTTPException) as e:
                self.count("bad", repr(e))
                conn = None
        if conn is not None:
            conn.close()

    def wait_more(self, n, what="load goes on"):
        start = self.ok
        wait_for(lambda: self.ok >= start + n, what=what)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join()
        assert self.bad == 0, self.why[:10]
