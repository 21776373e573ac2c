"""A threaded WSGI server that keeps HTTP/1.1 connections open, as AWS endpoints do.

werkzeug's development server closes every connection after one response, so a client against the emulator paid a
TCP connect per call (one per ListJobs page) that it never pays against AWS: the benchmarks measured that, not the
client. This server reads each request by its Content-Length, answers with a Content-Length, and serves the next
request on the same connection. Stopping it closes the open connections too, so "the endpoint went down" means
what it says for clients holding pooled connections.
"""

from __future__ import annotations

import contextlib
import io
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class KeepAliveHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: KeepAliveServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no access log line per request

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, Nagle's algorithm holds the body back until the
        # client's delayed ACK (about 40 ms a call) on a connection that stays open
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.closed(self.connection)

    def _serve(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "PATH_INFO": unquote(url.path),
            "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "werkzeug.socket": self.connection,  # what the app's "drop" fault shuts down
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = value
        answer: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            answer[:] = [status, headers]

        payload = b"".join(self.server.app(environ, start_response))
        status, headers = answer
        code, _, reason = status.partition(" ")
        try:
            self.send_response(int(code), reason)
            for name, value in headers:
                if name.lower() not in ("content-length", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the app shut the connection down (a "drop" fault)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _serve


class KeepAliveServer(ThreadingHTTPServer):
    """Serves ``app``; :meth:`server_close` also closes the connections still open."""

    daemon_threads = True

    def __init__(self, host: str, port: int, app: WSGIApp) -> None:
        self.app = app
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        super().__init__((host, port), KeepAliveHandler)

    def opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._open.add(connection)

    def closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._open.discard(connection)

    def server_close(self) -> None:
        super().server_close()
        with self._lock:
            connections, self._open = self._open, set()
        for connection in connections:
            with contextlib.suppress(OSError):  # already gone
                connection.shutdown(socket.SHUT_RDWR)
