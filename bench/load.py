"""A mixed load on a real ``relatch serve``: installs, sign-ins, uploads, recovery requests.

Starts ``relatch serve`` (gunicorn + the background worker) on a fresh database of its own
(PostgreSQL by default, with Redis as production runs it; or the embedded SQLite), with its
mail going to an SMTP sink in this process. Seeds accounts and upload tokens, uploads a first
file to a few projects, measures each kind of work once on the idle server (the baseline),
then runs concurrent simulated clients for ``--duration`` seconds. Every simulated person comes
from their own address (X-Forwarded-For behind ``RELATCH_PROXY_COUNT=1``), so per-IP limits
see many people, as in production.

Kinds of work (weights in brackets):
- install [6]: GET /simple/<project>/, download one or two of its files, check each file's
  SHA-256 against the page's ``#sha256=`` fragment (and against what was uploaded);
- sign-in [2]: the password form (GET for the CSRF token, POST, follow to the account page);
- upload [2]: POST /legacy/ as twine does (multipart, sha256_digest, API token), wheels and
  sdists of 2 KB to 1.5 MB, mostly new versions of existing projects, some new projects;
- recovery [1]: the requester form, then the 6-digit code from the mail (delivered by the
  worker to the sink), then the confirmation that files the request.

Afterwards: every upload that was accepted must be listed on its project page with the digest
it was uploaded with and served with those bytes; no stored file may lack its row (and no row
its file); all queued mail must be delivered. Exit status 1 on any server error (5xx, a
dropped connection), unexpected status, lost or corrupted upload, orphan file or undelivered
mail.

With ``--faults`` (issue 18), three faults happen inside the load, at fractions of
``--duration`` so that a short run has them too:
- at 20 %: the background worker (the ``relatch serve`` child running ``db_worker``) is killed
  with SIGKILL; the supervisor must start another;
- at 45 %: the database is stopped for 10 s and started again on the same port (PostgreSQL
  only: the server is then a private one of this script's, ``tests/private_postgres.py``,
  never the shared one; skipped with SQLite);
- at 65 %: the SMTP sink stops taking mail (connections refused) for 20 % of the duration,
  at least 60 s, then takes it again.
5xx and dropped connections are then counted apart inside the database outage (from the stop
to 15 s after the start) and outside it: outside, there must be none. A recovery code that
does not come in time during a fault is expected (counted, not a failure), but its mail must
have reached the sink by the end; the queue gets 5 minutes to drain (the retry back-off after
a long outage is minutes, a waiting message is probed every minute).

    .venv/bin/python bench/load.py [--duration 600] [--clients 12] [--database postgres|sqlite]
        [--faults]
    .venv/bin/python bench/load.py --duration 60          # the short form
"""
# ruff: noqa: T201, S311  (a script run by hand: it prints; random only shapes the load)

import argparse
import hashlib
import itertools
import json
import os
import random
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.index.dists import Dist, build_sdist, build_wheel  # noqa: E402
from tests.serving import (  # noqa: E402
    Server,
    direct_children,
    free_port,
    running_server,
    wait_for,
)

PASSWORD = "load test passphrase, not a real one"  # noqa: S105
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432"
DEFAULT_REDIS = "redis://127.0.0.1:6379/7"
WEIGHTS = {"install": 6, "signin": 2, "upload": 2, "recovery": 1}
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
LINK_RE = re.compile(r'href="([^"#]+)#sha256=([0-9a-f]{64})"')
CODE_RE = re.compile(r"Your code: (\d{6})")
MAIL_WAIT = 30.0  # seconds a recovery client waits for its code before counting it late
# --faults: when each fault starts (fractions of --duration) and how long it lasts.
KILL_AT, DATABASE_AT, SMTP_AT = 0.20, 0.45, 0.65
DATABASE_DOWN = 10.0  # seconds
SMTP_DOWN_FRACTION, SMTP_DOWN_AT_LEAST = 0.20, 60.0
DATABASE_GRACE = 15.0  # seconds after the database is back that still count as its outage
FAULT_GRACE = 15.0  # a late recovery code this long after a fault still counts as its doing
MAIL_DRAIN = 120.0  # seconds the queue gets to drain after the load; 300 with --faults
MAIL_DRAIN_FAULTS = 300.0
SEED = """
import json
from relatch.accounts.models import User
from relatch.accounts.provisioning import create_verified_user
from relatch.index.tokens.services import create_token
from relatch.mfa.models import TotpDevice
first = create_verified_user(username="load-user-0", email="load-user-0@example.org",
                             password={password!r})
for i in range(1, {users}):
    create_verified_user(username=f"load-user-{{i}}", email=f"load-user-{{i}}@example.org",
                         password=None)
# One Argon2 hash for all: seeding stays fast, and each sign-in still verifies it.
User.objects.filter(username__startswith="load-user-").update(password=first.password)
tokens = []
for j in range({uploaders}):
    user = create_verified_user(username=f"load-up-{{j}}", email=f"load-up-{{j}}@example.org",
                                password=None)
    TotpDevice.objects.create(user=user, encrypted_secret="x")  # uploads need a second factor
    tokens.append(create_token(request=None, user=user, name="load", project=None,
                               expires_at=None)[1])
print("SEED " + json.dumps(tokens))
"""
CHECK = """
import json
from django.core.files.storage import default_storage
from relatch.index.models import File
from relatch.notify.models import OutgoingEmail
rows = [dict(filename=f.filename, sha256=f.sha256_digest, path=f.path,
             metadata=bool(f.metadata_sha256_digest),
             project=f.release.project.normalized_name)
        for f in File.objects.select_related("release__project")]
pending = OutgoingEmail.objects.filter(status="pending").count()
failed = OutgoingEmail.objects.filter(status="failed").count()
sent = OutgoingEmail.objects.filter(status="sent").count()
print("CHECK " + json.dumps(dict(rows=rows, pending=pending, failed=failed, sent=sent,
                                 location=str(default_storage.location))))
"""


