"""A TLS-terminating reverse proxy on loopback, in front of a test's ``relatch serve``.

Trusted-publishing clients reach the index over https only: uv and pypa/gh-action-pypi-publish
build ``https://<host of the upload URL>/_/oidc/…`` whatever the upload URL's scheme. So the
end-to-end tests serve Relatch as an operator does, behind a proxy that speaks TLS (a
certificate from ``tests.tls.TestCA``) and forwards plain HTTP to ``relatch serve``, adding
``X-Forwarded-Proto: https`` and ``X-Forwarded-For`` (start the server with
``RELATCH_PROXY_COUNT=1``). Standard library only; request bodies sent chunked (as uv may send
an upload) are forwarded with a Content-Length.
"""

import http.client
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.tls import TestCA

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate", "content-length"}


class TLSProxy(http.server.ThreadingHTTPServer):
    """Listens on https://localhost:``port``; forwards to 127.0.0.1:``backend`` (set it once
    the backend is up: the proxy's port must be known first, for RELATCH_BASE_URL)."""

    daemon_threads = True

    def __init__(self, ca: TestCA) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        context = ca.server_context("localhost", "127.0.0.1")
        # The handshake runs in the handler's thread, so a stalled client blocks no one else.
        self.socket = context.wrap_socket(self.socket, server_side=True,
                                          do_handshake_on_connect=False)
        self.port = int(self.server_address[1])
        self.url = f"https://localhost:{self.port}"
        self.backend = 0
        # Every (method, path) forwarded, for tests that check what a client asked for.
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def note(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))


class _Handler(http.server.BaseHTTPRequestHandler):
    server: TLSProxy
    protocol_version = "HTTP/1.1"

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk

    def _forward(self) -> None:
        self.server.note(self.command, self.path)
        body = self._body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        headers["X-Forwarded-Proto"] = "https"
        headers["X-Forwarded-For"] = self.client_address[0]
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.backend, timeout=120)
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            payload = answer.read()
            self.send_response(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        finally:
            upstream.close()

    do_GET = do_HEAD = do_POST = _forward  # noqa: N815 (the names http.server calls)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        pass


@contextmanager
def tls_proxy(ca: TestCA) -> Iterator[TLSProxy]:
    """A running proxy; set ``.backend`` before sending it requests."""
    proxy = TLSProxy(ca)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True, name="tls-proxy")
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=5)
