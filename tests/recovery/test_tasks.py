"""Keeping requests moving (issue 5 §8): the end of waits, reminders, closure after silence,
branch re-checks, and the tick that re-queues itself so it survives a restart.

Time is moved by moving the rows' timestamps back, never by sleeping.
"""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.tasks import TaskResultStatus
from django.test import TestCase
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from relatch.notify.models import OutgoingEmail
from relatch.recovery import housekeeping, workflow
from relatch.recovery.housekeeping import REMINDER_TEMPLATE, run_pass
from relatch.recovery.models import (
    ProofKind,
    RecoveryProof,
    RecoveryRequest,
    RecoveryTransition,
    State,
)
from relatch.recovery.tasks import TICK_EVERY, ensure_tick_scheduled, recovery_tick
from tests.conftest import run_pending_tasks
from tests.recovery.requests import end_wait, make_request

pytestmark = pytest.mark.django_db
CONTACT = "new@example.net"
# Waits in these tests follow a staff override: no proof, a written reason (DESIGN §5).
OVERRIDE = "Known to staff; checked in person."


def tick():
    """One pass, with its mail delivered as the worker would."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        report = run_pass()
    run_pending_tasks()
    return report


def quiet_for(recovery, days):
    """The requester was asked for something ``days`` ago and has not answered."""
    RecoveryRequest.objects.filter(pk=recovery.pk).update(
        awaiting_requester_since=timezone.now() - timedelta(days=days)
    )
    recovery.refresh_from_db()


def age_reminders(recovery, days):
    """Move the reminders already sent ``days`` into the past."""
    OutgoingEmail.objects.filter(template=REMINDER_TEMPLATE,
                                 context__request_id=recovery.public_id).update(
        created_at=timezone.now() - timedelta(days=days)
    )


def reminders_to(mail):
    return [m for m in mail.to(CONTACT) if "waiting for you" in str(m["Subject"])]


# -- the end of waits ----------------------------------------------------------------------


def test_an_ended_wait_moves_to_awaiting_approval_by_the_system(user, mail):
    """DESIGN §5: the wait is a state with an end time, enforced by code (NIST N6)."""
    recovery = make_request(user, state=State.IN_WAITING_PERIOD, override_reason=OVERRIDE)
    end_wait(recovery)
    report = tick()
    recovery.refresh_from_db()
    assert recovery.state == State.AWAITING_APPROVAL
    assert report.waits_ended == [recovery.public_id]
    moved = RecoveryTransition.objects.get(request=recovery)
    assert (moved.actor, moved.staff) == (RecoveryTransition.Actor.SYSTEM, None)
    # The requester learns that staff decide now (the tick moved it, out of their sight); the
    # owner heard of the wait when it began and hears again at completion, not in between.
    assert "waiting for staff approval" in str(mail.last("new@example.net")["Subject"]).lower()
    assert mail.to("alice@example.org") == []


def test_a_wait_not_yet_over_is_left_alone(user):
    recovery = make_request(user, state=State.IN_WAITING_PERIOD, override_reason=OVERRIDE)
    assert tick().waits_ended == []
    recovery.refresh_from_db()
    assert recovery.state == State.IN_WAITING_PERIOD
    assert not RecoveryTransition.objects.exists()


# -- reminders -----------------------------------------------------------------------------


def test_a_quiet_requester_is_reminded_with_the_status_link(user, mail):
    recovery = make_request(user, state=State.AWAITING_PROOF)
    RecoveryProof.objects.create(request=recovery, kind=ProofKind.API_TOKEN)
    quiet_for(recovery, 4)
    assert tick().reminded == [recovery.public_id]
    recovery.refresh_from_db()
    assert recovery.reminders_sent == 1
    [reminder] = reminders_to(mail)
    text = mail.text(reminder)
    assert "An API token of the account" in text
    assert mail.link_to(reminder, f"/recovery/request/status/{recovery.public_id}/")
    # The account's owner is not told about a reminder; the request did not move.
    assert mail.to("alice@example.org") == []
    assert recovery.state == State.AWAITING_PROOF


def test_reminders_are_spaced_and_at_most_two(user, mail):
    recovery = make_request(user, state=State.AWAITING_PROOF)
    quiet_for(recovery, 8)
    tick()
    tick()  # straight after: too soon for another
    assert len(reminders_to(mail)) == 1
    age_reminders(recovery, 4)
    tick()
    age_reminders(recovery, 4)
    tick()
    recovery.refresh_from_db()
    assert recovery.reminders_sent == 2
    assert len(reminders_to(mail)) == 2


@pytest.mark.parametrize("days", [0, 2])
def test_no_reminder_before_a_few_days(user, mail, days):
    recovery = make_request(user, state=State.AWAITING_PROOF)
    quiet_for(recovery, days)
    assert tick().reminded == []
    recovery.refresh_from_db()
    assert recovery.reminders_sent == 0
    assert mail.messages == []


def test_a_request_waiting_on_staff_is_never_reminded_or_closed(user, mail):
    """A submitted request nobody at the desk has answered is staff's to move, not the
    requester's: silence there must not close it."""
    recovery = make_request(user, state=State.SUBMITTED)
    RecoveryRequest.objects.filter(pk=recovery.pk).update(
        updated_at=timezone.now() - timedelta(days=60)
    )
    report = tick()
    recovery.refresh_from_db()
    assert (report.reminded, report.closed, recovery.state) == ([], [], State.SUBMITTED)
    assert mail.messages == []


