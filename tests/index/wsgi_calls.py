"""Requests made the way gunicorn makes them: a WSGI environ handed to an application.

Django's test client builds its own handler from settings.MIDDLEWARE, so tests of what
``relatch.wsgi.application`` adds in front of it (the lean path, the kept responses) call it
with an environ instead.
"""

import io
import sys
from collections.abc import Callable, Iterable
from typing import Any

type WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def environ(path: str, method: str = "GET", host: str = "testserver", query: str = "",
            **headers: str) -> dict[str, Any]:
    """What gunicorn hands the application for one request."""
    env: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": query,
        "SERVER_NAME": "testserver", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": host, "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr,
    }
    env.update({"HTTP_" + name.upper().replace("-", "_"): value
                for name, value in headers.items()})
    return env


def call_app(app: WSGIApp, path: str, method: str = "GET", host: str = "testserver",
             query: str = "", **headers: str) -> tuple[int, dict[str, list[str]], bytes]:
    """Status, headers (each name, lowercased, with all its values) and body of one request."""
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]],
                       exc_info: Any = None) -> None:
        seen["status"] = int(status.split()[0])
        seen["headers"] = {}
        for name, value in response_headers:
            seen["headers"].setdefault(name.lower(), []).append(value)

    chunks = app(environ(path, method, host, query, **headers), start_response)
    try:
        body = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return seen["status"], seen["headers"], body


class Counted:
    """A WSGI application passed through, counting the requests that reached it."""

    def __init__(self, app: WSGIApp) -> None:
        self.app, self.calls = app, 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        self.calls += 1
        return self.app(environ, start_response)


class FakeClock:
    """A monotonic clock that moves only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
