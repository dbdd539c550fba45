"""Mail that lost its delivery task while the server kept running is sent by the next tick
(notify/leftovers.py). The restart path is tested with real kills in tests/test_faults.py."""

import signal
import subprocess
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from relatch.notify.leftovers import SWEEP_GRACE, _worker_is_gone, worker_id
from relatch.notify.models import OutgoingEmail
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
