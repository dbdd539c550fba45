"""``relatch backup DIR`` and ``relatch restore DIR`` (issue 18 §4), against a real
``relatch serve``.

The old manual recipe copied the files, then the database; uploads committed in between left
rows whose files the copy never had (75 of 312 in the report), and the PostgreSQL recipe forgot
the signing key, without which every app-code sign-in was a 500. Here uploads run in threads
while the backup is taken; the backup must list only files it holds, each with its digest; the
restore (SQLite into a fresh data directory, PostgreSQL into a fresh database) must give an
index that serves every listed file, that pip installs from, where an account with an
authenticator app signs in with a code, and whose security history is whole. Refusals change
nothing and say why.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.index.dists import Dist, build_wheel
from tests.serving import RELATCH, Server, relatch_env, running_server, wait_for
from tests.test_end_to_end import Browser, link_in_mail, sign_in
from tests.test_faults import shell, upload

# Its databases are its own (SQLite files, PostgreSQL databases it makes): the suite's
# database does not change what it tests, so CI's PostgreSQL pass leaves it out.
pytestmark = [pytest.mark.slow, pytest.mark.own_database]

PASSWORD = "ada's backup-proof passphrase"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
CONFIRM_LINK = re.compile(r"/account/login/confirm/[^/\s]+/$")
PROJECTS = ("busy-a", "busy-b", "busy-c")

# Ada: a password, recovery codes and an authenticator app enrolled through the services (its
# secret is sealed with the server's signing key), and an upload token.
ADA = f"""
import json
import pyotp
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory
from relatch.accounts.provisioning import create_verified_user
from relatch.index.tokens.services import create_token
from relatch.mfa.recovery_codes.services import confirm_saved_codes, generate_recovery_codes
from relatch.mfa.totp.services import confirm_enrolment, start_enrolment
ada = create_verified_user(username="ada", email="ada@example.org", password={PASSWORD!r})
codes = generate_recovery_codes(request=None, user=ada)
confirm_saved_codes(request=None, user=ada, code=codes[0])
request = RequestFactory().post("/", REMOTE_ADDR="192.0.2.7")
request.session = SessionStore()
pending = start_enrolment(request, ada)
confirm_enrolment(request=request, user=ada, code=pyotp.TOTP(pending.secret).now())
token = create_token(request=None, user=ada, name="ci", project=None, expires_at=None)[1]
print("JSON " + json.dumps({{"secret": pending.secret, "token": token}}))
"""
LIVE_FILES = """
import json
from relatch.index.models import File
print("JSON " + json.dumps({"files": {f.path: f.sha256_digest for f in File.objects.all()}}))
"""
HISTORY = """
import json
from relatch.audit.models import SecurityEvent
from relatch.index.models import File
kinds = list(SecurityEvent.objects.filter(user__username="ada").values_list("kind", flat=True))
print("JSON " + json.dumps({"kinds": kinds, "files": File.objects.count()}))
"""


# --- helpers -----------------------------------------------------------------------------------

def relatch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RELATCH), *args], env=env, capture_output=True, text=True,
                          timeout=180, check=False)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(path: Path) -> dict[str, str]:
    """Every file under ``path`` with its digest: to show that a refusal changed nothing."""
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): sha256(p) for p in sorted(path.rglob("*")) if p.is_file()}


def _postgres_server() -> str:
    """The suite's PostgreSQL server (or the local one), as a URL without a database name."""
    url = os.environ.get("RELATCH_DATABASE_URL", "")
    if not url.startswith("postgres"):
        url = "postgresql://postgres@127.0.0.1:5432/postgres"
    return url.rsplit("/", 1)[0]


def _postgres(sql: str) -> None:
    import psycopg

    with psycopg.connect(_postgres_server() + "/postgres", autocommit=True,
                         connect_timeout=5) as conn:
        conn.execute(sql)


@pytest.fixture
def postgres_database() -> Iterator[Callable[[str], str]]:
    """Makes fresh PostgreSQL databases (``test_restore_<random>`` …); drops them after."""
    try:
        _postgres("SELECT 1")
    except Exception as error:  # noqa: BLE001
        pytest.skip(f"no PostgreSQL server to use: {error}")
    made: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        _postgres(f'CREATE DATABASE "{name}"')
        made.append(name)
        return f"{_postgres_server()}/{name}"

    yield make
    for name in made:
        _postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- uploads while the backup runs -------------------------------------------------------------

