"""Relatch under a path behind a reverse proxy (RELATCH_BASE_URL=http://host/pypi): every link,
redirect, static file and cookie carries the prefix, whether the proxy strips it or passes
it through (relatch.web.path_prefix)."""

import http.client
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.urls import reverse, set_script_prefix

from relatch.index.simple.response_cache import ResponseCache, ResponseStore
from relatch.web.path_prefix import PathPrefix, local_path, site_url
from relatch.wsgi import application
from tests.index.dists import Dist, build_wheel
from tests.index.simple_rows import publish
from tests.index.wsgi_calls import Counted, call_app
from tests.serving import Server, free_port, running_server
from tests.test_settings import computed, settings_for

PREFIX = "/pypi"


@pytest.mark.parametrize(("path", "below"), [
    ("/pypi/simple/", "/simple/"),  # a proxy that passes the prefix through
    ("/simple/", "/simple/"),  # one that strips it
    ("/pypi", "/"),
    ("/pypi/", "/"),
    ("/pypi/pypi/sample-pkg/json", "/pypi/sample-pkg/json"),  # passed through
    ("/pypi/sample-pkg/json", "/pypi/sample-pkg/json"),  # stripped: only this reading exists
    ("/pypi/sample-pkg/1.0/json", "/pypi/sample-pkg/1.0/json"),
    ("/pypixel/", "/pypixel/"),  # not the prefix, only starts like it
    ("/pypi/no-such-page/", "/no-such-page/"),
])
def test_the_prefix_comes_off_when_the_request_carries_it(path: str, below: str) -> None:
    assert local_path(path, PREFIX) == below


PREFIX_SETTINGS = ("BASE_PATH", "STATIC_URL", "SESSION_COOKIE_NAME", "SESSION_COOKIE_PATH",
                   "CSRF_COOKIE_PATH")


@pytest.mark.own_database
@pytest.mark.parametrize(("base_url", "expected"), [
    ("https://example.org/pypi/", ["/pypi", "/pypi/static/", "__Secure-relatch-session",
                                   "/pypi", "/pypi"]),
    ("https://example.org/a/b", ["/a/b", "/a/b/static/", "__Secure-relatch-session",
                                 "/a/b", "/a/b"]),
    # A __Host- cookie must have Path=/: only a site at the root keeps that name.
    ("https://example.org/", ["", "/static/", "__Host-relatch-session", "/", "/"]),
    ("http://localhost:8000/pypi", ["/pypi", "/pypi/static/", "relatch-session",
                                    "/pypi", "/pypi"]),
])
def test_the_base_urls_path_sets_the_prefix(
    tmp_path: Path, base_url: str, expected: list[str]
) -> None:
    values = computed(tmp_path, {"RELATCH_BASE_URL": base_url}, *PREFIX_SETTINGS)
    assert [values[name] for name in PREFIX_SETTINGS] == expected


@pytest.mark.own_database
@pytest.mark.parametrize("base_url", [
    "https://example.org/py pi", "https://example.org/pypi?x=1", "https://example.org/%2e%2e",
    "https://example.org/pypi#top", "https://example.org//pypi",
])
def test_a_base_url_path_that_is_not_plain_stops_the_start(tmp_path: Path, base_url: str) -> None:
    done = settings_for(tmp_path, {"RELATCH_BASE_URL": base_url}, "BASE_PATH")
    assert done.returncode != 0
    assert "RELATCH_BASE_URL must be scheme://host[:port][/path]" in done.stderr


@pytest.mark.parametrize("script_prefix", ["/pypi/", "/"])  # in a request, in the worker
def test_absolute_links_carry_the_prefix_once(settings: Any, script_prefix: str) -> None:
    settings.BASE_URL, settings.BASE_PATH = "https://example.org/pypi", PREFIX
    set_script_prefix(script_prefix)
    try:
        assert site_url(reverse("signin:login")) == "https://example.org/pypi/account/login/"
    finally:
        set_script_prefix("/")


@pytest.fixture
def prefixed(settings: Any) -> Iterator[PathPrefix]:
    """The WSGI application as ``relatch serve`` runs it under http://testserver/pypi."""
    settings.BASE_URL = "http://testserver/pypi"
    settings.BASE_PATH = PREFIX
    settings.STATIC_URL = "/pypi/static/"  # as relatch.settings derives it from BASE_URL
    yield PathPrefix(application, PREFIX)
    # Django's handler leaves the last request's prefix on the thread, and the test client
    # never sets one: the next test's reverse() must not inherit /pypi.
    set_script_prefix("/")


