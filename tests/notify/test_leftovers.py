"""Mail that lost its delivery task while the server kept running is sent by the next tick
(notify/leftovers.py). The restart path is tested with real kills in tests/test_faults.py."""

import signal
import subprocess
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from relatch.notify.leftovers import SWEEP_GRACE, _worker_is_gone, worker_id
from relatch.notify.models import OutgoingEmail
from relatch.notify.services import deliver
from relatch.notify.worker import run_housekeeping, start_housekeeping
from relatch.recovery.tasks import recovery_tick
from tests.conftest import run_pending_tasks
from tests.serving import process_state, wait_for

pytestmark = pytest.mark.django_db


def stranded_mail(to: str, age: timedelta) -> OutgoingEmail:
    """A pending row whose on-commit callback never queued it (the process died first)."""
    return OutgoingEmail.objects.create(
        to=to, template="password_changed", context={"username": "alice"},
        created_at=timezone.now() - age,
    )


def test_the_tick_sends_mail_that_lost_its_task_and_leaves_fresh_mail_alone(mail: Any) -> None:
    old = stranded_mail("old@example.org", SWEEP_GRACE + timedelta(minutes=1))
    fresh = stranded_mail("fresh@example.org", timedelta(seconds=5))
    result = recovery_tick.call()
    assert result["mail_requeued"] == 1
    run_pending_tasks()
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.status == OutgoingEmail.Status.SENT and mail.to("old@example.org")
    assert fresh.status == OutgoingEmail.Status.PENDING and not mail.to("fresh@example.org")


def test_a_killed_worker_left_as_a_zombie_counts_as_gone() -> None:
    """A killed worker whose parent died too may stay a zombie (nobody reaps it in a
    container); its task must still be released."""
    child = subprocess.Popen(["sleep", "60"])  # noqa: S607  (a stand-in worker process)
    try:
        claimed_by = worker_id(child.pid)
        assert _worker_is_gone(claimed_by) is False
        child.send_signal(signal.SIGKILL)
        assert wait_for(lambda: process_state(child.pid) == "Z", 10)  # not reaped yet
        assert _worker_is_gone(claimed_by) is True
    finally:
        child.kill()
        child.wait()


def claimed_by(task: Any, worker: str, *, ago: timedelta) -> DBTaskResult:
    """``task`` queued, then claimed by ``worker`` ``ago`` and still running."""
    row = DBTaskResult.objects.get(id=task.id)
    row.claim(worker)
    DBTaskResult.objects.filter(pk=row.pk).update(started_at=timezone.now() - ago)
    return DBTaskResult.objects.get(pk=row.pk)


@pytest.mark.parametrize(("ago", "released"), [(timedelta(hours=2), True),
                                               (timedelta(minutes=5), False)])
def test_housekeeping_releases_a_dead_hosts_task_and_keeps_the_tick_going(
    ago: timedelta, released: bool
) -> None:
    """A host died while its worker ran the desk's tick: nothing on this host can see that
    worker, so its tick counts as stranded once it has run for an hour. Whatever its state,
    a tick is queued at once, so recovery waits and reminders never stop."""
    stranded = claimed_by(recovery_tick.enqueue(), "dead-host:4242:1234", ago=ago)
    run_housekeeping()
    stranded.refresh_from_db()
    expected = TaskResultStatus.READY if released else TaskResultStatus.RUNNING
    assert stranded.status == expected
    waiting = DBTaskResult.objects.filter(task_path=recovery_tick.module_path,
                                          status=TaskResultStatus.READY)
    assert waiting.count() == 1


HOUSEKEEPING_RUNS = threading.Event()


def note_a_run() -> None:
    HOUSEKEEPING_RUNS.set()


def fail_loudly() -> None:
    raise RuntimeError("a housekeeping step that fails")


def test_housekeeping_runs_on_its_own_while_the_worker_runs(settings: Any) -> None:
    """Every few minutes, not only at the worker's start; one failing step stops no other."""
    settings.WORKER_HOUSEKEEPING_SECONDS = 0.05
    settings.WORKER_HOUSEKEEPING = [f"{__name__}.fail_loudly", f"{__name__}.note_a_run"]
    HOUSEKEEPING_RUNS.clear()
    running = True
    thread = start_housekeeping(lambda: running)
    try:
        assert HOUSEKEEPING_RUNS.wait(30)
    finally:
        running = False
        thread.join(30)
    assert not thread.is_alive()


@pytest.mark.django_db(transaction=True)
def test_a_message_being_sent_is_left_to_its_sender(mail: Any) -> None:
    """Two tasks for one message on two hosts (a sweep's and the original, or a released
    stranded one): while one holds the message, the other sends nothing, so it goes once."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no row locks: one host, whose writes are serialized anyway")
    message = stranded_mail("once@example.org", timedelta(minutes=1))
    holder = threading.Event()
    release = threading.Event()

    def hold_it() -> None:  # the other host's delivery, mid-send
        with transaction.atomic():
            OutgoingEmail.objects.select_for_update().get(pk=message.pk)
            holder.set()
            release.wait(30)
        connection.close()

    other = threading.Thread(target=hold_it)
    other.start()
    try:
        assert holder.wait(30)
        assert deliver(outgoing_id=message.pk) == OutgoingEmail.Status.PENDING
        assert not mail.to("once@example.org")
    finally:
        release.set()
        other.join(30)
    assert deliver(outgoing_id=message.pk) == OutgoingEmail.Status.SENT
    assert deliver(outgoing_id=message.pk) == OutgoingEmail.Status.SENT
    assert len(mail.to("once@example.org")) == 1
