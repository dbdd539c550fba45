"""Browsers signing in to a real ``relatch serve`` all at once, a Redis server of the test's own,
and a PostgreSQL database of the test's own: the parts of the limit and outage tests
(tests/accounts/test_limits_under_load.py, tests/test_redis_outage.py, issue 18 §8, §9)."""

import os
import re
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.serving import Server, free_port, wait_for

PASSWORD = "correct horse battery staple"
LOGIN = "/account/login/"
WRONG = "Username or password is wrong."
IP_THROTTLED = "Too many failed sign-ins from your network."
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@dataclass(frozen=True)
class Answer:
    """What one browser got back for its sign-in."""

    status: int  # 0: no answer at all (the connection failed)
    location: str = ""
    text: str = ""

    @property
    def signed_in(self) -> bool:
        return self.status == 302 and self.location.startswith("/account/")

    @property
    def checked_and_wrong(self) -> bool:
        """The password was checked and was wrong (a refused attempt is a 429, never this)."""
        return self.status == 200 and WRONG in self.text

    @property
    def kind(self) -> str:
        if self.signed_in:
            return "signed in"
        if self.checked_and_wrong:
            return "wrong"
        if self.status == 429:
            return "429 " + ("ip" if IP_THROTTLED in self.text else "account")
        return str(self.status)


def tally(answers: list[Answer]) -> Counter[str]:
    return Counter(answer.kind for answer in answers)


def new_browser() -> requests.Session:
    """A browser of its own: its own cookies (so a new device to every account)."""
    browser = requests.Session()
    browser.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"
    # One connection per request: gunicorn closes an idle kept-alive connection after 2 s, and
    # a request racing with that close is the client's problem, not the server's.
    browser.headers["Connection"] = "close"
    return browser


def sign_in_at_once(server: Server, attempts: list[tuple[str, str]]) -> list[Answer]:
    """Each (identifier, password) from a new browser: every browser loads the sign-in form
    first, then all of them post it at the same moment."""
    browsers = [new_browser() for _ in attempts]
    tokens = []
    for browser in browsers:
        form = browser.get(server.url + LOGIN, timeout=60)
        assert form.status_code == 200, form.status_code
        found = CSRF_RE.search(form.text)
        assert found, "no CSRF token on the sign-in form"
        tokens.append(found.group(1))
    start = threading.Barrier(len(attempts))

    def post(index: int) -> Answer:
        identifier, password = attempts[index]
        data = {"csrfmiddlewaretoken": tokens[index], "identifier": identifier,
                "password": password}
        start.wait()
        try:
            response = browsers[index].post(server.url + LOGIN, data=data, timeout=120,
                                            allow_redirects=False)
        except requests.RequestException:
            return Answer(0)
        return Answer(response.status_code, response.headers.get("Location", ""), response.text)

    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        return list(pool.map(post, range(len(attempts))))


def quick_hasher_env(folder: Path) -> dict[str, str]:
    """Environment for a server whose Argon2id costs a few milliseconds instead of the
    production ~100 MB: the tests measure limits, not the hash, and need ~130 of them. A
    settings module written into ``folder`` (the server cannot import the tests package)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "relatch_quick_hasher.py").write_text(
        "from django.contrib.auth.hashers import Argon2PasswordHasher\n"
        "from relatch.settings import *  # noqa: F403\n"
        "class QuickArgon2idHasher(Argon2PasswordHasher):\n"
        "    time_cost, memory_cost, parallelism = 1, 4096, 1\n"
        'PASSWORD_HASHERS = ["relatch_quick_hasher.QuickArgon2idHasher"]\n'
    )
    path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH", "")]))
    return {"DJANGO_SETTINGS_MODULE": "relatch_quick_hasher", "PYTHONPATH": path}


def create_accounts(server: Server, usernames: list[str], password: str = PASSWORD) -> None:
    """Verified accounts with ``password`` (the production hasher), made as an operator would."""
    code = (
        "from relatch.accounts.provisioning import create_verified_user as c\n"
        f"for name in {usernames!r}:\n"
        f"    c(username=name, email=name + '@example.org', password={password!r})\n"
    )
    done = server.relatch("shell", "-c", code)
    assert done.returncode == 0, done.stderr


def shell(server: Server, code: str) -> str:
    """Run Python in ``relatch shell`` against the server's database; its output (without
    the shell's note on the models it imported)."""
    done = server.relatch("shell", "--no-imports", "-c", code)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# --- a PostgreSQL database of the test's own ------------------------------------------------

def postgres_server_url() -> str:
    """The PostgreSQL server the suite runs on (RELATCH_DATABASE_URL), else the local one."""
    url = os.environ.get("RELATCH_DATABASE_URL", "")
    if url.startswith("postgres"):
        return url.rsplit("/", 1)[0]
    return "postgresql://postgres@127.0.0.1:5432"


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database on the PostgreSQL server, dropped afterwards; its URL."""
    import psycopg

    server = postgres_server_url()
    name = f"relatch_limits_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(server + "/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:  # pragma: no cover (PostgreSQL runs in CI)
        pytest.skip(f"no PostgreSQL server at {server}: {error}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(server + "/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- a Redis server of the test's own -------------------------------------------------------

class RedisServer:
    """``redis-server`` on a free port, in the foreground (so the test can stop and start it on
    the same port), keeping nothing on disk."""

    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.work = work
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.work / f"redis-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(self.work)],
            stdout=log, stderr=subprocess.STDOUT,
        )
        assert wait_for(self.answers, 20), "redis-server did not start"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=20)
        self.process = None

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def keys(self, pattern: str) -> list[str]:
        import redis

        client = redis.Redis(port=self.port, socket_timeout=5, decode_responses=True)
        return sorted(str(key) for key in client.scan_iter(pattern))


@contextmanager
def redis_server(work: Path) -> Iterator[RedisServer]:
    server = RedisServer(work)
    server.start()
    try:
        yield server
    finally:
        server.stop()
