"""kill -9 in the middle of an upload and of a recovery completion, then a restart (issue 7 §2).

Each test runs a real ``relatch serve`` (gunicorn + the worker) on a data directory (and, when
the suite runs on PostgreSQL, a database) of its own, sends SIGKILL to every process of it at a
chosen moment, starts it again on the same data, and checks what a user would see: the account
and the files are all or nothing, and the background work queued before the kill is done.

"In the middle" is made deterministic without any hook in the code: the test holds a database
lock the server needs, waits until the server is blocked on it, then kills. On PostgreSQL a
table lock stops the server inside its transaction, after it changed rows (the server's
backend is then ended by the test, as the server's death would end it, before the lock is
let go). On SQLite every transaction takes the write lock at its first statement (IMMEDIATE),
so the server can only be stopped before its transaction writes anything; what SQLite commits
is atomic by itself.
"""

import base64
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from relatch.recovery.models import State
from tests.conftest import Mailbox
from tests.index.dists import Dist, build_wheel
from tests.serving import (
    RELATCH,
    Server,
    free_port,
    is_running,
    relatch_env,
    running_server,
    wait_for,
)

pytestmark = pytest.mark.slow

ON_POSTGRES = os.environ.get("RELATCH_DATABASE_URL", "").startswith("postgres")
postgres_only = pytest.mark.skipif(
    not ON_POSTGRES, reason="SQLite cannot be stopped inside a transaction by a lock"
)
PASSWORD = "alice's old passphrase, long enough"  # noqa: S105


# --- the server's database, seen from the test ----------------------------------------------

class ServerDatabase:
    """The database of the server under test: locks held from outside, and its connections."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.url = url
        self.sqlite_path = data_dir / "relatch.sqlite3"
        self.holder = 0  # the backend pid of the connection holding the lock (PostgreSQL)

    @contextmanager
    def holding(self, lock_sql: str) -> Iterator[None]:
        """Hold ``lock_sql`` (PostgreSQL) or SQLite's write lock until the block ends."""
        if not self.url:
            conn = sqlite3.connect(self.sqlite_path, timeout=30, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                conn.rollback()
                conn.close()
            return
        import psycopg

        with psycopg.connect(self.url) as conn:
            conn.execute(lock_sql)
            self.holder = conn.info.backend_pid
            try:
                yield
            finally:
                conn.rollback()

    def wait_until_blocked(self, statement: str) -> None:
        """Until a server connection waits for a lock in ``statement`` (PostgreSQL); on SQLite,
        long enough for the request to reach the lock (its busy timeout is 20 s)."""
        if not self.url:
            time.sleep(6)
            return
        import psycopg

        sql = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
               "AND wait_event_type = 'Lock' AND query ILIKE %s")
        with psycopg.connect(self.url, autocommit=True) as conn:
            def blocked() -> bool:
                row = conn.execute(sql, (f"%{statement}%",)).fetchone()
                return bool(row and row[0])

            assert wait_for(blocked, 30), f"the server never waited for a lock in {statement}"

    def end_server_connections(self) -> None:
        """End the dead server's database sessions, as its death would: whatever they had
        begun is rolled back and never committed once the lock goes."""
        if not self.url:
            return
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                "current_database() AND pid <> pg_backend_pid() AND pid <> %s", (self.holder,)
            )

    def blocked_server_has_written(self, table: str) -> bool:
        """Whether the connection waiting for a lock has already written to ``table`` in its
        open transaction (it holds a write lock on it); True on SQLite, where it cannot be."""
        if not self.url:
            return True
        import psycopg

        sql = ("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
               "WHERE a.datname = current_database() AND a.wait_event_type = 'Lock' "
               "AND l.granted AND l.mode = 'RowExclusiveLock' AND l.relation = %s::regclass")
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute(sql, (table,)).fetchone()
            return bool(row and row[0])


