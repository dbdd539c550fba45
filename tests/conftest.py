"""Shared fixtures: a real SMTP server on loopback, the real task queue, and factories."""

import re
import socket
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.core.cache import cache
from django.test import Client, TestCase

from relatch.accounts import ratelimit
from relatch.accounts.models import Email, User
from relatch.accounts.provisioning import create_verified_user
from relatch.accounts.reauth import mark_reauthenticated
from relatch.accounts.sessions.services import session_digest
from relatch.index.simple.response_cache import kept_responses
from tests.index.simple_rows import use_tmp_storage

PASSWORD = "correct horse battery staple"
URL_RE = re.compile(r"https?://[^\s<>\"']+")


class _Sink:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(  # noqa: N802  (the name aiosmtpd calls)
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


class Mailbox:
    """What arrived at the loopback SMTP server during one test."""

    def __init__(self, sink: _Sink, port: int) -> None:
        self._sink = sink
        self.port = port

    @property
    def messages(self) -> list[EmailMessage]:
        return list(self._sink.messages)

    def clear(self) -> None:
        self._sink.messages.clear()

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self._sink.messages if address.lower() in str(m["To"]).lower()]

    def last(self, address: str) -> EmailMessage:
        found = self.to(address)
        assert found, f"no mail to {address}; got {[str(m['To']) for m in self.messages]}"
        return found[-1]

    @staticmethod
    def text(message: EmailMessage) -> str:
        part = message.get_body(preferencelist=("plain",))
        assert part is not None, "message has no text part"
        return str(part.get_content())

    @staticmethod
    def html(message: EmailMessage) -> str:
        part = message.get_body(preferencelist=("html",))
        assert part is not None, "message has no HTML part"
        return str(part.get_content())

    def links(self, message: EmailMessage) -> list[str]:
        return URL_RE.findall(self.text(message))

    def link_to(self, message: EmailMessage, fragment: str) -> str:
        """The first link in ``message`` whose URL contains ``fragment``, as a path."""
        for url in self.links(message):
            if fragment in url:
                return url.removeprefix("http://testserver")
        raise AssertionError(f"no link with {fragment!r} in: {self.text(message)}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[tuple[_Sink, int]]:
    sink = _Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


def use_smtp_port(settings: Any, port: int) -> None:
    """Send mail to the SMTP server on loopback ``port`` (1: nothing listens, delivery fails)."""
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 5},
        }
    }


@pytest.fixture(autouse=True)
def _test_settings(settings: Any, smtp_sink: tuple[_Sink, int]) -> Iterator[None]:
    """Mail through the real SMTP server; a cheaper Argon2id so the suite stays fast."""
    sink, port = smtp_sink
    sink.messages.clear()
    use_smtp_port(settings, port)
    settings.PASSWORD_HASHERS = ["tests.hashers.FastArgon2idHasher"]
    # Redis's counters (when the run uses Redis); the database's go with each test's
    # transaction, and this fixture runs where the database may not be open to the test.
    ratelimit.reset_all(database=False)
    cache.clear()  # cached pages and counters of one test never reach the next
    kept_responses.clear()  # nor do the web process's kept responses
    yield
    ratelimit.reset_all(database=False)


@pytest.fixture
def files_dir(settings: Any, tmp_path: Path) -> Path:
    """This test keeps the files it uploads, imports or seeds in a fresh directory of its own."""
    location = tmp_path / "files"
    use_tmp_storage(settings, location)
    return location


@pytest.fixture
def mail(smtp_sink: tuple[_Sink, int]) -> Mailbox:
    return Mailbox(*smtp_sink)


def run_pending_tasks(limit: int = 200) -> int:
    """Run queued background tasks the way the worker does (its own loop would close the test
    transaction's connection, so the claim-and-run steps are driven from here)."""
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    worker = Worker(queue_names=["*"], interval=0, batch=True, backend_name="default",
                    startup_delay=False, max_tasks=None, worker_id="test",
                    excluded_queue_names=[])
    ran = 0
    while ran < limit and (row := DBTaskResult.objects.ready().first()) is not None:
        row.claim("test")
        # Each task commits in the real worker: work it defers to the commit (more mail) runs.
        with TestCase.captureOnCommitCallbacks(execute=True):
            worker.run_task(row)
        ran += 1
    return ran


class CommittingClient(Client):
    """A test client whose requests end like real ones: the transaction's on-commit work runs
    (inside a test the transaction never commits) and the worker then runs the queued tasks."""

    def request(self, **request: Any) -> Any:
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = super().request(**request)
        run_pending_tasks()
        return response


@pytest.fixture
def client(db: None) -> CommittingClient:
    return CommittingClient()


@pytest.fixture
def make_client(db: None) -> Any:
    """Another browser (its own cookies), e.g. for a second session."""

    def factory(user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0") -> Client:
        return CommittingClient(HTTP_USER_AGENT=user_agent)

    return factory


@pytest.fixture
def make_user(db: None) -> Any:
    """Factory: an account with a verified primary address (or an unverified one)."""
    counter = iter(range(1, 10_000))

    def factory(
        username: str | None = None,
        email: str | None = None,
        password: str = PASSWORD,
        verified: bool = True,
        **extra: Any,
    ) -> User:
        n = next(counter)
        username = username or f"user{n}"
        email = email or f"{username}@example.org"
        if verified:
            return create_verified_user(username=username, email=email, password=password, **extra)
        user = User(username=username, **extra)
        user.set_password(password)
        user.save()
        Email.objects.create(user=user, address=email, primary=True)
        return user

    return factory


@pytest.fixture
def user(make_user: Any) -> User:
    return make_user(username="alice", email="alice@example.org", name="Alice Liddell")


def sign_in(client: Client, user: User, *, reauthenticated: bool = True) -> Client:
    """Sign ``client`` in as ``user`` without the login form (which has tests of its own)."""
    client.force_login(user)
    from relatch.accounts.models import UserSession
    from relatch.accounts.sessions.services import live_auth_digest

    key = client.session.session_key
    assert key
    # As start_session makes it: the row knows the auth hash force_login stored.
    UserSession.objects.create(user=user, session_digest=session_digest(key),
                               auth_digest=live_auth_digest(user))
    session = client.session
    if reauthenticated:
        session["relatch_reauth_at"] = int(time.time())
    else:
        session.pop("relatch_reauth_at", None)
    session.save()
    return client


@pytest.fixture
def signed_in(client: CommittingClient, user: User) -> CommittingClient:
    """``client`` signed in as ``user``, with a fresh re-authentication."""
    return sign_in(client, user)


__all__ = [
    "PASSWORD", "Mailbox", "mark_reauthenticated", "run_pending_tasks", "sign_in", "use_smtp_port",
]
