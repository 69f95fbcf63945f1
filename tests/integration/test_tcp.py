"""TCP mode (protocol: tcp listeners) through the real binary: a pool of echo
servers behind a tcp listener; balancing, byte-exact relaying of large
transfers, half-close both ways, dead servers skipped, PROXY protocol
headers, the idle timeout and shutdown."""
import fcntl
import hashlib
import ipaddress
import os
import socket
import struct
import termios
import threading

import pytest

from conftest import free_port, wait_for

CONF = """
workers: 1
listeners:
  - name: web
    address: 127.0.0.1:{port}
  - name: pool
    address: 127.0.0.1:%(tcp_port)d
    protocol: tcp
    upstream: echo
%(listener_extra)s
access_log: { path: none }
timeouts: { drain: %(drain)s%(timeouts)s }
upstreams:
  echo:
    balance: %(balance)s
%(upstream_extra)s
    servers:
%(servers)s
routes:
  - { name: health, match: { path: /healthz }, respond: { status: 200, body: "ok" } }
"""


def config(tcp_port, ports, balance="round_robin", listener_extra="", timeouts="", drain="2s",
           upstream_extra=""):
    servers = "\n".join("      - { address: 127.0.0.1:%d }" % p for p in ports)
    return CONF % dict(tcp_port=tcp_port, balance=balance, servers=servers,
                       listener_extra=listener_extra, timeouts=timeouts, drain=drain,
                       upstream_extra=upstream_extra)


def echo(server, conn):
    """Sends back every byte, then closes once the client has finished."""
    while True:
        data = conn.recv(1 << 20)
        if not data:
            break
        conn.sendall(data)
    conn.close()


def start(junction, server_ports, **kw):
    """Junction with the tcp listener in front of server_ports. Only the http
    listener is probed for start-up (a probe of the tcp one would be relayed
    to a server and counted there); both are open before any worker runs."""
    tcp_port = free_port()
    j = junction(config(tcp_port, server_ports, **kw))
    j.tcp = tcp_port
    return j


def start_pool(junction, servers, **kw):
    return start(junction, [s.port for s in servers], **kw)


def connect(j, timeout=20):
    return socket.create_connection(("127.0.0.1", j.tcp), timeout=timeout)


def read_to_eof(sock):
    out = bytearray()
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            return bytes(out)
        out += chunk


def echo_once(j, payload):
    with connect(j) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        return read_to_eof(s)


def test_round_robin_spreads_connections_over_the_echo_pool(junction, raw_server):
    pool = [raw_server(echo) for _ in range(3)]
    j = start_pool(junction, pool)
    for i in range(30):
        assert echo_once(j, b"ping %d" % i) == b"ping %d" % i
    assert [len(s.conns) for s in pool] == [10, 10, 10]