def _postgres(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A data directory (and on PostgreSQL a database) migrated once, copied for each test:
    migrating from nothing at every start would make each test slow."""
    data_dir = tmp_path_factory.mktemp("migrated") / "data"
    url = os.environ.get("RELATCH_DATABASE_URL", "")
    template = f"relatch_faults_{os.getpid()}_template" if ON_POSTGRES else ""
    extra = {}
    if template:
        _postgres(url, f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
        _postgres(url, f'CREATE DATABASE "{template}"')
        extra["RELATCH_DATABASE_URL"] = url.rsplit("/", 1)[0] + "/" + template
    done = subprocess.run(
        [str(RELATCH), "migrate", "--verbosity", "0"], env=relatch_env(data_dir, **extra),
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr
    yield data_dir, template
    if template:
        _postgres(url, f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')


@pytest.fixture
def database_url(migrated: tuple[Path, str], tmp_path: Path) -> Iterator[str]:
    """The server's own copy of the migrated data: its data directory, and on PostgreSQL a
    fresh database (never the test run's own); "" on SQLite, whose database is in the data
    directory."""
    template_dir, template = migrated
    shutil.copytree(template_dir, tmp_path / "data")
    url = os.environ.get("RELATCH_DATABASE_URL", "")
    if not template:
        yield ""
        return
    name = f"relatch_faults_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _postgres(url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield url.rsplit("/", 1)[0] + "/" + name
    _postgres(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def env(database_url: str, mail: Mailbox) -> dict[str, str]:
    found = {"RELATCH_EMAIL_URL": f"smtp://127.0.0.1:{mail.port}"}
    if database_url:
        found["RELATCH_DATABASE_URL"] = database_url
    return found


@pytest.fixture
def server_db(env: dict[str, str], tmp_path: Path) -> ServerDatabase:
    return ServerDatabase(env.get("RELATCH_DATABASE_URL", ""), tmp_path / "data")


def kill_everything(server: Server) -> None:
    """SIGKILL to ``relatch serve``, gunicorn's master and workers and the db_worker at once."""
    pids = {server.process.pid} | server.children()
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    server.process.wait(timeout=10)
    assert wait_for(lambda: not any(is_running(pid) for pid in pids), 10), "a process survived"


def shell(server: Server, script: str) -> dict[str, Any]:
    """Run ``script`` with ``relatch shell`` on the server's data; the JSON it prints."""
    done = server.relatch("shell", "-c", script)
    line = next((x for x in done.stdout.splitlines() if x.startswith("JSON ")), None)
    assert line, f"relatch shell failed:\n{done.stdout}\n{done.stderr}"
    return dict(json.loads(line.removeprefix("JSON ")))


def in_background(work: Any) -> threading.Thread:
    """Run a request that the kill will cut off; its error is expected and ignored."""
    def run() -> None:
        with suppress(OSError):
            work()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# --- uploads ------------------------------------------------------------------------------

UPLOADER = """
import json
from relatch.accounts.provisioning import create_verified_user
from relatch.index.tokens.services import create_token
from relatch.mfa.models import TotpDevice
user = create_verified_user(username="uploader", email="uploader@example.org", password=None)
TotpDevice.objects.create(user=user, encrypted_secret="x")
print("JSON " + json.dumps({"token": create_token(request=None, user=user, name="ci",
                                                   project=None, expires_at=None)[1]}))
"""
FILES = """
import json
from relatch.index.models import File, UsedFilename
print("JSON " + json.dumps({"files": {f.filename: [f.sha256_digest, f.path]
                                      for f in File.objects.all()},
                            "used": list(UsedFilename.objects.values_list("filename",
                                                                          flat=True))}))
"""


def multipart(dist: Dist) -> tuple[bytes, bytes, str]:
    """The head and tail of twine's multipart body around the file's bytes; content type."""
    boundary = uuid.uuid4().hex
    fields = [*dist.fields.items(), ("sha256_digest", dist.sha256)]
    head = b""
    for key, value in fields:
        for item in [value] if isinstance(value, str) else value:
            head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{key}\"\r\n\r\n"
                     f"{item}\r\n").encode()
    head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"content\"; "
             f"filename=\"{dist.filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
             ).encode()
    return head, f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def start_upload(server: Server, token: str, dist: Dist) -> tuple[http.client.HTTPConnection,
                                                                   bytes]:
    """Send the headers and everything but the last part of the body; the connection and the
    rest, which the caller sends (or not)."""
    head, tail, content_type = multipart(dist)
    body = head + dist.content + tail
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    conn.putrequest("POST", "/legacy/")
    credentials = base64.b64encode(f"__token__:{token}".encode()).decode()
    conn.putheader("Authorization", f"Basic {credentials}")
    conn.putheader("Content-Type", content_type)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    half = len(head) + len(dist.content) // 2
    conn.send(body[:half])
    return conn, body[half:]


def upload(server: Server, token: str, dist: Dist) -> int:
    conn, rest = start_upload(server, token, dist)
    conn.send(rest)
    status = conn.getresponse().status
    conn.close()
    return status


