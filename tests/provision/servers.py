"""Local servers for the tests: an HTTPS server for MISP's and the dashboard's health paths, and a file server.

Certificates come from the shared helper tests.servers.tls.
"""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.servers.tls import Certificates


class _Health(http.server.BaseHTTPRequestHandler):
    paths = ("/users/heartbeat", "/healthz")

    def do_GET(self) -> None:
        status = 200 if self.path in self.paths else 404
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: object) -> None:
        return None


@contextmanager
def https_server(tls: Certificates) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 answering MISP's and the dashboard's health paths; yields its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert, tls.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def file_server(files: dict[str, bytes]) -> Iterator[str]:
    """Plain HTTP on 127.0.0.1 serving ``files`` by path; yields the base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *_args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