def test_http_listener_beside_a_tcp_listener_still_routes(junction, raw_server):
    j = start_pool(junction, [raw_server(echo)])
    with socket.create_connection(("127.0.0.1", j.ports[0]), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_to_eof(s).endswith(b"\r\n\r\nok")


def test_large_transfer_both_ways_is_byte_exact(junction, raw_server):
    j = start_pool(junction, [raw_server(echo)])
    data = os.urandom(64 << 20)
    received = []
    with connect(j, timeout=60) as s:
        def send():
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        sender = threading.Thread(target=send)
        sender.start()
        received.append(read_to_eof(s))  # read while sending: the echo needs room
        sender.join()
    got = received[0]
    assert len(got) == len(data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_client_half_close_reaches_the_server_and_the_answer_still_arrives(junction,
                                                                        raw_server):
    def answer_after_eof(server, conn):
        got = read_to_eof(conn)  # ends only if Junction passed the client's FIN on
        conn.sendall(b"received %d bytes: " % len(got) + got[::-1])
        conn.close()
    j = start_pool(junction, [raw_server(answer_after_eof)])
    with connect(j) as s:
        s.sendall(b"abcdef")
        s.shutdown(socket.SHUT_WR)
        assert read_to_eof(s) == b"received 6 bytes: fedcba"


def test_server_half_close_reaches_the_client_which_can_still_send(junction, raw_server):
    late = []

    def banner_then_listen(server, conn):
        conn.sendall(b"banner")
        conn.shutdown(socket.SHUT_WR)
        late.append(read_to_eof(conn))
        conn.close()
    j = start_pool(junction, [raw_server(banner_then_listen)])
    with connect(j) as s:
        assert read_to_eof(s) == b"banner"  # the server's FIN arrived
        s.sendall(b"still talking")
        s.shutdown(socket.SHUT_WR)
        assert read_to_eof(s) == b""  # Junction closes once both ways are done
    wait_for(lambda: late, what="the server to see the client's bytes and FIN")
    assert late == [b"still talking"]


def unacked(conn):
    """Bytes of conn's send queue its peer has not acknowledged yet."""
    return struct.unpack("i", fcntl.ioctl(conn.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


@pytest.mark.parametrize("size", [256 << 10, 4 << 20])
def test_answer_sent_before_a_server_reset_still_reaches_the_client(junction, raw_server, size):
    # 256 KiB: all of it read from the server when the reset comes, part still in
    # Junction's pipe; 4 MiB: part still in the kernel's buffers, read after the reset.
    answer = os.urandom(size)
    reset = threading.Event()

    def answer_then_reset(server, conn):
        conn.recv(100)
        conn.sendall(answer)
        wait_for(lambda: unacked(conn) == 0, what="Junction to receive the whole answer")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # with linger 0: a reset, not a FIN
        reset.set()
    j = start_pool(junction, [raw_server(answer_then_reset)])
    with connect(j) as s:
        s.sendall(b"question")
        reset.wait(20)  # most of the answer waits in Junction while the client reads nothing
        assert read_to_eof(s) == answer


def test_a_server_reset_ends_the_tunnel_and_frees_its_slot(junction, raw_server):
    """The client keeps its side open: only the reset can end the tunnel, and
    a second client gets the one connection slot only once it has."""
    def hello_then_reset(server, conn):
        conn.recv(10)  # the client's byte: Junction is relaying, past its connect
        conn.sendall(b"hi")
        wait_for(lambda: unacked(conn) == 0, what="Junction to receive the greeting")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    srv = raw_server(hello_then_reset)
    j = start_pool(junction, [srv], upstream_extra="    limits: { max_connections: 1, "
                                                   "max_pending: 1, queue_timeout: 20s }")
    with connect(j) as first:
        first.sendall(b"?")
        assert read_to_eof(first) == b"hi"
        with connect(j) as second:  # first is still open on the client's side
            second.sendall(b"?")
            assert read_to_eof(second) == b"hi"
    assert len(srv.conns) == 2


def test_dead_server_is_skipped_without_a_failed_connection(junction, raw_server):
    live = [raw_server(echo), raw_server(echo)]
    dead = free_port()  # nothing listens there
    j = start(junction, [live[0].port, dead, live[1].port])
    for i in range(30):
        assert echo_once(j, b"hello %d" % i) == b"hello %d" % i
    assert sum(len(s.conns) for s in live) == 30
    assert "connect to 127.0.0.1:%d failed" % dead in j.stderr()


def test_outlier_ejection_stops_connects_to_a_dead_server(junction, raw_server):
    live = raw_server(echo)
    dead = free_port()
    j = start(junction, [live.port, dead],
              upstream_extra="    outlier: { consecutive_failures: 2 }")
    for i in range(24):
        assert echo_once(j, b"%d" % i) == b"%d" % i
    err = j.stderr()
    assert err.count("connect to 127.0.0.1:%d failed" % dead) == 2, err
    assert "ejected" in err
    assert len(live.conns) == 24


def concurrency_tracking(server, conn):
    """echo, counting the connections open at once on the server (a connection
    leaves the count before it is closed: Junction may open the next one as
    soon as it sees the close)."""
    with server.lock:
        server.active += 1
        server.most = max(server.most, server.active)
    try:
        while True:
            data = conn.recv(1 << 16)
            if not data:
                break
            conn.sendall(data)
    finally:
        with server.lock:
            server.active -= 1
        conn.close()


def tracked(raw_server):
    srv = raw_server(concurrency_tracking)
    srv.lock, srv.active, srv.most = threading.Lock(), 0, 0
    return srv


def test_connection_limit_queues_a_tunnel_until_a_slot_frees(junction, raw_server):
    srv = tracked(raw_server)
    j = start_pool(junction, [srv], upstream_extra="    limits: { max_connections: 1, "
                                                   "max_pending: 1, queue_timeout: 20s }")
    first = connect(j)
    first.sendall(b"first")
    assert first.recv(10) == b"first"
    with connect(j) as second:
        second.sendall(b"second")  # waits in the queue while first holds the slot
        first.close()
        assert second.recv(10) == b"second"
    assert srv.most == 1 and len(srv.conns) == 2


def test_connection_limit_without_a_queue_closes_the_connection(junction, raw_server):
    srv = tracked(raw_server)
    j = start_pool(junction, [srv], upstream_extra="    limits: { max_connections: 1 }")
    with connect(j) as first:
        first.sendall(b"first")
        assert first.recv(10) == b"first"
        with connect(j) as second:
            try:
                assert second.recv(10) == b""
            except ConnectionResetError:
                pass
        assert "connection limit reached" in j.stderr()
    assert srv.most == 1 and len(srv.conns) == 1


@pytest.mark.parametrize("balance", ["least_conn", "p2c"])
def test_load_aware_balancers_count_open_tunnels(junction, raw_server, balance):
    pool = [raw_server(echo) for _ in range(2)]
    j = start_pool(junction, pool, balance=balance)
    held = connect(j)
    held.sendall(b"held")
    assert held.recv(10) == b"held"  # open, and counted on its server
    busy = [len(s.conns) for s in pool].index(1)
    # A client sees the end of its tunnel only once Junction closed it and
    # stopped counting it, so each of these finds the other server idle.
    for i in range(10):
        assert echo_once(j, b"short %d" % i) == b"short %d" % i
    held.close()
    assert len(pool[busy].conns) == 1 and len(pool[1 - busy].conns) == 10


def test_ip_hash_keeps_a_client_on_one_server(junction, raw_server):
    pool = [raw_server(echo) for _ in range(3)]
    j = start_pool(junction, pool, balance="ip_hash")
    for i in range(12):
        assert echo_once(j, b"x") == b"x"
    assert sorted(len(s.conns) for s in pool) == [0, 0, 12]


def recording(header_len):
    """A server that keeps what arrives before the client's bytes, then echoes."""
    def behave(server, conn):
        head = b""
        while len(head) < header_len(head):
            chunk = conn.recv(header_len(head) - len(head))
            if not chunk:
                break
            head += chunk
        server.received.append(head)
        echo(server, conn)
    return behave


def v1_length(head):
    return head.index(b"\r\n") + 2 if b"\r\n" in head else len(head) + 1


def v2_length(head):
    return 16 + struct.unpack("!H", head[14:16])[0] if len(head) >= 16 else 16


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_proxy_protocol_header_comes_first_and_exact(junction, raw_server, version):
    srv = raw_server(recording(v1_length if version == "v1" else v2_length))
    j = start_pool(junction, [srv], listener_extra="    proxy_protocol: " + version)
    with connect(j) as s:
        s.sendall(b"payload")
        s.shutdown(socket.SHUT_WR)
        assert read_to_eof(s) == b"payload"
        cip, cport = s.getsockname()
    if version == "v1":
        want = b"PROXY TCP4 %s 127.0.0.1 %d %d\r\n" % (cip.encode(), cport, j.tcp)
    else:
        want = (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", 12)
                + ipaddress.IPv4Address(cip).packed + ipaddress.IPv4Address("127.0.0.1").packed
                + struct.pack("!HH", cport, j.tcp))
    assert srv.received == [want]


def test_tunnel_idle_closes_a_silent_tunnel(junction, raw_server):
    j = start_pool(junction, [raw_server(echo)], timeouts=", tunnel_idle: 300ms")
    with connect(j) as s:
        s.sendall(b"hi")
        assert s.recv(10) == b"hi"
        assert s.recv(10) == b""  # the socket's own timeout only stops a broken run


def test_shutdown_closes_open_tunnels_and_exits_cleanly(junction, raw_server):
    j = start_pool(junction, [raw_server(echo)], drain="200ms")
    s = connect(j)
    s.sendall(b"hi")
    assert s.recv(10) == b"hi"
    assert j.stop() == 0
    assert s.recv(10) == b""  # cut at the drain deadline
    s.close()
    assert "drain timeout" in j.stderr()