def big_wheel(version: str = "1.0") -> Dist:
    # 4 MB of random text: above the 1 MB in-memory limit, so it streams to a temporary file.
    return build_wheel("faulty", version, module_source=f"DATA = {os.urandom(2 << 20).hex()!r}\n")


def assert_not_published(server: Server, dist: Dist) -> None:
    """Nothing of ``dist`` anywhere: no row, no used name, no page link, no stored file."""
    state = shell(server, FILES)
    assert dist.filename not in state["files"]
    assert dist.filename not in state["used"]
    status, page, _ = server.get("/simple/faulty/")
    assert dist.filename.encode() not in page
    stored = [p.name for p in (server.data_dir / "files").rglob("*") if p.is_file()]
    assert dist.filename not in stored, "a file without its row was left in storage"


def assert_published(server: Server, dist: Dist) -> None:
    """``dist`` listed with its digest and served with exactly its bytes."""
    status, page, _ = server.get("/simple/faulty/")
    assert status == 200
    assert f"{dist.filename}#sha256={dist.sha256}".encode() in page
    sha, path = shell(server, FILES)["files"][dist.filename]
    status, body, _ = server.get(f"/files/{path}")
    assert (status, hashlib.sha256(body).hexdigest(), sha) == (200, dist.sha256, dist.sha256)


@pytest.fixture
def uploader(tmp_path: Path, env: dict[str, str]) -> str:
    """An upload token, and a first release so the project exists."""
    with running_server(tmp_path, **env) as server:
        token = shell(server, UPLOADER)["token"]
        assert upload(server, token, build_wheel("faulty", "0.1")) == 200
    return str(token)


def test_a_kill_while_the_body_streams_leaves_nothing_and_the_upload_works_after(
    tmp_path: Path, env: dict[str, str], uploader: str
) -> None:
    dist = big_wheel()
    with running_server(tmp_path, **env) as server:
        conn, _rest = start_upload(server, uploader, dist)
        time.sleep(0.5)  # the worker is reading the body now
        kill_everything(server)
        conn.close()
    with running_server(tmp_path, **env) as server:
        assert_not_published(server, dist)
        assert upload(server, uploader, dist) == 200
        assert_published(server, dist)


def test_a_kill_while_the_upload_waits_for_the_database_leaves_nothing(
    tmp_path: Path, env: dict[str, str], uploader: str, server_db: ServerDatabase
) -> None:
    """The whole file arrived and was checked; the rows wait for a lock on the file table."""
    dist = big_wheel()
    with (
        running_server(tmp_path, **env) as server,
        server_db.holding('LOCK TABLE "index_file" IN EXCLUSIVE MODE'),
    ):
        in_background(lambda: upload(server, uploader, dist))
        server_db.wait_until_blocked('INSERT INTO "index_file"')
        kill_everything(server)
        server_db.end_server_connections()
    with running_server(tmp_path, **env) as server:
        assert_not_published(server, dist)
        assert upload(server, uploader, dist) == 200
        assert_published(server, dist)


@postgres_only
def test_a_kill_after_the_file_is_stored_but_before_the_commit_publishes_nothing(
    tmp_path: Path, env: dict[str, str], uploader: str, server_db: ServerDatabase
) -> None:
    """The rows are written and the file saved; the transaction waits (on the token's row)
    when the server dies. The file must not be served, and the same upload then succeeds."""
    dist = big_wheel()
    with (
        running_server(tmp_path, **env) as server,
        server_db.holding('SELECT 1 FROM "index_apitoken" FOR UPDATE'),
    ):
        in_background(lambda: upload(server, uploader, dist))
        server_db.wait_until_blocked('UPDATE "index_apitoken"')
        kill_everything(server)
        server_db.end_server_connections()
    with running_server(tmp_path, **env) as server:
        state = shell(server, FILES)
        assert dist.filename not in state["files"]
        assert dist.filename not in state["used"]
        status, page, _ = server.get("/simple/faulty/")
        assert dist.filename.encode() not in page
        # The daily sweep removes what the kill left once it is a day old (backdated here).
        left = list((server.data_dir / "files").rglob(f"{dist.filename}*"))
        assert left, "the killed upload left its stored file"
        for path in left:
            os.utime(path, (time.time() - 2 * 86400,) * 2)
        swept = server.relatch("sweep_orphan_files")
        assert swept.returncode == 0, swept.stderr
        assert f"/{dist.filename} (" in swept.stdout
        assert not list((server.data_dir / "files").rglob(f"{dist.filename}*"))
        assert upload(server, uploader, dist) == 200
        assert_published(server, dist)
        # Nothing is left beside the published file.
        stored = [p for p in (server.data_dir / "files").rglob(dist.filename)]
        assert len(stored) == 1