def test_an_unconfirmed_request_gets_no_mail(user, mail):
    """A request whose contact address was never confirmed is not filed: nothing is sent to
    an address nobody proved they own."""
    recovery = make_request(user, state=State.AWAITING_PROOF, contact_confirmed_at=None)
    quiet_for(recovery, 30)
    assert tick().reminded == []
    assert mail.messages == []


# -- closure -------------------------------------------------------------------------------


def test_long_silence_after_a_reminder_closes_with_a_way_to_reopen(user, mail):
    recovery = make_request(user, state=State.AWAITING_PROOF)
    quiet_for(recovery, 22)
    tick()  # first the warning …
    recovery.refresh_from_db()
    assert recovery.state == State.AWAITING_PROOF
    age_reminders(recovery, 15)
    report = tick()  # … then, after fair notice, the closure
    recovery.refresh_from_db()
    assert report.closed == [recovery.public_id]
    assert recovery.state == State.CLOSED_NO_RESPONSE
    assert recovery.closed_at is not None
    closed = next(m for m in mail.to(CONTACT) if "how to reopen" in str(m["Subject"]))
    assert "reopen" in mail.text(closed)
    assert mail.link_to(closed, f"/recovery/request/status/{recovery.public_id}/")
    assert RecoveryTransition.objects.get(request=recovery).actor == workflow.Actor.SYSTEM


def test_no_closure_without_fair_notice(user, mail):
    """Reminded only yesterday: even after 30 days of silence the request stays open."""
    recovery = make_request(user, state=State.AWAITING_PROOF)
    quiet_for(recovery, 30)
    tick()
    age_reminders(recovery, 1)
    assert tick().closed == []
    recovery.refresh_from_db()
    assert recovery.state == State.AWAITING_PROOF


def test_a_closed_request_is_not_touched_again(user, mail):
    recovery = make_request(user, state=State.CLOSED_NO_RESPONSE)
    quiet_for(recovery, 90)
    report = tick()
    assert (report.reminded, report.closed) == ([], [])
    assert mail.messages == []


# -- isolation -----------------------------------------------------------------------------


def test_one_failing_item_does_not_stop_the_pass(user, make_user, monkeypatch, caplog):
    """A broken request is logged and skipped; the others still move. (The failure is
    injected by wrapping the real move: nothing in a real row can be made to fail safely.)"""
    broken = make_request(user, state=State.IN_WAITING_PERIOD, override_reason=OVERRIDE)
    fine = make_request(make_user(), state=State.IN_WAITING_PERIOD, override_reason=OVERRIDE)
    end_wait(broken)
    end_wait(fine)
    real_move = workflow.move

    def move(*, recovery, **kwargs):
        if recovery.pk == broken.pk:
            raise RuntimeError("database hiccup")
        return real_move(recovery=recovery, **kwargs)

    monkeypatch.setattr(workflow, "move", move)
    report = tick()
    broken.refresh_from_db()
    fine.refresh_from_db()
    assert (broken.state, fine.state) == (State.IN_WAITING_PERIOD, State.AWAITING_APPROVAL)
    assert report.failures == [str(broken)]
    assert "Recovery housekeeping failed" in caplog.text


# -- repo_branch re-checks -----------------------------------------------------------------


def test_an_expired_branch_proof_expires_and_is_announced(user, mail):
    """The proofs service settles it (no git is run for an expired proof)."""
    recovery = make_request(user, state=State.AWAITING_PROOF, contact=CONTACT)
    proof = RecoveryProof.objects.create(request=recovery, kind=ProofKind.REPO_BRANCH,
                                         expires_at=timezone.now() - timedelta(minutes=1))
    report = tick()
    proof.refresh_from_db()
    assert proof.status == RecoveryProof.Status.EXPIRED
    assert proof.evidence["last_result"] == "expired"
    assert report.branches_expired == [proof.pk]
    # The requester must act (ask for a new branch); the owner has nothing to do.
    told = mail.to(CONTACT)
    assert [str(m["Subject"]).endswith("proof expired") for m in told] == [True]
    assert "/recovery/request/status/" in mail.text(told[0])
    assert mail.to("alice@example.org") == []


