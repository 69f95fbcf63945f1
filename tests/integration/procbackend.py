"""A backend in its own process, so that a test can SIGKILL or SIGSTOP it:
HTTP/1.1 keep-alive, answers every request with {"server": NAME}.
Usage: procbackend.py NAME; prints its port on stdout once it listens."""
import http.server
import json
import socketserver
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        # Head and body in one write: a SIGKILL between two writes would send
        # a head without its body, a failure no proxy can hide once the head
        # has gone on to the client (the tests kill these servers at random).
        out = json.dumps({"server": sys.argv[1], "path": self.path}).encode()
        head = ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\n\r\n" % len(out)).encode()
        self.wfile.write(head + (out if self.command != "HEAD" else b""))

    do_HEAD = do_GET


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 128


srv = Server(("127.0.0.1", 0), Handler)
print(srv.server_address[1], flush=True)
srv.serve_forever()