# --- recovery completion -------------------------------------------------------------------

HELD_ACCOUNT = """
import json, secrets
from django.utils import timezone
from relatch.accounts.models import UserSession
from relatch.accounts.provisioning import create_verified_user
from relatch.index.models import APIToken
from relatch.index.tokens.services import create_token
from relatch.mfa.models import TotpDevice
from relatch.recovery.models import (ProofKind, RecoveryApproval, RecoveryProof,
                                     RecoveryRequest, State)
alice = create_verified_user(username="alice", email="alice@example.org", password=PASSWORD)
TotpDevice.objects.create(user=alice, encrypted_secret="x")
UserSession.objects.create(user=alice, session_digest="a" * 64)
ci_token = create_token(request=None, user=alice, name="ci", project=None, expires_at=None)[0]
dana = create_verified_user(username="dana", email="dana@example.org", password=None,
                            is_staff=True)
TotpDevice.objects.create(user=dana, encrypted_secret="x")
staff_token = create_token(request=None, user=dana, name="desk", project=None, expires_at=None,
                           purpose=APIToken.Purpose.STAFF)[1]
request = RecoveryRequest.objects.create(
    public_id=secrets.token_hex(8), link_nonce=secrets.token_hex(8), username_claimed="alice",
    user=alice, contact_email="alice@new.example", contact_confirmed_at=timezone.now(),
    agreed_to_code_of_conduct=True, acknowledged_review_time=True,
    state=State.AWAITING_APPROVAL)
# Two independent sources (relatch.recovery.sources): the account's older token, a code to
# an address verified before the request.
for kind, evidence in ((ProofKind.API_TOKEN, {"token_id": ci_token.pk}),
                       (ProofKind.ACCOUNT_EMAIL, {"address_id": alice.emails.get().pk})):
    RecoveryProof.objects.create(request=request, kind=kind, checked_at=timezone.now(),
                                 status=RecoveryProof.Status.SATISFIED, evidence=evidence)
RecoveryApproval.objects.create(request=request, staff=dana)
print("JSON " + json.dumps({"token": staff_token, "request": request.public_id}))
""".replace("PASSWORD", repr(PASSWORD))
ACCOUNT = """
import json
from relatch.accounts.models import Email, User, UserSession
from relatch.index.models import APIToken
from relatch.mfa.models import TotpDevice
from relatch.notify.models import OutgoingEmail
from relatch.recovery.models import RecoveryRequest
alice = User.objects.get(username="alice")
print("JSON " + json.dumps({
    "app": TotpDevice.objects.filter(user=alice).exists(),
    "sessions": UserSession.objects.filter(user=alice).count(),
    "old password works": alice.check_password(PASSWORD),
    "live upload tokens": APIToken.objects.filter(user=alice, revoked_at=None).count(),
    "primary": Email.objects.get(user=alice, primary=True).address,
    "request": RecoveryRequest.objects.get(username_claimed="alice").state,
    "pending mail": OutgoingEmail.objects.filter(status="pending").count(),
}))
""".replace("PASSWORD", repr(PASSWORD))
UNCHANGED = {"app": True, "sessions": 1, "old password works": True, "live upload tokens": 1,
             "primary": "alice@example.org", "request": State.AWAITING_APPROVAL}
RECOVERED = {"app": False, "sessions": 0, "old password works": False,
             "live upload tokens": 0, "primary": "alice@new.example", "request": State.COMPLETED}


def account(server: Server) -> dict[str, Any]:
    state = shell(server, ACCOUNT)
    pending = state.pop("pending mail")
    assert state in (UNCHANGED, RECOVERED), f"a half-done completion: {state}"
    return {**state, "pending mail": pending}