def test_a_pending_branch_proof_is_checked_again(user):
    """The pass queues a worker check of each pending branch proof of an open request (git
    runs in the worker: tests/recovery/test_branch_checks.py), and never queues one twice."""
    from relatch.recovery.proofs.branch_checks import check_branch

    recovery = make_request(user, state=State.AWAITING_PROOF)
    live = RecoveryProof.objects.create(request=recovery, kind=ProofKind.REPO_BRANCH,
                                        expires_at=timezone.now() + timedelta(days=3))
    RecoveryProof.objects.create(request=recovery, kind=ProofKind.API_TOKEN)
    done = make_request(user, state=State.DENIED)
    RecoveryProof.objects.create(request=done, kind=ProofKind.REPO_BRANCH)
    for _ in range(2):
        with TestCase.captureOnCommitCallbacks(execute=True):
            assert run_pass().branches_checked == [live.pk]
    queued = DBTaskResult.objects.filter(task_path=check_branch.module_path)
    assert [row.args_kwargs["kwargs"] for row in queued] == [{"proof_id": live.pk}]


# -- the tick survives a restart ----------------------------------------------------------


def test_the_tick_runs_a_pass_and_queues_the_next(user):
    recovery = make_request(user, state=State.IN_WAITING_PERIOD, override_reason=OVERRIDE)
    end_wait(recovery)
    first = recovery_tick.enqueue()
    run_pending_tasks()  # the tick, then the mail it queued
    assert DBTaskResult.objects.get(pk=first.id).status == TaskResultStatus.SUCCESSFUL
    recovery.refresh_from_db()
    assert recovery.state == State.AWAITING_APPROVAL
    [waiting] = DBTaskResult.objects.filter(task_path=recovery_tick.module_path,
                                            status=TaskResultStatus.READY)
    # Queued in the database for later: a restarted worker finds it there.
    assert waiting.run_after > timezone.now() + TICK_EVERY - timedelta(minutes=1)
    assert run_pending_tasks() == 0


def test_ensuring_a_tick_is_idempotent():
    assert ensure_tick_scheduled() is True
    assert ensure_tick_scheduled() is False
    assert DBTaskResult.objects.filter(task_path=recovery_tick.module_path).count() == 1


def test_the_command_runs_a_pass_and_schedules(user, capsys):
    recovery = make_request(user, state=State.IN_WAITING_PERIOD, override_reason=OVERRIDE)
    end_wait(recovery)
    call_command("recovery_tick")
    call_command("recovery_tick", "--schedule-only")
    out = capsys.readouterr().out
    assert "Waits ended 1" in out
    assert "Queued the next tick." in out
    assert "A tick is already queued." in out
    recovery.refresh_from_db()
    assert recovery.state == State.AWAITING_APPROVAL


def test_settings_change_the_delays(user, settings, mail):
    settings.RECOVERY_REMINDER_AFTER = timedelta(days=1)
    recovery = make_request(user, state=State.AWAITING_PROOF)
    quiet_for(recovery, 2)
    assert tick().reminded == [recovery.public_id]
    assert housekeeping.remind_after() == timedelta(days=1)


# -- requests never filed ------------------------------------------------------------------


def test_unconfirmed_requests_older_than_a_day_are_deleted(user, capsys):
    """A request whose contact was never confirmed was never filed: after 24 h it is
    deleted, with its code; filed requests of any age, and young ones, stay."""
    day_ago = timezone.now() - timedelta(hours=24, minutes=1)
    stale = make_request(user, contact_confirmed_at=None, created_at=day_ago,
                         contact_code_digest="x" * 64,
                         contact_code_expires_at=day_ago + timedelta(hours=24))
    young = make_request(user, contact_confirmed_at=None,
                         created_at=timezone.now() - timedelta(hours=23))
    # A new code asked for a little while ago is still valid: its request stays for now.
    renewed = make_request(user, contact_confirmed_at=None, created_at=day_ago,
                           contact_code_expires_at=timezone.now() + timedelta(hours=2))
    filed = make_request(user, created_at=timezone.now() - timedelta(days=60))
    report = tick()
    assert report.unconfirmed_deleted == 1
    assert set(RecoveryRequest.objects.values_list("pk", flat=True)) == {
        young.pk, renewed.pk, filed.pk}
    assert not RecoveryRequest.objects.filter(pk=stale.pk).exists()
    assert tick().unconfirmed_deleted == 0
    call_command("recovery_tick")
    assert "unconfirmed deleted 0" in capsys.readouterr().out


def test_the_lifetime_of_unconfirmed_requests_is_a_setting(user, settings):
    settings.RECOVERY_UNCONFIRMED_LIFETIME = timedelta(hours=1)
    make_request(user, contact_confirmed_at=None,
                 created_at=timezone.now() - timedelta(hours=2))
    assert tick().unconfirmed_deleted == 1
    assert not RecoveryRequest.objects.exists()