# --- the SMTP sink ------------------------------------------------------------------------

class MailSink:
    """An SMTP server on loopback; finds the code mailed to an address."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.codes: dict[str, str] = {}
        self.count = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.port = free_port()
        self._controller_class = Controller
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.accepting = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.content, policy=policy.default)
        body = message.get_body(preferencelist=("plain",))
        text = str(body.get_content()) if body is not None else ""  # type: ignore[attr-defined]
        with self._arrived:
            self.count += 1
            if found := CODE_RE.search(text):
                for address in envelope.rcpt_tos:
                    self.codes[address.lower()] = found.group(1)
            self._arrived.notify_all()
        return "250 OK"

    def wait_for_code(self, address: str, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while address not in self.codes and (left := deadline - time.monotonic()) > 0:
                self._arrived.wait(left)
            return self.codes.get(address)

    def delivered(self, address: str) -> bool:
        with self._lock:
            return address in self.codes

    def stop_accepting(self) -> None:
        """An SMTP outage: nothing listens on the port any more (connections are refused)."""
        if self.accepting:
            self.accepting = False
            self.controller.stop()

    def start_accepting(self) -> None:
        """The outage is over: a new server on the same port."""
        if not self.accepting:
            self.controller = self._controller_class(self, hostname="127.0.0.1",
                                                     port=self.port)
            self.controller.start()
            self.accepting = True

    @contextmanager
    def running(self) -> Iterator[int]:
        self.start_accepting()
        try:
            yield self.port
        finally:
            self.stop_accepting()


# --- what the clients record --------------------------------------------------------------

@dataclass
class Bad:
    """A response that was not the expected one, and when its request ran (monotonic)."""

    start: float
    end: float
    what: str
    status: str
    server_error: bool  # a 5xx or no answer at all (the exception's name)
    detail: str = ""

    def text(self) -> str:
        kind = "server error" if self.server_error else "unexpected"
        return f"{self.what}: {kind} {self.status}{': ' + self.detail if self.detail else ''}"


@dataclass
class Late:
    """A recovery code that did not come within MAIL_WAIT: while it was awaited."""

    start: float
    end: float
    contact: str


@dataclass
class Tally:
    """Every response by request kind and status; each operation's latency by kind."""

    statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    problems: list[str] = field(default_factory=list)
    bad: list[Bad] = field(default_factory=list)
    late: list[Late] = field(default_factory=list)
    uploads: dict[str, tuple[str, str]] = field(default_factory=dict)  # filename: project, sha
    lock: threading.Lock = field(default_factory=threading.Lock)

    def status(self, what: str, status: int | str, expected: set[int], start: float,
               detail: str = "") -> None:
        end = time.monotonic()
        with self.lock:
            self.statuses[what][str(status)] += 1
            if isinstance(status, str) or status >= 500:
                self.bad.append(Bad(start, end, what, str(status), True, detail))
            elif status not in expected:
                self.bad.append(Bad(start, end, what, str(status), False, detail))

    @property
    def server_errors(self) -> int:
        return sum(b.server_error for b in self.bad)

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)


class FailedError(Exception):
    """The operation could not go on (already counted)."""