def complete(server: Server, held: dict[str, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    conn.request("POST", f"/api/v1/desk/requests/{held['request']}/complete",
                 headers={"Authorization": f"Bearer {held['token']}"})
    status = conn.getresponse().status
    conn.close()
    return status


def assert_mail_arrives(mail: Mailbox, address: str, text: str) -> None:
    """Some mail to ``address`` says ``text``, waiting for the worker: the messages of one
    completion are delivered by separate tasks, in no promised order."""

    def arrived() -> bool:
        return any(text in mail.text(m) for m in mail.to(address))

    assert wait_for(arrived, 30), f"no mail with {text!r} to {address}: {mail.messages}"


def assert_reset_link_arrives(mail: Mailbox) -> None:
    assert_mail_arrives(mail, "alice@new.example", "/account/reset/")


@pytest.fixture
def held(tmp_path: Path, env: dict[str, str], mail: Mailbox) -> dict[str, str]:
    """Alice's account with an app, a session, a token and her password; a recovery request
    ready to complete; a staff token for the desk's API. Set-up mail delivered and cleared."""
    with running_server(tmp_path, **env) as server:
        found = shell(server, HELD_ACCOUNT)
        assert wait_for(lambda: shell(server, ACCOUNT)["pending mail"] == 0, 60)
    mail.clear()
    return {k: str(v) for k, v in found.items()}


def test_a_kill_in_the_middle_of_a_completion_leaves_the_account_as_it_was(
    tmp_path: Path, env: dict[str, str], held: dict[str, str], server_db: ServerDatabase,
    mail: Mailbox,
) -> None:
    """PostgreSQL: factors, sessions and password are already changed inside the transaction
    when it waits for the mail table. SQLite: the completion waits for the write lock."""
    with (
        running_server(tmp_path, **env) as server,
        server_db.holding('LOCK TABLE "notify_outgoingemail" IN EXCLUSIVE MODE'),
    ):
        in_background(lambda: complete(server, held))
        server_db.wait_until_blocked('INSERT INTO "notify_outgoingemail"')
        # Inside the completion: the app and the sessions are deleted, not yet committed.
        assert server_db.blocked_server_has_written("mfa_totpdevice")
        assert server_db.blocked_server_has_written("accounts_usersession")
        kill_everything(server)
        server_db.end_server_connections()
    with running_server(tmp_path, **env) as server:
        assert {**account(server), "pending mail": 0} == {**UNCHANGED, "pending mail": 0}
        assert not mail.to("alice@new.example")
        # Staff complete it again, and this time all of it happens.
        assert complete(server, held) == 200
        assert {k: v for k, v in account(server).items() if k in RECOVERED} == RECOVERED
        assert_reset_link_arrives(mail)


@postgres_only
def test_a_kill_after_the_completion_commits_still_sends_its_mail(
    tmp_path: Path, env: dict[str, str], held: dict[str, str], server_db: ServerDatabase,
    mail: Mailbox,
) -> None:
    """The completion is committed; the server dies while it queues the mail delivery (the
    task table is locked). After the restart the account is recovered and the mail goes."""
    with (
        running_server(tmp_path, **env) as server,
        server_db.holding('LOCK TABLE "django_tasks_database_dbtaskresult" IN EXCLUSIVE MODE'),
    ):
        in_background(lambda: complete(server, held))
        server_db.wait_until_blocked('INSERT INTO "django_tasks_database_dbtaskresult"')
        kill_everything(server)
        server_db.end_server_connections()
    with running_server(tmp_path, **env) as server:
        assert {k: v for k, v in account(server).items() if k in RECOVERED} == RECOVERED
        assert_reset_link_arrives(mail)
        assert_mail_arrives(mail, "alice@example.org", "Completed")
        assert wait_for(lambda: account(server)["pending mail"] == 0, 30)


@contextmanager
def silent_smtp_server() -> Iterator[int]:
    """A port that accepts connections and never answers: delivery hangs there."""
    port = free_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen(16)
        yield port


def test_mail_the_worker_was_delivering_when_killed_is_sent_after_the_restart(
    tmp_path: Path, env: dict[str, str], held: dict[str, str], mail: Mailbox
) -> None:
    """The completion commits; the worker is stuck talking to a mail server when it is
    killed, its task left 'running'. After the restart every message is delivered."""
    with silent_smtp_server() as port:
        hanging = {**env, "RELATCH_EMAIL_URL": f"smtp://127.0.0.1:{port}?timeout=120"}
        with running_server(tmp_path, **hanging) as server:
            assert complete(server, held) == 200
            running = """
import json
from django_tasks_db.models import DBTaskResult
print("JSON " + json.dumps({"n": DBTaskResult.objects.filter(
    status="RUNNING", task_path__endswith="deliver_email").count()}))
"""
            assert wait_for(lambda: shell(server, running)["n"] == 1, 30)
            kill_everything(server)
    with running_server(tmp_path, **env) as server:
        assert {k: v for k, v in account(server).items() if k in RECOVERED} == RECOVERED
        assert_reset_link_arrives(mail)
        assert_mail_arrives(mail, "alice@example.org", "Completed")
        assert wait_for(lambda: account(server)["pending mail"] == 0, 30)
