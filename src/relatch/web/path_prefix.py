"""Relatch under a path (RELATCH_BASE_URL=https://example.org/pypi) behind a reverse proxy.

``PathPrefix`` wraps the WSGI application and makes the base URL's path every request's
SCRIPT_NAME, so Django's ``reverse``, redirects (PEP 503's, the login wall's), STATIC_URL and
the index pages' links (``get_script_prefix``) carry it. Taken from settings, never from the
request: a client cannot move the site's links elsewhere.

Proxies do one of two things, and both work:

- strip the prefix (nginx ``proxy_pass http://relatch/;``): PATH_INFO arrives as ``/simple/``;
- pass it through (``proxy_pass http://relatch;``): PATH_INFO arrives as ``/pypi/simple/``,
  and the prefix is taken off here.

When a prefix is also the first segment of one of Relatch's own paths (``/pypi`` and the
JSON API's ``/pypi/<project>/json``), a path that starts with it could be either; it is read
as prefixed unless only the unprefixed reading names a page.

Outside requests (the worker's mail) the script prefix stays "/": links built there as
``BASE_URL + reverse(...)`` get the prefix once, from BASE_URL. Inside a request ``reverse``
already carries it, so an absolute link built there goes through ``site_url``.
"""

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.urls import Resolver404, get_script_prefix, resolve

type WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _resolves(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def local_path(path: str, prefix: str) -> str:
    """``path`` below ``prefix``: the prefix taken off when the request carries it."""
    if path == prefix:
        return "/"
    if not path.startswith(prefix + "/"):
        return path  # the proxy stripped it already
    below = path[len(prefix):]
    if _resolves(below) or not _resolves(path):
        return below
    return path  # e.g. /pypi/<project>/json from a proxy that stripped the prefix /pypi


def site_path(path: str) -> str:
    """``path`` from ``reverse`` without the script prefix a request gives it: what a mail
    context keeps for ``{{ base_url }}{{ path }}``, which is rendered later in the worker
    (script prefix "/") or in a request (the prefix) and so must not depend on either."""
    current = get_script_prefix().rstrip("/")
    if current and path.startswith(current + "/"):
        return path[len(current):]
    return path


def site_url(path: str) -> str:
    """The absolute URL of ``path`` from ``reverse``, in a request or outside one: BASE_URL
    (which ends with the site's path) and the path below it, the prefix never twice."""
    return settings.BASE_URL + site_path(path)


class PathPrefix:
    """WSGI application: ``app`` served under ``prefix`` ("/pypi"; no trailing slash)."""

    def __init__(self, app: WSGIApp, prefix: str) -> None:
        self.app, self.prefix = app, prefix

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        environ["SCRIPT_NAME"] = self.prefix
        # Django reads these (Apache's mod_rewrite) before SCRIPT_NAME: the setting decides.
        environ.pop("SCRIPT_URL", None)
        environ.pop("REDIRECT_URL", None)
        environ["PATH_INFO"] = local_path(environ.get("PATH_INFO", ""), self.prefix)
        return self.app(environ, start_response)
