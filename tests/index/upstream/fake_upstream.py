"""A tiny upstream index on loopback (the standard library's http.server in a thread) that
answers what a test tells it to, lies included, and records every request it gets.

For what a real index does not do on demand: send bytes that do not match its page, fail
with a 500, redirect to file:, or only speak PEP 503 HTML. The end-to-end tests use a real
Relatch as the upstream instead (test_upstream_install.py).
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/octet-stream"
    etag: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False  # no Content-Length: the body ends with the connection


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class FakeUpstream:
    """Routes by path; every request in ``seen``. ``url`` is the simple API's root."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = self.base + "/simple/"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (the name http.server calls)
                upstream.seen.append(Seen(self.path, dict(self.headers.items())))
                route = upstream.routes.get(self.path, Route(404, b"Not Found\n", "text/plain"))
                if route.etag and self.headers.get("If-None-Match") == route.etag:
                    self.send_response(304)
                    self.send_header("ETag", route.etag)
                    self.end_headers()
                    return
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                if route.chunked:
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", str(len(route.body)))
                if route.etag:
                    self.send_header("ETag", route.etag)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        return Handler

    def requests_for(self, fragment: str) -> list[Seen]:
        return [seen for seen in self.seen if fragment in seen.path]

    @contextmanager
    def running(self) -> Iterator["FakeUpstream"]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
            thread.join()