@pytest.fixture
def wheel(transactional_db: None) -> Dist:
    # Committed, not in a test transaction: the WSGI handler's request_finished closes the
    # database connection, which on PostgreSQL would close the test's open transaction.
    dist = build_wheel()
    publish(dist)
    return dist


@pytest.mark.parametrize("given", ["/pypi", ""])  # passed through, stripped by the proxy
def test_installer_pages_link_under_the_prefix(
    prefixed: PathPrefix, wheel: Dist, given: str
) -> None:
    status, _, body = call_app(prefixed, given + "/simple/")
    assert status == 200
    assert 'href="/pypi/simple/sample-pkg/"' in body.decode()
    status, _, body = call_app(prefixed, given + "/simple/sample-pkg/")
    assert f'href="/pypi/files/packages/{wheel.sha256}/{wheel.filename}#sha256=' in body.decode()
    status, _, body = call_app(
        prefixed, given + "/simple/sample-pkg/", accept="application/vnd.pypi.simple.v1+json"
    )
    [file] = json.loads(body)["files"]
    assert file["url"] == f"/pypi/files/packages/{wheel.sha256}/{wheel.filename}"
    status, _, body = call_app(prefixed, given + "/pypi/sample-pkg/json")
    document = json.loads(body)
    base = "http://testserver/pypi"
    assert document["urls"][0]["url"] == f"{base}/files/packages/{wheel.sha256}/{wheel.filename}"
    assert document["info"]["project_url"] == f"{base}/project/sample-pkg/"
    status, _, body = call_app(prefixed, file["url"].removeprefix("/pypi" if not given else ""))
    assert (status, body) == (200, wheel.content)


@pytest.mark.parametrize("given", ["/pypi", ""])
def test_the_pep_503_redirect_stays_under_the_prefix(
    prefixed: PathPrefix, wheel: Dist, given: str
) -> None:
    status, headers, _ = call_app(prefixed, given + "/simple/Sample_Pkg/")
    assert status == 301
    assert headers["location"] == ["/pypi/simple/sample-pkg/"]


def test_the_web_project_page_links_under_the_prefix(prefixed: PathPrefix, wheel: Dist) -> None:
    status, _, body = call_app(prefixed, "/pypi/project/sample-pkg/")
    page = body.decode()
    assert status == 200
    assert f'href="/pypi/files/packages/{wheel.sha256}/{wheel.filename}"' in page
    assert "--index-url http://testserver/pypi/simple/ sample-pkg" in page
    assert not re.search(r'(href|src|action)="/(?!pypi/)', page), "a link off the prefix"


@pytest.mark.django_db(transaction=True)
def test_kept_responses_serve_the_prefixed_pages(prefixed: PathPrefix) -> None:
    """The whole-response cache matches the path below the prefix, as Django does."""
    publish(build_wheel())
    django_part = Counted(application.app)
    app = PathPrefix(ResponseCache(django_part, store=ResponseStore()), PREFIX)
    first = call_app(app, "/pypi/simple/sample-pkg/")
    assert first[0] == 200
    assert b'href="/pypi/files/' in first[2]
    assert call_app(app, "/pypi/simple/sample-pkg/") == first
    assert call_app(app, "/simple/sample-pkg/") == first  # from a proxy that strips it
    assert django_part.calls == 1


# A real server behind a real (stdlib) reverse proxy, as an operator runs it.

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}


class Proxy(http.server.ThreadingHTTPServer):
    """Forwards every request to ``backend``; ``strip`` takes PREFIX off the path first (as
    nginx's ``proxy_pass http://backend/;`` does), else the path goes as it came."""

    daemon_threads = True
    backend = 0
    strip = False


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: Proxy

    def _forward(self) -> None:
        path = self.path
        if self.server.strip and (path == PREFIX or path.startswith(PREFIX + "/")):
            path = path[len(PREFIX):] or "/"
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.backend, timeout=60)
        try:
            upstream.request(self.command, path, body=body, headers=headers)
            answer = upstream.getresponse()
            self.send_response(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            self.end_headers()
            while chunk := answer.read(64 * 1024):
                self.wfile.write(chunk)
        finally:
            upstream.close()

    do_GET = do_HEAD = do_POST = _forward  # noqa: N815 (the names http.server calls)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        pass


class Prefixed:
    def __init__(self, server: Server, proxy: Proxy, base: str, wheel: Dist) -> None:
        self.server, self.proxy, self.base, self.wheel = server, proxy, base, wheel


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prefixed]:
    """``relatch serve`` with RELATCH_BASE_URL=http://127.0.0.1:<proxy>/pypi, behind the
    proxy, holding one wheel (big enough for ranges to mean something)."""
    tmp_path = tmp_path_factory.mktemp("prefixed")
    proxy = Proxy(("127.0.0.1", free_port()), ProxyHandler)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{proxy.server_address[1]}{PREFIX}"
    try:
        with running_server(tmp_path, RELATCH_BASE_URL=base) as server:
            proxy.backend = server.port
            wheel = build_wheel(module_source="VALUE = '" + os.urandom(40_000).hex() + "'\n")
            (tmp_path / wheel.filename).write_bytes(wheel.content)
            server.create_account("maria")
            done = server.relatch("index_import_file", str(tmp_path / wheel.filename),
                                  "--owner", "maria")
            assert done.returncode == 0, done.stderr
            yield Prefixed(server, proxy, base, wheel)
    finally:
        proxy.shutdown()
        proxy.server_close()


