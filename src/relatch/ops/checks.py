"""What /health/ready checks, and which checks decide readiness.

Required (a failure answers 503, so a load balancer sends requests to other hosts): the
database and the file storage. Without either this host cannot answer most requests, and
another host may well reach them (a host's own network, its mount, its credentials).

Reported only (their state is in the answer, never a 503): the worker, the task queue and the
mail queue. They are shared by every host or serve none of the requests in flight: a slow or
dead worker delays mail and housekeeping, and taking hosts out of the pool would not speed it
up; it would take every host out at once and turn a delay into an outage.
"""

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connections
from django.db.utils import load_backend

from relatch.ops import queues
from relatch.web.health.heartbeat import last_beat

CHECK_TIMEOUT = 3.0  # seconds a required check may take before it counts as failed
WORKER_STALE_AFTER = 120.0  # seconds without a heartbeat (it beats every 10 s)
TASK_LAG_LIMIT = 300.0  # seconds the oldest due task may wait before the queue is "behind"


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``state`` is a word (ok, failing, stale, behind, unknown) and
    ``detail`` a short plain sentence for the operator."""

    name: str
    state: str
    detail: str
    required: bool

    @property
    def failed(self) -> bool:
        return self.required and self.state != "ok"

    def line(self) -> str:
        return f"{self.name}: {self.detail}"


def plain_error(exc: BaseException) -> str:
    """The part of an error an operator needs ("connection refused"), without the driver's
    preamble (libpq's 'connection to server at "…", port … failed: ')."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = text.rpartition(" failed: ")[2].removeprefix("FATAL:").strip()
    return (text[:1].lower() + text[1:])[:200] or type(exc).__name__


# Required checks run in a thread of their own with a time limit: a database host that drops
# packets or a hung mount must make the probe fail, not hang it (the balancer's own timeout
# would then only say "no answer"). While one call still hangs no other is started, so a
# probe every second cannot pile up threads.
_pending: dict[str, float] = {}
_pending_lock = threading.Lock()


def _bounded(name: str, probe: Callable[[], str], *, required: bool = True) -> Check:
    with _pending_lock:
        since = _pending.get(name)
        if since is None:
            _pending[name] = time.monotonic()
    if since is not None:
        waited = time.monotonic() - since
        return Check(name, "failing", f"no answer for {waited:.0f} s", required)
    outcome: dict[str, str] = {}

    def run() -> None:
        try:
            outcome["ok"] = probe()
        except Exception as exc:  # noqa: BLE001  (every failure is the check's answer)
            outcome["error"] = plain_error(exc)
        finally:
            with _pending_lock:
                _pending.pop(name, None)

    thread = threading.Thread(target=run, name=f"health-{name}", daemon=True)
    thread.start()
    thread.join(CHECK_TIMEOUT)
    if "ok" in outcome:
        return Check(name, "ok", outcome["ok"], required)
    if "error" in outcome:
        return Check(name, "failing", outcome["error"], required)
    return Check(name, "failing", f"no answer within {CHECK_TIMEOUT:.0f} s", required)


def _probe_database() -> str:
    """One query on a connection of the check's own, with short timeouts: the web threads'
    kept connections are neither used nor disturbed."""
    settings_dict = dict(connections.settings["default"])
    options = dict(settings_dict.get("OPTIONS") or {})
    if settings_dict["ENGINE"] == "django.db.backends.postgresql":
        options["connect_timeout"] = max(2, int(CHECK_TIMEOUT))  # libpq's least is 2
        options["options"] = f"-c statement_timeout={int(CHECK_TIMEOUT * 1000)}"
    elif settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        options["timeout"] = CHECK_TIMEOUT
    settings_dict["OPTIONS"] = options
    wrapper = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, "health")
    try:
        with wrapper.cursor() as cursor:
            # A table Relatch made, not just "SELECT 1": an empty or wrong database fails too.
            cursor.execute("SELECT 1 FROM django_migrations LIMIT 1")
    finally:
        wrapper.close()
    return "answers"


def _probe_storage() -> str:
    """Write, read back and remove a small file where distribution files are stored."""
    payload = secrets.token_bytes(16)
    name = f"health/{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
    saved = default_storage.save(name, ContentFile(payload))
    try:
        with default_storage.open(saved, "rb") as stored:
            read = stored.read()
    finally:
        default_storage.delete(saved)
    if read != payload:
        raise OSError(0, "a file read back differs from what was written")
    return "writable and readable"


def ago(seconds: float) -> str:
    """"45 s ago", "14 min ago", "3 h ago"."""
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 3 * 3600:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"


def worker() -> Check:
    seen = last_beat()
    if seen is None:
        return Check("worker", "unknown", "never seen on this host", required=False)
    age = max(0.0, time.time() - seen)
    state = "stale" if age > WORKER_STALE_AFTER else "ok"
    return Check("worker", state, f"last seen {ago(age)}", required=False)


def tasks(now: datetime) -> Check:
    due = queues.due_tasks(now)
    if due.oldest_age > TASK_LAG_LIMIT:
        return Check("tasks", "behind", f"{due.count} due, the oldest waiting "
                     f"{ago(due.oldest_age).removesuffix(' ago')}", required=False)
    return Check("tasks", "ok", f"{due.count} due", required=False)


def mail() -> Check:
    found = queues.mail_queue()
    detail = f"{found.pending} waiting, {found.failing} failing"
    if found.failing:
        return Check("mail", "failing", f"{detail} (last: {found.last_outcome})", required=False)
    return Check("mail", "ok", detail, required=False)


def _reported(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as exc:  # noqa: BLE001  (a report must not turn into a 500)
        return Check(name, "unknown", plain_error(exc), required=False)


def run_checks(now: datetime) -> list[Check]:
    """Every check, the required ones first. The queue checks read the database, so they
    are skipped (unknown) while it fails."""
    database = _bounded("database", _probe_database)
    found = [database, _bounded("storage", _probe_storage), _reported("worker", worker)]
    if database.failed:
        found += [Check(name, "unknown", "database unavailable", required=False)
                  for name in ("tasks", "mail")]
    else:
        found += [_reported("tasks", lambda: tasks(now)), _reported("mail", mail)]
    return found