class Uploads:
    """One thread per project, each uploading new releases of it until told to stop. The
    projects exist before they start: parallel uploads creating one new project are issue 18 §5,
    another test's business."""

    def __init__(self, server: Server, token: str) -> None:
        self.server = server
        self.token = token
        self.lock = threading.Lock()
        self.accepted: list[tuple[float, Dist]] = []  # (when the 200 came, the file)
        self.statuses: list[int] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(project,), daemon=True)
                        for project in PROJECTS]

    def _run(self, project: str) -> None:
        version = 1
        while not self.stopping.is_set():
            dist = build_wheel(project, f"1.{version}", module_source=f"V = {version}\n")
            status = upload(self.server, self.token, dist)
            with self.lock:
                self.statuses.append(status)
                if status == 200:
                    self.accepted.append((time.monotonic(), dist))
            version += 1

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def count(self) -> int:
        with self.lock:
            return len(self.accepted)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=120)


def backup_during_uploads(server: Server, target: Path) -> tuple[dict[str, Any], str, str]:
    """Ada and her first releases, then ``relatch backup target`` while three threads upload.
    Returns the manifest, the backup's output and Ada's app secret."""
    ada = shell(server, ADA)
    for project in PROJECTS:
        assert upload(server, ada["token"], build_wheel(project, "0.1")) == 200
    uploads = Uploads(server, ada["token"])
    uploads.start()
    try:
        assert wait_for(lambda: uploads.count() >= 3, 60), uploads.statuses
        began = time.monotonic()
        done = relatch(server.env, "backup", str(target))
        ended = time.monotonic()
        during = uploads.count()
        # One more upload commits after the backup ended: the snapshot cannot hold it.
        assert wait_for(lambda: uploads.count() > during, 60), uploads.statuses
    finally:
        uploads.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert not [s for s in uploads.statuses if s >= 500], uploads.statuses
    assert any(began < when < ended for when, _ in uploads.accepted), \
        "no upload committed while the backup ran"
    manifest = json.loads((target / "manifest.json").read_text())
    check_backup(manifest, target, uploads, began=began, ended=ended)
    live = shell(server, LIVE_FILES)["files"]
    listed = {e["path"]: e["sha256"] for e in manifest["files"]["entries"] if e["kind"] == "file"}
    # Every file the backup lists is in the live index, which has more by now.
    assert listed.items() <= live.items() and len(live) > len(listed)
    return manifest, done.stdout, str(ada["secret"])


def check_backup(manifest: dict[str, Any], target: Path, uploads: Uploads, *, began: float,
                 ended: float) -> None:
    """The backup holds exactly the files its snapshot lists, each with its digest: every file
    committed before it began, none committed after it ended."""
    entries = manifest["files"]["entries"]
    assert manifest["files"]["count"] == len(entries)
    for entry in entries:
        assert sha256(target / "files" / entry["path"]) == entry["sha256"], entry
    stored = {p.relative_to(target / "files").as_posix()
              for p in (target / "files").rglob("*") if p.is_file()}
    assert stored == {e["path"] for e in entries}, "the backup holds files it does not list"
    listed = {e["filename"]: e for e in entries if e["kind"] == "file"}
    accepted = {dist.filename: (when, dist) for when, dist in uploads.accepted}
    for filename, (when, dist) in accepted.items():
        if when < began:
            assert listed[filename]["sha256"] == dist.sha256
        if when > ended:
            assert filename not in listed, f"{filename} committed after the backup ended"
    first = {f"{p.replace('-', '_')}-0.1-py3-none-any.whl" for p in PROJECTS}
    assert first <= set(listed) <= set(accepted) | first
    assert manifest["files"]["distributions"] == len(listed)
    # Each wheel's PEP 658 metadata comes with it.
    assert len(entries) == 2 * len(listed)
    assert (target / "secret_key").stat().st_mode & 0o777 == 0o600


# --- the restored index ------------------------------------------------------------------------

