"""The installer fast path (relatch.wsgi.application): index pages, files and PyPI's JSON skip
the browser-session middleware, and lose none of the protections the full stack gives them.

These tests call the WSGI application ``relatch serve`` runs, with a WSGI environ, because
Django's test client builds its own handler from settings.MIDDLEWARE and would not go through
the fast path at all. The handler closes the database connection after each request, as in
production, so the tests commit their rows (transaction=True).
"""

from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from relatch.index.models import File
from relatch.index.simple.lean import (
    BROWSER_ONLY_MIDDLEWARE,
    InstallerHandler,
    is_installer_request,
    lean_middleware,
)
from relatch.wsgi import application
from tests.conftest import sign_in
from tests.index.dists import build_wheel
from tests.index.simple_rows import publish
from tests.index.wsgi_calls import call_app, environ

pytestmark = pytest.mark.django_db(transaction=True)
JSON = "application/vnd.pypi.simple.v1+json"
# Set by the full stack on every page; an installer response must carry each one too.
SECURITY_HEADERS = (
    "X-Content-Type-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy",
    "X-Frame-Options", "Content-Security-Policy",
)



def call(path: str, method: str = "GET", host: str = "testserver", **headers: str
         ) -> tuple[int, dict[str, list[str]], bytes]:
    return call_app(application, path, method, host, **headers)


def test_installer_pages_keep_every_security_header_and_vary_only_on_accept() -> None:
    file = publish(build_wheel())
    for path, accept in [("/simple/", "text/html"), ("/simple/sample-pkg/", "text/html"),
                         ("/simple/sample-pkg/", JSON), ("/pypi/sample-pkg/json", "*/*"),
                         (f"/files/{file.path}", "*/*")]:
        status, headers, _ = call(path, accept=accept)
        assert status == 200, path
        for name in SECURITY_HEADERS:
            assert name.lower() in headers, (path, name)
        # No session was read: responses are the same for everyone, so shared caches may
        # keep one copy (no "Vary: Cookie") and nothing sets a cookie.
        assert "cookie" not in ", ".join(headers.get("vary", [])).lower(), path
        assert "set-cookie" not in headers, path


def test_the_full_stack_still_serves_every_other_page() -> None:
    status, headers, _ = call("/account/login/")
    assert status == 200
    assert "Cookie" in ", ".join(headers["vary"])  # the session and CSRF machinery ran


def test_a_browser_session_is_neither_read_nor_renewed_on_installer_pages(user: Any) -> None:
    wheel = publish(build_wheel())
    browser = sign_in(Client(), user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    status, headers, body = call("/simple/sample-pkg/", cookie=cookie)
    assert status == 200
    assert wheel.filename.encode() in body  # the same page an installer gets
    assert "set-cookie" not in headers


def test_an_unknown_host_is_refused_on_the_fast_path_too() -> None:
    """Host-header validation (the CommonMiddleware's get_host) stays on installer paths."""
    publish(build_wheel())
    status, _, _ = call("/simple/sample-pkg/", host="evil.example")
    assert status == 400


def test_pages_and_files_are_the_same_bytes_on_both_paths() -> None:
    file = publish(build_wheel())
    for path in ("/simple/", "/simple/sample-pkg/", f"/files/{file.path}",
                 f"/files/{file.path}.metadata"):
        _, _, fast = call(path)
        full = Client().get(path)
        content = (b"".join(full.streaming_content) if full.streaming else full.content)
        assert fast == content, path


def test_a_download_has_its_length_digest_tag_and_immutable_caching() -> None:
    dist = build_wheel()
    file = publish(dist)
    status, headers, body = call(f"/files/{file.path}")
    assert status == 200
    assert body == dist.content
    assert headers["content-length"] == [str(len(dist.content))]
    assert headers["etag"] == [f'"{dist.sha256}"']
    assert headers["cache-control"] == ["public, max-age=31536000, immutable"]
    status, _, body = call(f"/files/{file.path}", if_none_match=f'"{dist.sha256}"')
    assert (status, body) == (304, b"")


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("GET", "/simple/", True),
    ("HEAD", "/simple/sample-pkg/", True),
    ("GET", "/files/packages/ab/sample_pkg-1.0-py3-none-any.whl", True),
    ("GET", "/pypi/sample-pkg/json", True),
    ("GET", "/pypi/sample-pkg/1.0/json", True),
    ("POST", "/simple/sample-pkg/", False),  # a write: CSRF and the rest apply
    ("PUT", "/files/x.whl", False),
    ("GET", "/project/sample-pkg/", False),  # a page for people, with the signed-in header
    ("GET", "/account/login/", False),
    ("GET", "/legacy/", False),
    ("GET", "/simple", False),  # no such view: the full stack answers (redirect or 404)
    ("GET", "/no/such/page/", False),
])
def test_only_reads_of_installer_views_take_the_fast_path(
    method: str, path: str, expected: bool
) -> None:
    assert is_installer_request(environ(path, method)) is expected


def test_the_lean_stack_is_the_full_one_minus_the_browser_machinery() -> None:
    lean = lean_middleware(settings.MIDDLEWARE)
    assert lean == [m for m in settings.MIDDLEWARE if m not in BROWSER_ONLY_MIDDLEWARE]
    for kept in ("django.middleware.security.SecurityMiddleware",
                 "django.middleware.common.CommonMiddleware",
                 "django.middleware.csp.ContentSecurityPolicyMiddleware",
                 "django.middleware.clickjacking.XFrameOptionsMiddleware"):
        assert kept in lean


@pytest.mark.parametrize("name", sorted(BROWSER_ONLY_MIDDLEWARE))
def test_each_skipped_middleware_is_one_the_settings_run(name: str) -> None:
    """A middleware renamed or moved in settings must be reviewed here too: a stale name in
    the skip list would quietly skip nothing, and the renamed one would run for installers
    without anyone having judged whether it should."""
    assert name in settings.MIDDLEWARE


def test_the_lean_handler_runs_the_kept_middleware() -> None:
    """Built from the lean list, the handler still adds what each kept middleware adds."""
    publish(build_wheel())
    handler = InstallerHandler()
    seen: dict[str, Any] = {}
    body = b"".join(handler(environ("/simple/"), lambda s, h: seen.update(s=s, h=dict(h))))
    assert seen["s"].startswith("200")
    assert b"sample-pkg" in body
    assert seen["h"]["X-Frame-Options"] == "DENY"  # XFrameOptionsMiddleware
    assert "default-src 'none'" in seen["h"]["Content-Security-Policy"]  # CSP middleware


def test_a_lost_file_is_404_not_500_on_the_fast_path() -> None:
    file = publish(build_wheel())
    File.objects.filter(pk=file.pk).update(path="packages/gone/sample_pkg-0.1.whl")
    status, _, _ = call("/files/packages/gone/sample_pkg-0.1.whl")
    assert status == 404