@dataclass
class World:
    base: str
    tokens: list[str]
    projects: dict[int, list[str]]  # uploader index: projects it owns
    users: int
    sink: MailSink
    tally: Tally
    versions: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    ips: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_version(self) -> int:
        with self.lock:
            return next(self.versions)

    def new_person(self) -> requests.Session:
        """A browser of its own, from an address of its own (198.18.0.0/15 is for benchmarks;
        it only appears in the header, nothing is sent there)."""
        with self.lock:
            n = next(self.ips)
        session = requests.Session()
        session.headers["X-Forwarded-For"] = f"198.{18 + (n >> 16) % 2}.{(n >> 8) % 256}.{n % 256}"
        session.headers["User-Agent"] = "relatch-load/1.0"
        # One connection per request: a kept-alive connection that gunicorn closes after 2 s
        # idle races with the client's next request on it; browsers and pip retry that, and
        # it is not a server fault, so it must not count as one.
        session.headers["Connection"] = "close"
        return session

    def known_projects(self) -> list[str]:
        with self.lock:
            return [p for owned in self.projects.values() for p in owned]


def call(world: World, session: requests.Session, what: str, method: str, path: str,
         expected: set[int], **kwargs: Any) -> requests.Response:
    start = time.monotonic()
    try:
        response = session.request(method, world.base + path, timeout=120,
                                   allow_redirects=False, **kwargs)
    except requests.RequestException as error:
        world.tally.status(what, type(error).__name__, expected, start, str(error))
        raise FailedError from None
    world.tally.status(what, response.status_code, expected, start)
    if response.status_code not in expected:
        raise FailedError
    return response


def _csrf(response: requests.Response) -> str:
    found = CSRF_RE.search(response.text)
    if not found:
        raise FailedError
    return found.group(1)


# --- the four kinds of work ---------------------------------------------------------------

def install(world: World, rng: random.Random, _client: int) -> None:
    projects = world.known_projects()
    project = rng.choice(projects)
    session = world.new_person()
    page = call(world, session, "GET /simple/<p>/", "GET", f"/simple/{project}/", {200})
    links = LINK_RE.findall(page.text)
    if not links:
        world.tally.problem(f"install: /simple/{project}/ lists no file")
        return
    for href, digest in rng.sample(links, min(2, len(links))):
        path = "/" + href.split("://", 1)[-1].split("/", 1)[1] if "://" in href else href
        body = call(world, session, "GET /files/", "GET", path, {200}).content
        if hashlib.sha256(body).hexdigest() != digest:
            world.tally.problem(f"install: {path} does not match its page's sha256")


def signin(world: World, rng: random.Random, _client: int) -> None:
    session = world.new_person()
    form = call(world, session, "GET /account/login/", "GET", "/account/login/", {200})
    username = f"load-user-{rng.randrange(world.users)}"
    done = call(world, session, "POST /account/login/", "POST", "/account/login/", {302},
                data={"csrfmiddlewaretoken": _csrf(form), "identifier": username,
                      "password": PASSWORD})
    target = done.headers.get("Location", "")
    if not target.startswith("/account/"):
        world.tally.problem(f"sign-in: redirected to {target!r}, not the account")
        return
    call(world, session, "GET /account/", "GET", target, {200})


def _random_dist(rng: random.Random, project: str, version: int) -> Dist:
    size = rng.choices([2_000, 200_000, 1_500_000], weights=[7, 2, 1])[0]
    if rng.random() < 0.3:
        return build_sdist(project, f"1.{version}")
    # Hex of random bytes: compresses to half, so the wheel is about size/2 bytes and unique.
    source = f"DATA = {rng.randbytes(size // 2).hex()!r}\n"
    return build_wheel(project, f"1.{version}", module_source=source)


def upload_dist(world: World, session: requests.Session, token: str, dist: Dist,
                expected: set[int]) -> requests.Response:
    fields: list[tuple[str, str]] = []
    for key, value in dist.fields.items():
        fields += [(key, v) for v in ([value] if isinstance(value, str) else value)]
    fields.append(("sha256_digest", dist.sha256))
    return call(world, session, "POST /legacy/", "POST", "/legacy/", expected,
                auth=("__token__", token), data=fields,
                files={"content": (dist.filename, dist.content, "application/octet-stream")})


def upload(world: World, rng: random.Random, client: int) -> None:
    uploader = client % len(world.tokens)
    version = world.next_version()
    with world.lock:
        owned = world.projects[uploader]
        fresh = rng.random() < 0.15
        project = f"load-{uploader}-new-{version}" if fresh else rng.choice(owned)
    dist = _random_dist(rng, project, version)
    session = world.new_person()
    try:
        upload_dist(world, session, world.tokens[uploader], dist, {200})
    except FailedError:
        return
    with world.lock:
        world.tally.uploads[dist.filename] = (project, dist.sha256)
        if fresh:
            owned.append(project)