def _client(live: Prefixed, *, strip: bool) -> httpx.Client:
    live.proxy.strip = strip
    return httpx.Client(base_url=live.base, timeout=60, follow_redirects=False)


@pytest.mark.slow
@pytest.mark.own_database
@pytest.mark.parametrize("strip", [True, False], ids=["proxy-strips", "proxy-passes"])
def test_a_live_server_under_a_path_links_there(live: Prefixed, strip: bool) -> None:
    wheel = live.wheel
    with _client(live, strip=strip) as client:
        page = client.get("/simple/sample-pkg/").text
        link = re.search(rf'href="(/pypi/files/[^"#]+/{wheel.filename})#sha256={wheel.sha256}"',
                         page)
        assert link, page
        assert client.get(live.base.removesuffix(PREFIX) + link[1]).content == wheel.content
        document = client.get("/pypi/sample-pkg/json").json()
        [url] = [entry["url"] for entry in document["urls"]]
        assert url == live.base.removesuffix(PREFIX) + link[1]
        assert client.get(url).content == wheel.content
        moved = client.get("/simple/Sample_Pkg/")
        assert (moved.status_code, moved.headers["Location"]) == (301, "/pypi/simple/sample-pkg/")
        web = client.get("/project/sample-pkg/").text
        stylesheet = re.search(r'href="(/pypi/static/[^"]+\.css)"', web)
        assert stylesheet, web
        assert client.get(live.base.removesuffix(PREFIX) + stylesheet[1]).status_code == 200


@pytest.mark.slow
@pytest.mark.own_database
def test_sign_in_stays_under_the_path(live: Prefixed) -> None:
    with _client(live, strip=True) as client:
        wall = client.get("/account/")
        assert wall.status_code == 302
        assert wall.headers["Location"].startswith("/pypi/account/login/?next=/pypi/account/")
        login = client.get("/account/login/")
        assert login.status_code == 200
        cookies = login.headers.get_list("Set-Cookie")
        assert cookies and all("Path=/pypi;" in cookie or cookie.endswith("Path=/pypi")
                               for cookie in cookies), cookies
        assert 'action="/pypi/account/login/' in login.text or 'action=""' in login.text


@pytest.mark.slow
@pytest.mark.own_database
def test_a_resumed_download_through_the_proxy(live: Prefixed) -> None:
    wheel = live.wheel
    etag = f'"{wheel.sha256}"'
    with _client(live, strip=False) as client:
        [entry] = client.get("/pypi/sample-pkg/json").json()["urls"]
        path = entry["url"]
        whole = client.get(path)
        assert whole.headers["Accept-Ranges"] == "bytes"
        half = len(wheel.content) // 2
        resumed = client.get(path, headers={"Range": f"bytes={half}-", "If-Range": etag})
        assert resumed.status_code == 206
        assert resumed.headers["Content-Range"] == (
            f"bytes {half}-{len(wheel.content) - 1}/{len(wheel.content)}"
        )
        assert whole.content[:half] + resumed.content == wheel.content
        changed = client.get(path, headers={"Range": f"bytes={half}-", "If-Range": '"other"'})
        assert (changed.status_code, changed.content) == (200, wheel.content)
        past = client.get(path, headers={"Range": f"bytes={len(wheel.content)}-"})
        assert past.status_code == 416
        assert past.headers["Content-Range"] == f"bytes */{len(wheel.content)}"


@pytest.mark.slow
@pytest.mark.own_database
@pytest.mark.parametrize("strip", [True, False], ids=["proxy-strips", "proxy-passes"])
def test_pip_installs_through_the_prefixed_url(
    live: Prefixed, tmp_path: Path, strip: bool
) -> None:
    live.proxy.strip = strip
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    target = tmp_path / "target"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-deps",
         "--index-url", f"{live.base}/simple/", "--target", str(target), "sample-pkg"],
        capture_output=True, text=True, timeout=180, env=env, check=False,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (target / "sample_pkg" / "__init__.py").read_bytes().startswith(b"VALUE = '")