def check_restored_index(server: Server, manifest: dict[str, Any], secret: str, mail: Any,
                         tmp_path: Path) -> None:
    """What a user of the restored index notices: files, pip, an app-code sign-in, history."""
    entries = [e for e in manifest["files"]["entries"] if e["kind"] == "file"]
    for entry in entries:
        status, body, _ = server.get(f"/files/{entry['path']}")
        assert (status, hashlib.sha256(body).hexdigest()) == (200, entry["sha256"]), entry
    status, page, _ = server.get(f"/simple/{PROJECTS[0]}/")
    assert status == 200
    prefix = PROJECTS[0].replace("-", "_") + "-"
    assert set(re.findall(r">([^<]+\.whl)</a>", page.decode())) == {
        e["filename"] for e in entries if e["filename"].startswith(prefix)}

    # pip installs from it.
    target = tmp_path / "installed"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-deps", "--target",
         str(target), "--index-url", f"{server.url}/simple/", f"{PROJECTS[0]}==0.1"],
        capture_output=True, text=True, timeout=120, env=env, check=False)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (target / PROJECTS[0].replace("-", "_") / "__init__.py").is_file()

    # Ada signs in with her password and an app code: her secret is sealed under the signing
    # key and opens only because the key came back (without it, this step was a 500).
    browser = Browser(server.url, FIREFOX)
    page = sign_in(browser, "ada", PASSWORD)
    assert page.path == "/account/login/second-step/", page.text
    # The next step's code (one step either side is accepted): the enrolment spent this one.
    code = pyotp.TOTP(secret).at(time.time() + 30)
    page = browser.submit(page, page.form("/second-step/app/"), code=code)
    assert page.status == 200 and page.path == "/account/login/check-mail/", page.text
    # A browser new to her account: the sign-in waits for the link mailed to her address.
    confirm = browser.get(link_in_mail(mail, "ada@example.org", CONFIRM_LINK))
    page = browser.submit(confirm, confirm.form())
    assert page.status == 200 and page.path == "/account/", page.text
    # Her history page opens on the newest events (the uploads); the older ones are below.
    history = browser.get("/account/history/")
    assert history.status == 200 and "Signed in" in history.text and "File uploaded" in history.text

    # The history is whole and matches the files: one "file uploaded" per file in the snapshot
    # (each written in the transaction of its upload).
    found = shell(server, HISTORY)
    assert found["files"] == len(entries)
    assert found["kinds"].count("file_uploaded") == len(entries)
    assert {"account_created", "totp_added", "api_token_created", "signin_succeeded"} <= set(
        found["kinds"])


# --- the tests ---------------------------------------------------------------------------------