def recovery(world: World, rng: random.Random, _client: int) -> None:
    session = world.new_person()
    page = call(world, session, "GET /recovery/request/new/", "GET", "/recovery/request/new/",
                {200})
    contact = f"load-contact-{world.next_version()}@example.net"
    # Some requests name an account, some a name nobody has: both get the same answer.
    username = (f"load-user-{rng.randrange(world.users)}" if rng.random() < 0.7
                else f"nobody-{rng.randrange(10**9)}")
    call(world, session, "POST /recovery/request/new/", "POST", "/recovery/request/new/", {302},
         data={"csrfmiddlewaretoken": _csrf(page), "username": username,
               "contact_email": contact, "still_has": ["email"],
               "description": "I lost my phone and my codes.", "agreed": "on",
               "acknowledged": "on"})
    form = call(world, session, "GET /recovery/request/confirm/", "GET",
                "/recovery/request/confirm/", {200})
    waited_from = time.monotonic()
    code = world.sink.wait_for_code(contact, MAIL_WAIT)
    if code is None:
        with world.tally.lock:
            world.tally.late.append(Late(waited_from, time.monotonic(), contact))
        return
    done = call(world, session, "POST /recovery/request/confirm/", "POST",
                "/recovery/request/confirm/", {302},
                data={"csrfmiddlewaretoken": _csrf(form), "code": code})
    if not done.headers.get("Location", "").endswith("/recovery/request/filed/"):
        world.tally.problem("recovery: a right code did not file the request")


KINDS: dict[str, Callable[[World, random.Random, int], None]] = {
    "install": install, "signin": signin, "upload": upload, "recovery": recovery,
}


# --- running it ---------------------------------------------------------------------------

def timed(world: World, kind: str, rng: random.Random, client: int) -> float:
    started = time.perf_counter()
    with suppress(FailedError):
        KINDS[kind](world, rng, client)
    return time.perf_counter() - started


def client_loop(world: World, client: int, deadline: float, seed: int) -> None:
    rng = random.Random(seed * 1000 + client)
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    while time.monotonic() < deadline:
        kind = rng.choices(kinds, weights=weights)[0]
        seconds = timed(world, kind, rng, client)
        with world.tally.lock:
            world.tally.latencies[kind].append(seconds)


def baseline(world: World, rounds: int) -> dict[str, float]:
    """Median seconds of each kind of work on the idle server, one client."""
    rng = random.Random(0)
    return {kind: statistics.median(timed(world, kind, rng, 0) for _ in range(rounds))
            for kind in KINDS}


def seed(server: Server, world_base: str, users: int, uploaders: int, projects: int,
         sink: MailSink) -> World:
    done = server.relatch("shell", "-c", SEED.format(password=PASSWORD, users=users,
                                                     uploaders=uploaders))
    line = next((x for x in done.stdout.splitlines() if x.startswith("SEED ")), None)
    if line is None:
        raise RuntimeError(f"seeding failed:\n{done.stdout}\n{done.stderr}")
    tokens = json.loads(line.removeprefix("SEED "))
    world = World(world_base, tokens, {j: [] for j in range(uploaders)}, users, sink, Tally())
    rng = random.Random(1)
    for j, token in enumerate(tokens):
        for k in range(projects):
            name = f"load-{j}-{k}"
            dist = _random_dist(rng, name, world.next_version())
            upload_dist(world, world.new_person(), token, dist, {200})
            world.tally.uploads[dist.filename] = (name, dist.sha256)
            world.projects[j].append(name)
    return world


# --- afterwards: nothing lost ----------------------------------------------------------------

def server_state(server: Server) -> dict[str, Any]:
    done = server.relatch("shell", "-c", CHECK)
    line = next((x for x in done.stdout.splitlines() if x.startswith("CHECK ")), None)
    if line is None:
        raise RuntimeError(f"the check failed:\n{done.stdout}\n{done.stderr}")
    return dict(json.loads(line.removeprefix("CHECK ")))


