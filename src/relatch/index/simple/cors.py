"""Cross-origin reads of the installer APIs, and the serial header, as PyPI sends them.

``Access-Control-Allow-Origin: *`` lets a web page read /simple/, /pypi/ JSON and /files/
(PyPI allows the same, so browser tools and dashboards work). ``*`` never carries
credentials: a browser sends no cookie or Authorization header with such a request, or, if
a page asks it to, refuses to hand the answer to the page. A private project's answer
therefore never reaches another site's script.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponseBase

SERIAL_HEADER = "X-PyPI-Last-Serial"
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    # A script may read the serial (PyPI exposes the same one header).
    "Access-Control-Expose-Headers": SERIAL_HEADER,
}


def allow_any_origin[F: Callable[..., HttpResponseBase]](view: F) -> F:
    """Add the CORS headers to every answer of ``view``: pages, 304s, 404s, redirects."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        for name, value in CORS_HEADERS.items():
            response[name] = value
        return response

    return wrapper  # type: ignore[return-value]


def with_serial[R: HttpResponseBase](response: R, serial: int) -> R:
    """``X-PyPI-Last-Serial``: the project's (or, for /simple/, the index's) latest change."""
    response[SERIAL_HEADER] = str(serial)
    return response