def test_a_sqlite_backup_taken_during_uploads_restores_to_a_working_index(
    tmp_path: Path, mail: Any
) -> None:
    smtp = {"RELATCH_EMAIL_URL": f"smtp://127.0.0.1:{mail.port}"}
    backup_dir = tmp_path / "backup"
    (tmp_path / "source").mkdir()
    with running_server(tmp_path / "source", **smtp) as server:
        key = (server.data_dir / "secret_key").read_text().strip()
        manifest, output, secret = backup_during_uploads(server, backup_dir)
    assert manifest["database"]["kind"] == "sqlite"
    assert (backup_dir / "database.sqlite3").is_file()
    assert f"copied {manifest['files']['distributions']} distribution files" in output
    assert "mode 0600" in output and key not in output
    assert key not in (backup_dir / "manifest.json").read_text()
    assert (backup_dir / "secret_key").read_text().strip() == key

    restored = tmp_path / "restored"
    env = relatch_env(restored / "data", **smtp)
    done = relatch(env, "restore", str(backup_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"all {manifest['files']['count']} files the database lists" in done.stdout
    assert key not in done.stdout + done.stderr
    assert (restored / "data" / "secret_key").read_text().strip() == key
    assert (restored / "data" / "secret_key").stat().st_mode & 0o777 == 0o600

    # Restoring again over what is now an index with data: refused, and nothing changed.
    before = tree(restored / "data")
    again = relatch(env, "restore", str(backup_dir))
    assert again.returncode == 1
    assert "the target is not empty" in again.stderr and "--force" in again.stderr
    assert tree(restored / "data") == before

    mail.clear()
    with running_server(restored, **smtp) as server:
        check_restored_index(server, manifest, secret, mail, tmp_path)


def test_a_postgresql_backup_taken_during_uploads_restores_into_a_fresh_database(
    tmp_path: Path, mail: Any, postgres_database: Callable[[str], str]
) -> None:
    smtp = {"RELATCH_EMAIL_URL": f"smtp://127.0.0.1:{mail.port}"}
    source = {**smtp, "RELATCH_DATABASE_URL": postgres_database("test_backup")}
    backup_dir = tmp_path / "backup"
    (tmp_path / "source").mkdir()
    with running_server(tmp_path / "source", **source) as server:
        key = (server.data_dir / "secret_key").read_text().strip()
        manifest, output, secret = backup_during_uploads(server, backup_dir)
    assert manifest["database"]["kind"] == "postgresql"
    assert (backup_dir / "database.dump").read_bytes()[:5] == b"PGDMP"  # pg_dump -Fc
    assert "pg_dump" in output and key not in output

    target = {**smtp, "RELATCH_DATABASE_URL": postgres_database("test_restore")}
    restored = tmp_path / "restored"
    done = relatch(relatch_env(restored / "data", **target), "restore", str(backup_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"all {manifest['files']['count']} files the database lists" in done.stdout
    assert (restored / "data" / "secret_key").read_text().strip() == key

    mail.clear()
    with running_server(restored, **target) as server:
        check_restored_index(server, manifest, secret, mail, tmp_path)


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A data directory with one account and two imported wheels, and its backup."""
    root = tmp_path_factory.mktemp("small")
    env = relatch_env(root / "data")
    for version in ("1.0", "1.1"):
        dist = build_wheel("small-pkg", version)
        (root / dist.filename).write_bytes(dist.content)
    assert relatch(env, "migrate", "--verbosity", "0").returncode == 0
    made = relatch(env, "shell", "-c", "from relatch.accounts.provisioning import "
                   "create_verified_user as c; c(username='maria', email='m@example.org', "
                   "password=None)")
    assert made.returncode == 0, made.stderr
    imported = relatch(env, "index_import_file", *map(str, sorted(root.glob("*.whl"))),
                       "--owner", "maria")
    assert imported.returncode == 0, imported.stderr
    done = relatch(env, "backup", str(root / "backup"))
    assert done.returncode == 0, done.stdout + done.stderr
    return root / "data", root / "backup"


def copy_of(backup: Path, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    copy = tmp_path / "backup-copy"
    shutil.copytree(backup, copy)
    return copy, json.loads((copy / "manifest.json").read_text())


def test_a_backup_refuses_a_directory_that_is_not_empty(
    small_index: tuple[Path, Path], tmp_path: Path
) -> None:
    data_dir, _ = small_index
    target = tmp_path / "backup"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    done = relatch(relatch_env(data_dir), "backup", str(target))
    assert done.returncode == 1
    assert "is not empty; nothing was written" in done.stderr
    assert tree(target) == {"notes.txt": sha256(target / "notes.txt")}


def test_a_backup_fails_loudly_and_leaves_nothing_when_a_stored_file_is_damaged_or_gone(
    small_index: tuple[Path, Path], tmp_path: Path
) -> None:
    source, _ = small_index
    data_dir = tmp_path / "data"
    shutil.copytree(source, data_dir)
    env = relatch_env(data_dir)
    wheels = sorted((data_dir / "files").rglob("*.whl"))
    wheels[0].write_bytes(wheels[0].read_bytes() + b"tampered")
    wheels[1].unlink()
    done = relatch(env, "backup", str(tmp_path / "backup"))
    assert done.returncode == 1
    assert "2 files of the snapshot could not be backed up" in done.stderr
    assert f"{wheels[0].name}: its SHA-256 in the storage is" in done.stderr
    assert f"{wheels[1].name}: missing from the storage" in done.stderr
    assert "The partial backup was removed" in done.stderr
    assert not (tmp_path / "backup").exists()  # nothing that could pass for a backup


def test_a_restore_refuses_a_target_with_data_and_changes_nothing(
    small_index: tuple[Path, Path]
) -> None:
    data_dir, backup = small_index
    before = tree(data_dir)
    done = relatch(relatch_env(data_dir), "restore", str(backup))
    assert done.returncode == 1
    assert "the target is not empty" in done.stderr
    assert "holds data (1 account, 1 project, 2 files" in done.stderr
    assert "already holds files" in done.stderr and "--force" in done.stderr
    assert tree(data_dir) == before


def test_a_restore_refuses_a_damaged_file_in_the_backup_and_changes_nothing(
    small_index: tuple[Path, Path], tmp_path: Path
) -> None:
    _, backup = small_index
    copy, manifest = copy_of(backup, tmp_path)
    damaged = copy / "files" / manifest["files"]["entries"][0]["path"]
    damaged.write_bytes(b"x" + damaged.read_bytes()[1:])
    done = relatch(relatch_env(tmp_path / "target"), "restore", str(copy))
    assert done.returncode == 1
    assert "1 file of the backup cannot be trusted" in done.stderr
    assert "its SHA-256 does not match the manifest" in done.stderr
    assert not (tmp_path / "target").exists()


def test_a_restore_refuses_a_backup_without_its_signing_key_or_manifest(
    small_index: tuple[Path, Path], tmp_path: Path
) -> None:
    _, backup = small_index
    copy, _ = copy_of(backup, tmp_path)
    (copy / "secret_key").unlink()
    env = relatch_env(tmp_path / "target")
    done = relatch(env, "restore", str(copy))
    assert done.returncode == 1
    assert "the backup has no signing key" in done.stderr
    assert "every authenticator-app code fails" in done.stderr
    assert not (tmp_path / "target").exists()

    # A backup that never finished has no manifest: it is not taken for one.
    (copy / "manifest.json").unlink()
    done = relatch(env, "restore", str(copy))
    assert done.returncode == 1 and "no manifest.json" in done.stderr
    assert not (tmp_path / "target").exists()

    # A key set in the environment that is not the backup's would break every app code.
    copy2, _ = copy_of(backup, tmp_path / "again")
    done = relatch({**env, "RELATCH_SECRET_KEY": "another-key-" + "y" * 40}, "restore",
                   str(copy2))
    assert done.returncode == 1 and "RELATCH_SECRET_KEY is set to another key" in done.stderr
    assert not (tmp_path / "target").exists()
