"""A lean request path for installers: pip, uv and twine's downloads of index pages and files.

Installers send no cookies and the installer views read neither the session nor the user, yet
the full middleware stack loads a session, checks CSRF, resolves the user and prepares messages
for each of their requests: most of the cost of serving a cached page. ``InstallerFastPath``
wraps the WSGI application and sends GET and HEAD requests for views marked with
``installer_view`` through a second Django handler built from ``settings.MIDDLEWARE`` minus
that browser-session machinery. Everything else (host validation, security headers, CSP, the
access log, which gunicorn writes) stays: the lean stack is the full one with named parts
removed, so a middleware added to settings later applies to installers too unless it is
listed here.
"""

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler, get_path_info
from django.urls import Resolver404, resolve
from django.utils.module_loading import import_string

# Middleware that only serves signed-in browsers. Each is safe to skip for an installer view:
# the views decide who reads themselves (login_not_required; relatch.index.simple.access),
# are read-only (GET/HEAD, so CSRF never applies), read request.user only when the full stack
# set it (a request with a session cookie never takes this path), and set no cookie.
BROWSER_ONLY_MIDDLEWARE = frozenset({
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "relatch.accounts.sessions.middleware.SessionTrackingMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "relatch.accounts.emails.middleware.RequireVerifiedEmailMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Serves STATIC_URL only, which no installer view lives under.
    "whitenoise.middleware.WhiteNoiseMiddleware",
})
SAFE_METHODS = frozenset({"GET", "HEAD"})

type WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def installer_view[F: Callable[..., Any]](view: F) -> F:
    """Mark a public, read-only view that uses no session, user, messages or cookies, so its
    GET and HEAD requests may take the lean path."""
    view.installer_view = True  # type: ignore[attr-defined]
    return view


def lean_middleware(middleware: Iterable[str]) -> list[str]:
    """``middleware`` in order, without the browser-only entries."""
    return [path for path in middleware if path not in BROWSER_ONLY_MIDDLEWARE]


class InstallerHandler(WSGIHandler):
    """Django's WSGI handler (signals, database connections, error pages, request logging)
    whose middleware chain is ``lean_middleware(settings.MIDDLEWARE)``."""

    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler.load_middleware reads settings.MIDDLEWARE itself; this is its synchronous
        # half over another list (every middleware in the project is synchronous).
        self._view_middleware: list[Callable[..., Any]] = []
        self._template_response_middleware: list[Callable[..., Any]] = []
        self._exception_middleware: list[Callable[..., Any]] = []
        handler = convert_exception_to_response(self._get_response)  # type: ignore[attr-defined]
        for path in reversed(lean_middleware(settings.MIDDLEWARE)):
            factory = import_string(path)
            if not getattr(factory, "sync_capable", True):
                raise RuntimeError(f"{path} cannot run synchronously")
            try:
                instance = factory(handler)
            except MiddlewareNotUsed:
                continue
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler


def carries_session(environ: dict[str, Any]) -> bool:
    """Whether the request may carry a browser session: a signed-in browser reads private
    projects (relatch.index.simple.access), which needs the session and user middleware.
    A cheap text test; a false positive only costs the full stack. Installers send no
    cookies, so their requests stay lean."""
    return settings.SESSION_COOKIE_NAME in environ.get("HTTP_COOKIE", "")


def is_installer_request(environ: dict[str, Any]) -> bool:
    """A GET or HEAD without a session cookie whose path resolves to a view marked
    ``installer_view``."""
    if environ.get("REQUEST_METHOD") not in SAFE_METHODS or carries_session(environ):
        return False
    try:
        match = resolve(get_path_info(environ))
    except Resolver404:
        return False
    return bool(getattr(match.func, "installer_view", False))


class InstallerFastPath:
    """WSGI application: installer requests to ``lean``, every other request to ``full``."""

    def __init__(self, full: WSGIApp, lean: WSGIApp) -> None:
        self.full, self.lean = full, lean

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        app = self.lean if is_installer_request(environ) else self.full
        return app(environ, start_response)
