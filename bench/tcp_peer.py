#!/usr/bin/python3
"""Both ends of bench part 6 (TCP mode): a server that sends or swallows a number of bytes,
and the client that asks it to, through a proxy or directly.

  tcp_peer.py serve PORT           the server, on 127.0.0.1:PORT, until killed
  tcp_peer.py down|up PORT BYTES   one transfer as the client; prints seconds taken

A client sends 9 bytes: b"D" or b"U" and the size (8 bytes, big-endian). For "D" the server
sends that many bytes and closes; for "U" the client sends them, shuts its sending side, and
the server answers with the count it received. Both ends move bytes with one system call per
4 MiB buffer (sendall of a memoryview, recv_into a bytearray), so the copies happen in the
kernel and Python's own cost is a few microseconds per call: the proxy in between is the
slow part. Python 3 standard library only."""
import socket
import struct
import sys
import threading
import time

CHUNK = 4 << 20


def _recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _swallow(conn, buf):
    """Reads until the peer's end; returns the byte count."""
    view, total = memoryview(buf), 0
    while True:
        n = conn.recv_into(view)
        if n == 0:
            return total
        total += n


def _send(conn, size, view):
    left = size
    while left > 0:
        n = min(left, len(view))
        conn.sendall(view[:n])
        left -= n


def _serve_one(conn, view, buf):
    with conn:
        head = _recv_exact(conn, 9)
        if head is None:  # a port probe, or a proxy's health check
            return
        kind, size = head[:1], struct.unpack("!Q", head[1:])[0]
        if kind == b"D":
            _send(conn, size, view)
            conn.shutdown(socket.SHUT_WR)
            _swallow(conn, buf)  # until the client closes: no reset under its last bytes
        elif kind == b"U":
            conn.sendall(struct.pack("!Q", _swallow(conn, buf)))


def serve(port):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(128)
    view = memoryview(bytes(CHUNK))
    while True:
        conn, _ = srv.accept()
        # One thread per connection: a probe that never sends must not hold up the rest.
        threading.Thread(target=_serve_one, args=(conn, view, bytearray(CHUNK)),
                         daemon=True).start()


def transfer(port, kind, size):
    """One transfer through 127.0.0.1:port; returns seconds from connect to the last byte.
    Raises RuntimeError when a byte is missing."""
    buf = bytearray(CHUNK)
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
        s.sendall((b"D" if kind == "down" else b"U") + struct.pack("!Q", size))
        if kind == "down":
            got = _swallow(s, buf)
        else:
            _send(s, size, memoryview(bytes(CHUNK)))
            s.shutdown(socket.SHUT_WR)
            answer = _recv_exact(s, 8)
            got = struct.unpack("!Q", answer)[0] if answer else -1
    secs = time.perf_counter() - t0
    if got != size:
        raise RuntimeError(f"{kind}: {got} of {size} bytes arrived")
    return secs


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] in ("down", "up"):
        print(f"{transfer(int(sys.argv[2]), sys.argv[1], int(sys.argv[3])):.3f}")
    else:
        sys.exit(__doc__)
