"""Fixtures of the browser tests: Debian's Chromium, a live server per module, visitors.

Playwright cannot download its own browser here, so it drives ``/usr/bin/chromium`` (``./dev
test`` installs it). The server is a real ``relatch serve`` on ``http://localhost:<port>``
(browsers refuse an IP address as a security key's site), with its own data directory, its own
worker, and mail to the suite's loopback SMTP server. On a PostgreSQL run it gets a fresh
PostgreSQL database of its own.
"""

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright
from tests.browser.harness import (
    AXE_JS,
    DESKTOP,
    Live,
    Visitor,
    network_for_next_visitor,
    new_visitor,
)
from tests.conftest import Mailbox
from tests.serving import running_server

CHROMIUM = os.environ.get("RELATCH_CHROMIUM", "/usr/bin/chromium")
# "dark" runs every visitor with prefers-color-scheme: dark, so axe checks the dark colours.
COLOR_SCHEME = os.environ.get("RELATCH_COLOR_SCHEME", "light")
# As root in a container, without a sandbox; no background traffic to a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
_databases = itertools.count(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def axe_source() -> str:
    assert AXE_JS.exists(), f"{AXE_JS} is missing: ./dev test installs axe-core from npm"
    return AXE_JS.read_text()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _run_on_postgres(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


def _fresh_postgres_database(url: str) -> str:
    """A new empty database beside the test run's one, for the live server alone."""
    name = f"relatch_browser_{os.getpid()}_{next(_databases)}"
    _run_on_postgres(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _run_on_postgres(url, f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, smtp_sink: Any) -> Iterator[Live]:
    sink, port = smtp_sink
    env = {"RELATCH_EMAIL_URL": f"smtp://127.0.0.1:{port}", "RELATCH_PROXY_COUNT": "1"}
    database = os.environ.get("RELATCH_DATABASE_URL", "")
    if database.startswith("postgres"):
        env["RELATCH_DATABASE_URL"] = _fresh_postgres_database(database)
    try:
        with running_server(tmp_path_factory.mktemp("live"), **env) as server:
            yield Live(server, Mailbox(sink, port))
    finally:
        if database.startswith("postgres"):  # a database per module: do not leave them behind
            name = env["RELATCH_DATABASE_URL"].rsplit("/", 1)[1]
            _run_on_postgres(database, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def make_visitor(chromium: Browser, live: Live, axe_source: str) -> Iterator[Callable[[], Visitor]]:
    """A new person in a new browser profile; checked for unaudited pages and errors at the end."""
    visitors: list[Visitor] = []

    def factory() -> Visitor:
        ip = network_for_next_visitor()
        context = chromium.new_context(
            base_url=live.url, viewport=DESKTOP, extra_http_headers={"X-Forwarded-For": ip},
            color_scheme=COLOR_SCHEME,  # type: ignore[arg-type]
        )
        visitors.append(new_visitor(context, live, axe_source, ip))
        return visitors[-1]

    yield factory
    for visitor in visitors:
        visitor.context.close()
    problems = [p for v in visitors for p in v.problems]
    unaudited = [u for v in visitors for u in v.unaudited()]
    assert not problems, "the browser reported:\n" + "\n".join(problems)
    assert not unaudited, "pages loaded but never audited:\n" + "\n".join(unaudited)


@pytest.fixture
def visitor(make_visitor: Callable[[], Visitor]) -> Visitor:
    return make_visitor()