def wait_for_mail(server: Server, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = server_state(server)
        if state["pending"] == 0 or time.monotonic() > deadline:
            return state
        time.sleep(2)


def verify_uploads(world: World, state: dict[str, Any]) -> list[str]:
    """Every accepted upload listed with its digest and served with those bytes; every row
    with its file and every stored file with its row."""
    problems: list[str] = []
    rows = {row["filename"]: row for row in state["rows"]}
    for filename, (_project, sha256) in world.tally.uploads.items():
        row = rows.get(filename)
        if row is None:
            problems.append(f"lost upload: {filename} was accepted but has no row")
        elif row["sha256"] != sha256:
            problems.append(f"corrupted upload: {filename} row digest {row['sha256']}")
    session = requests.Session()
    by_project: dict[str, list[str]] = defaultdict(list)
    for filename, (project, _sha) in world.tally.uploads.items():
        by_project[project].append(filename)
    for project, filenames in by_project.items():
        page = session.get(f"{world.base}/simple/{project}/", timeout=60)
        listed = {href.rsplit("/", 1)[-1]: (href, digest)
                  for href, digest in LINK_RE.findall(page.text)}
        for filename in filenames:
            if filename not in listed:
                problems.append(f"lost upload: {filename} not on /simple/{project}/")
                continue
            href, digest = listed[filename]
            expected = world.tally.uploads[filename][1]
            body = session.get(world.base + href, timeout=120).content
            if digest != expected or hashlib.sha256(body).hexdigest() != expected:
                problems.append(f"corrupted upload: {filename} served with another digest")
    location = Path(state["location"])
    stored = {str(p.relative_to(location)) for p in (location / "packages").rglob("*")
              if p.is_file()} if (location / "packages").exists() else set()
    expected_files = {row["path"] for row in rows.values()}
    expected_files |= {row["path"] + ".metadata" for row in rows.values() if row["metadata"]}
    problems += [f"orphan file (no row): {name}" for name in sorted(stored - expected_files)]
    problems += [f"row without its file: {name}" for name in sorted(expected_files - stored)]
    return problems


# --- the faults (--faults) ---------------------------------------------------------------------

@dataclass
class Fault:
    """One fault: when it began and ended (monotonic), what happened, or why it was skipped."""

    name: str
    start: float | None = None
    end: float | None = None
    skipped: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    # The server log's size (bytes) when it began and at the end of its grace: the tracebacks
    # between are the fault's.
    log_from: int = 0
    log_to: int = 0

    def window(self, grace: float) -> tuple[float, float] | None:
        if self.start is None or self.end is None:
            return None
        return self.start, self.end + grace


class Faults:
    """Runs the three faults in a thread of their own, each at its fraction of the load."""

    def __init__(self, server: Server, sink: MailSink, postgres: Any, started: float,
                 duration: float) -> None:
        self.server, self.sink, self.postgres = server, sink, postgres
        self.started, self.duration = started, duration
        self.kill = Fault("worker kill")
        self.database = Fault("database restart")
        self.smtp = Fault("SMTP outage")
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def all(self) -> list[Fault]:
        return [self.kill, self.database, self.smtp]

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        for step in (self._kill_worker, self._restart_database, self._smtp_outage):
            try:
                step()
            except Exception as error:  # noqa: BLE001 - reported, and the run fails
                self.errors.append(f"{step.__name__}: {error!r}")

    def _wait_until(self, fraction: float) -> None:
        time.sleep(max(0.0, self.started + fraction * self.duration - time.monotonic()))

    def _log_size(self) -> int:
        return self.server.log.stat().st_size

    def _worker(self) -> int | None:
        found = [pid for pid, command in direct_children(self.server.process.pid).items()
                 if "db_worker" in command]
        return found[0] if found else None

    def _kill_worker(self) -> None:
        self._wait_until(KILL_AT)
        fault = self.kill
        old = self._worker()
        if old is None:
            raise RuntimeError("relatch serve has no child running db_worker")
        fault.start, fault.log_from = time.monotonic(), self._log_size()
        os.kill(old, signal.SIGKILL)
        new = wait_for(lambda: (pid := self._worker()) not in (None, old) and pid, 120, 0.2)
        fault.end, fault.log_to = time.monotonic(), self._log_size()
        fault.details = {"killed_pid": old, "new_pid": new or None,
                         "restarted_after_s": round(fault.end - fault.start, 1)}
        if not new:
            self.errors.append(f"the worker (pid {old}) was not started again within 120 s")

    def _restart_database(self) -> None:
        self._wait_until(DATABASE_AT)
        fault = self.database
        if self.postgres is None:
            fault.skipped = "SQLite: the database is a file, there is no server to restart"
            return
        fault.start, fault.log_from = time.monotonic(), self._log_size()
        try:
            self.postgres.stop("fast")  # ends every session, as an operator's restart does
            time.sleep(max(0.0, fault.start + DATABASE_DOWN - time.monotonic()))
        finally:
            self.postgres.start()  # the same port and data directory
            fault.end = time.monotonic()
        time.sleep(DATABASE_GRACE)
        fault.log_to = self._log_size()
        fault.details = {"down_s": round(fault.end - fault.start, 1),
                         "port": self.postgres.port, "grace_s": DATABASE_GRACE}

    def _smtp_outage(self) -> None:
        self._wait_until(SMTP_AT)
        fault = self.smtp
        length = max(SMTP_DOWN_FRACTION * self.duration, SMTP_DOWN_AT_LEAST)
        fault.start, fault.log_from = time.monotonic(), self._log_size()
        delivered_before = self.sink.count
        try:
            self.sink.stop_accepting()
            time.sleep(max(0.0, fault.start + length - time.monotonic()))
        finally:
            self.sink.start_accepting()
            fault.end, fault.log_to = time.monotonic(), self._log_size()
        fault.details = {"down_s": round(fault.end - fault.start, 1),
                         "delivered_during": self.sink.count - delivered_before}


def _overlaps(start: float, end: float, window: tuple[float, float] | None) -> bool:
    return window is not None and start <= window[1] and end >= window[0]


def judge(world: World, faults: Faults | None, log: bytes) -> tuple[list[str], dict[str, Any]]:
    """The run's problems (failures), and with faults what was put down to them.

    Without faults every 5xx, dropped connection, unexpected status and late recovery code
    is a problem. With them, those whose request ran inside the database outage (plus its
    grace) are counted apart and are no failure; a recovery code that came late while a fault
    was on (plus FAULT_GRACE) is expected, but its mail must have reached the sink by the end.
    """
    tally = world.tally
    problems: list[str] = []
    database = faults.database.window(DATABASE_GRACE) if faults else None
    inside = [b for b in tally.bad if _overlaps(b.start, b.end, database)]
    outside = [b for b in tally.bad if not _overlaps(b.start, b.end, database)]
    problems += [b.text() for b in outside]
    windows = {f.name: f.window(FAULT_GRACE) for f in faults.all} if faults else {}
    expected_late: Counter[str] = Counter()
    for late in tally.late:
        # The SMTP outage first: when faults overlap, it is the likeliest cause.
        cause = next((name for name in ("SMTP outage", "database restart", "worker kill")
                      if _overlaps(late.start, late.end, windows.get(name))), None)
        if cause:
            expected_late[cause] += 1
        else:
            problems.append(f"recovery: no code for {late.contact} after {MAIL_WAIT:.0f} s")
    undelivered = [late.contact for late in tally.late if not world.sink.delivered(late.contact)]
    problems += [f"lost mail: the code for {c} never reached the sink" for c in undelivered]
    if faults is None:
        return problems, {"tracebacks_outside": log.count(b"Traceback")}
    problems += [f"fault could not be made: {e}" for e in faults.errors]
    db = faults.database
    in_log = log[db.log_from:db.log_to] if db.start is not None else b""
    origin = faults.started

    def at(t: float | None) -> float | None:
        return None if t is None else round(t - origin, 1)

    summary: dict[str, Any] = {
        "faults": {f.name: ({"skipped": f.skipped} if f.skipped else
                            {"from_s": at(f.start), "to_s": at(f.end), **f.details})
                   for f in faults.all},
        "database_window_s": None if database is None else [at(database[0]), at(database[1])],
        "server_errors_inside_database_outage": sum(b.server_error for b in inside),
        "unexpected_inside_database_outage": sum(not b.server_error for b in inside),
        "inside_by_status": dict(Counter(f"{b.what} {b.status}" for b in inside)),
        # How far the errors reached: the first request that failed and the last one's end.
        "inside_first_last_s": ([at(min(b.start for b in inside)), at(max(b.end for b in inside))]
                                if inside else None),
        "server_errors_outside": sum(b.server_error for b in outside),
        "unexpected_outside": sum(not b.server_error for b in outside),
        "late_codes_expected": dict(expected_late),
        "late_codes_unexpected": len(tally.late) - sum(expected_late.values()),
        "late_codes_delivered_by_end": len(tally.late) - len(undelivered),
        "tracebacks_inside_database_outage": in_log.count(b"Traceback"),
        "tracebacks_outside": log.count(b"Traceback") - in_log.count(b"Traceback"),
        "fault_errors": faults.errors,
    }
    return problems, summary


def outside_log(log: bytes, faults: Faults | None) -> str:
    """The server log without the database outage's part (whose tracebacks are expected)."""
    if faults is not None and faults.database.start is not None:
        log = log[:faults.database.log_from] + log[faults.database.log_to:]
    return log.decode(errors="replace")


def print_faults(summary: dict[str, Any]) -> None:
    print("  faults (seconds from the start of the load):")
    for name, fault in summary["faults"].items():
        if "skipped" in fault:
            print(f"    {name:17} skipped: {fault['skipped']}")
            continue
        extra = ", ".join(f"{k} {v}" for k, v in fault.items() if k not in ("from_s", "to_s"))
        print(f"    {name:17} {fault['from_s']} – {fault['to_s']} s ({extra})")
    window = summary["database_window_s"]
    print(f"    inside the database outage{f' {window[0]} – {window[1]} s' if window else ''} "
          f"(to {DATABASE_GRACE:.0f} s after it was back): "
          f"{summary['server_errors_inside_database_outage']} server errors, "
          f"{summary['unexpected_inside_database_outage']} other unexpected statuses, "
          f"{summary['tracebacks_inside_database_outage']} tracebacks")
    for what, n in sorted(summary["inside_by_status"].items()):
        print(f"      {what}: {n}")
    if first_last := summary["inside_first_last_s"]:
        print(f"      the first of them began at {first_last[0]} s, the last ended at "
              f"{first_last[1]} s")
    print(f"    outside it: {summary['server_errors_outside']} server errors, "
          f"{summary['unexpected_outside']} other unexpected statuses, "
          f"{summary['tracebacks_outside']} tracebacks")
    expected = summary["late_codes_expected"]
    print(f"    recovery codes later than {MAIL_WAIT:.0f} s during a fault (expected): "
          f"{sum(expected.values())} {dict(expected) if expected else ''}; outside the faults: "
          f"{summary['late_codes_unexpected']}; of all late codes, delivered by the end: "
          f"{summary['late_codes_delivered_by_end']}")
    print(f"    mail queue drained {summary['mail_drain_s']} s after the load")
    for error in summary["fault_errors"]:
        print(f"    FAULT ERROR {error}")


# --- the report -----------------------------------------------------------------------------

def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def report(world: World, base: dict[str, float], seconds: float, problems: list[str],
           state: dict[str, Any], log_errors: int, setup: str,
           faults: dict[str, Any] | None = None) -> dict[str, Any]:
    tally = world.tally
    print(f"\nMixed load, {setup}, {seconds:.0f} s")
    print(f"  {'kind':9} {'ops':>6} {'ops/s':>7} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'idle p50':>9} {'p50/idle':>9}")
    kinds: dict[str, Any] = {}
    for kind in KINDS:
        values = tally.latencies.get(kind, [])
        p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
        idle = base[kind] * 1000
        kinds[kind] = {"ops": len(values), "per_s": round(len(values) / seconds, 2),
                       "p50_ms": round(p50, 1), "p99_ms": round(p99, 1),
                       "idle_p50_ms": round(idle, 1)}
        print(f"  {kind:9} {len(values):6} {len(values) / seconds:7.2f} {p50:8.1f} {p99:8.1f} "
              f"{idle:9.1f} {p50 / idle if idle else 0:8.1f}x")
    requests_total = sum(sum(c.values()) for c in tally.statuses.values())
    print(f"  requests: {requests_total} ({requests_total / seconds:.1f}/s)")
    for what, counts in sorted(tally.statuses.items()):
        print(f"    {what:34} " + "  ".join(f"{s}: {n}" for s, n in sorted(counts.items())))
    print(f"  uploads accepted and checked: {len(tally.uploads)}; files in the database: "
          f"{len(state['rows'])}")
    print(f"  mail: {world.sink.count} delivered to the sink ({world.sink.count - state['sent']} "
          f"more than once), {state['sent']} sent, "
          f"{state['pending']} pending, {state['failed']} given up; recovery codes later than "
          f"{MAIL_WAIT:.0f} s: {len(tally.late)}")
    print(f"  server errors: {tally.server_errors}; tracebacks in the server log: {log_errors}")
    if faults is not None:
        print_faults(faults)
    every = tally.problems + problems
    for line in every[:30]:
        print(f"  PROBLEM {line}")
    if len(every) > 30:
        print(f"  … and {len(every) - 30} more")
    return {"setup": setup, "seconds": round(seconds), "kinds": kinds,
            "requests": requests_total, "statuses": {k: dict(v) for k, v in tally.statuses.items()},
            "uploads": len(tally.uploads), "server_errors": tally.server_errors,
            "problems": every, "mail_pending": state["pending"], "mail_failed": state["failed"],
            "mail_sent": state["sent"], "mail_at_sink": world.sink.count,
            "late_codes": len(tally.late), "log_errors": log_errors,
            **({"fault_summary": faults} if faults is not None else {})}


# --- the databases --------------------------------------------------------------------------

@contextmanager
def fresh_postgres(url: str, name: str) -> Iterator[str]:
    import psycopg

    with psycopg.connect(url + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{url}/{name}"
    finally:
        with psycopg.connect(url + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_redis(url: str) -> str:
    import redis

    redis.Redis.from_url(url).flushdb()  # counters of an earlier run must not limit this one
    return url


@dataclass
class Options:
    duration: float = 600
    clients: int = 12
    database: str = "postgres"
    postgres: str = DEFAULT_PG
    database_name: str = "relatch_load"
    redis: str | None = DEFAULT_REDIS
    users: int = 50
    uploaders: int = 6
    projects: int = 4
    seed: int = 7
    json: str = ""
    faults: bool = False


def run(options: Options) -> dict[str, Any]:
    """Run the whole measure; the result dict's ``ok`` says whether it passed."""
    sink = MailSink()
    with tempfile.TemporaryDirectory(prefix="relatch-load-") as tmp, sink.running() as smtp_port:
        env = {"RELATCH_PROXY_COUNT": "1", "RELATCH_EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}"}
        if options.redis:
            env["RELATCH_REDIS_URL"] = fresh_redis(options.redis)
        with _database(options) as (database_url, private):
            if database_url:
                env["RELATCH_DATABASE_URL"] = database_url
            setup = (f"{options.database}{' (a private server)' if private else ''}"
                     f"{' + Redis' if options.redis else ''}, {options.clients} clients"
                     f"{', with faults' if options.faults else ''}")
            return _run_server(Path(tmp), env, options, sink, setup, private)


@contextmanager
def _database(options: Options) -> Iterator[tuple[str, Any]]:
    """The database's URL ("" for SQLite) and, with --faults on PostgreSQL, the private
    server it lives on (which the faults restart; the shared one must never be)."""
    if options.database == "postgres" and options.faults:
        from tests import private_postgres

        if reason := private_postgres.available():
            raise SystemExit(f"--faults with PostgreSQL needs a private server: {reason}; "
                             "use --database sqlite")
        with private_postgres.private_postgres() as server:
            yield server.create_database(options.database_name), server
    elif options.database == "postgres":
        with fresh_postgres(options.postgres, options.database_name) as url:
            yield url, None
    else:
        yield "", None


def _run_server(work: Path, env: dict[str, str], options: Options, sink: MailSink,
                setup: str, postgres: Any = None) -> dict[str, Any]:
    with running_server(work, **env) as server:
        base = f"http://127.0.0.1:{server.port}"
        world = seed(server, base, options.users, options.uploaders, options.projects, sink)
        idle = baseline(world, rounds=3)
        deadline = time.monotonic() + options.duration
        started = time.monotonic()
        threads = [threading.Thread(target=client_loop, args=(world, n, deadline, options.seed))
                   for n in range(options.clients)]
        faults = (Faults(server, sink, postgres, started, options.duration)
                  if options.faults else None)
        for thread in threads:
            thread.start()
        if faults is not None:
            faults.start()
        for thread in threads:
            thread.join()
        seconds = time.monotonic() - started
        if faults is not None:
            faults.join()  # a short run's SMTP outage outlasts the load
        drain_from = time.monotonic()
        state = wait_for_mail(server, timeout=MAIL_DRAIN_FAULTS if faults else MAIL_DRAIN)
        drained = round(time.monotonic() - drain_from)
        problems = verify_uploads(world, state)
        if state["pending"]:
            problems.append(f"{state['pending']} mail(s) still pending {drained} s after the load")
        if state["failed"]:
            problems.append(f"{state['failed']} mail(s) given up")
        log_bytes = server.log.read_bytes()
        judged, summary = judge(world, faults, log_bytes)
        problems = judged + problems
        log_errors = summary["tracebacks_outside"]
        if log_errors:
            print_tracebacks(outside_log(log_bytes, faults))
        kept = Path(tempfile.gettempdir()) / f"relatch-load-{os.getpid()}.log"
        kept.write_bytes(log_bytes)
        print(f"server log: {kept}")
        if faults is not None:
            summary["mail_drain_s"] = drained
        result = report(world, idle, seconds, problems, state, log_bytes.count(b"Traceback"),
                        setup, summary if faults is not None else None)
    # With faults, the 5xx inside the database outage are counted apart (and are no failure).
    result["server_errors_outside"] = (summary["server_errors_outside"] if faults is not None
                                       else result["server_errors"])
    result["ok"] = (not result["problems"] and not result["server_errors_outside"]
                    and not log_errors)
    print("OK: no server error, nothing lost" if result["ok"] else "FAIL")
    return result


def print_tracebacks(log: str, most: int = 3) -> None:
    """The server's tracebacks (the first few), so a failed run says what broke."""
    lines = log.splitlines()
    starts = [n for n, line in enumerate(lines) if line.startswith("Traceback")][:most]
    for start in starts:
        end = next((n for n in range(start + 1, len(lines))
                    if lines[n] and not lines[n].startswith((" ", "\t"))), len(lines) - 1)
        print("\n".join(lines[max(start - 2, 0):end + 1]))


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the load, print the summary; 0 only when it passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of load")
    parser.add_argument("--clients", type=int, default=12, help="concurrent clients")
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--postgres", default=DEFAULT_PG, help="server URL, no database name")
    parser.add_argument("--database-name", default="relatch_load",
                        help="created fresh and dropped afterwards")
    parser.add_argument("--redis", default=None,
                        help=f"Redis URL (default {DEFAULT_REDIS} with postgres, none with "
                             "sqlite); 'none' for none")
    parser.add_argument("--json", default="", help="also write the result to this file")
    parser.add_argument("--faults", action="store_true",
                        help="kill the worker, restart the database (PostgreSQL: a private "
                             "server) and stop the SMTP sink during the load")
    args = parser.parse_args(argv)
    redis_url = args.redis or (DEFAULT_REDIS if args.database == "postgres" else "none")
    options = Options(duration=args.duration, clients=args.clients, database=args.database,
                      postgres=args.postgres.rstrip("/"), database_name=args.database_name,
                      redis=None if redis_url == "none" else redis_url, json=args.json,
                      faults=args.faults)
    result = run(options)
    if options.json:
        Path(options.json).write_text(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
