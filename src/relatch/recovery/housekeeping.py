"""Keeping recovery requests moving (issue 5 §8): one pass of the background tick.

The pass ends waiting periods that are over, reminds requesters who have gone quiet, closes
requests after a long silence (with a mail that says how to reopen), and re-checks pending
``repo_branch`` proofs until they appear or expire. Each item runs in its own savepoint: one
failure is logged and the pass goes on, so a single broken request never stalls the queue.

Defaults can be overridden in settings (optional; none is required):
RECOVERY_REMINDER_AFTER (3 days of silence before a reminder), RECOVERY_MAX_REMINDERS (2),
RECOVERY_CLOSE_AFTER (21 days of silence), RECOVERY_CLOSE_NOTICE (14 days between the last
reminder and closure), RECOVERY_UNCONFIRMED_LIFETIME (24 hours: a request whose contact
address was never confirmed is deleted after it, once its last code has expired too).
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from relatch.notify.models import OutgoingEmail
from relatch.recovery import notices, workflow
from relatch.recovery.models import ProofKind, RecoveryProof, RecoveryRequest, State
from relatch.recovery.workflow import requester_label

logger = logging.getLogger(__name__)

REMINDER_TEMPLATE = "recovery_reminder_request"
CLOSED_TEMPLATE = "recovery_reminder_closed"
# States where the next step is the requester's. A request still in "submitted" waits on
# staff unless staff explicitly asked the requester something (awaiting_requester_since):
# nobody is closed for silence while it is staff who owe the first answer.
_REQUESTER_STATES = (State.SUBMITTED, State.AWAITING_PROOF)


def _setting[T](name: str, default: T) -> T:
    return getattr(settings, name, default)


def remind_after() -> timedelta:
    return _setting("RECOVERY_REMINDER_AFTER", timedelta(days=3))


def max_reminders() -> int:
    return _setting("RECOVERY_MAX_REMINDERS", 2)


def close_after() -> timedelta:
    return _setting("RECOVERY_CLOSE_AFTER", timedelta(days=21))


def close_notice() -> timedelta:
    return _setting("RECOVERY_CLOSE_NOTICE", timedelta(days=14))


def unconfirmed_lifetime() -> timedelta:
    return _setting("RECOVERY_UNCONFIRMED_LIFETIME", timedelta(hours=24))


@dataclass
class PassReport:
    """What one pass did (returned by the task, so the worker's result row says it)."""

    waits_ended: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    reminded: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    branches_checked: list[int] = field(default_factory=list)
    branches_expired: list[int] = field(default_factory=list)
    unconfirmed_deleted: int = 0
    failures: list[str] = field(default_factory=list)


def run_pass(*, now: datetime | None = None) -> PassReport:
    """Do one round of the recovery housekeeping; never raises for one bad item."""
    now = now or timezone.now()
    report = PassReport()
    _each(_waits_over(now), report, lambda r: _end_wait(r, report))
    _each(_quiet_requests(), report, lambda r: _nudge_or_close(r, now, report))
    # No savepoint around the branch checks: each expiry and each queued check commits in
    # its own transaction (git itself runs in the worker's check_branch task, never here).
    _each(_pending_branches(), report, lambda p: _recheck_branch(p, report), atomic=False)
    _each(["unconfirmed requests"], report, lambda _: _delete_unconfirmed(now, report))
    return report


def _each(items: Iterable[Any], report: PassReport, act: Callable[[Any], None], *,
          atomic: bool = True) -> None:
    for item in items:
        try:
            if atomic:
                with transaction.atomic():
                    act(item)
            else:
                act(item)
        except Exception:  # noqa: BLE001 — one broken item must not stall the others
            logger.exception("Recovery housekeeping failed on %s", item)
            report.failures.append(str(item))


# -- the end of waits ----------------------------------------------------------------------


def _waits_over(now: datetime) -> QuerySet[RecoveryRequest]:
    return RecoveryRequest.objects.filter(state=State.IN_WAITING_PERIOD, wait_ends_at__lte=now)


def _end_wait(recovery: RecoveryRequest, report: PassReport) -> None:
    """At the end of a wait: complete an automatic request nobody objected to, hold one whose
    account is blocked, send back one whose proofs no longer suffice, or ask staff."""
    from relatch.recovery.completion import complete_recovery
    from relatch.recovery.holds import active_block, hold
    from relatch.recovery.policy import may_complete_automatically, missing_proof

    report.waits_ended.append(recovery.public_id)
    if recovery.user is not None and active_block(recovery.user) is not None:
        hold(recovery=recovery, reason="The wait ended while the account's recovery is blocked.")
    elif may_complete_automatically(recovery):
        complete_recovery(recovery=recovery, staff=None)
        report.completed.append(recovery.public_id)
    elif missing_proof(recovery):
        workflow.move(recovery=recovery, to=State.AWAITING_PROOF, actor=workflow.Actor.SYSTEM,
                      reason="The waiting period ended, but the proofs no longer suffice.")
    else:
        workflow.move(recovery=recovery, to=State.AWAITING_APPROVAL,
                      actor=workflow.Actor.SYSTEM, reason="The waiting period ended.")


# -- reminders and closure -----------------------------------------------------------------


def _quiet_requests() -> QuerySet[RecoveryRequest]:
    waiting_on_requester = RecoveryRequest.objects.filter(
        contact_confirmed_at__isnull=False, state__in=_REQUESTER_STATES
    )
    return waiting_on_requester.exclude(
        state=State.SUBMITTED, awaiting_requester_since__isnull=True
    )


def silent_since(recovery: RecoveryRequest) -> datetime:
    """When the requester was last asked for something (or the request last moved)."""
    return recovery.awaiting_requester_since or recovery.updated_at


def last_reminder_at(recovery: RecoveryRequest) -> datetime | None:
    """When the latest reminder for the current silence was queued (the mail row is the
    record, so no extra column is needed); None if none was sent since the silence began."""
    row = (
        OutgoingEmail.objects.filter(template=REMINDER_TEMPLATE,
                                     context__request_id=recovery.public_id,
                                     created_at__gte=silent_since(recovery))
        .order_by("-created_at").first()
    )
    return row.created_at if row else None


def _nudge_or_close(recovery: RecoveryRequest, now: datetime, report: PassReport) -> None:
    since = silent_since(recovery)
    reminded_at = last_reminder_at(recovery)
    # Closure only after a reminder that gave fair notice: never close someone never warned.
    if reminded_at and now >= max(since + close_after(), reminded_at + close_notice()):
        close_for_silence(recovery=recovery)
        report.closed.append(recovery.public_id)
    elif _reminder_due(recovery, since, reminded_at, now):
        send_reminder(recovery=recovery, now=now)
        report.reminded.append(recovery.public_id)


def _reminder_due(recovery: RecoveryRequest, since: datetime, reminded_at: datetime | None,
                  now: datetime) -> bool:
    # A count from an earlier silence does not hold back the reminders of a new one.
    sent = recovery.reminders_sent if reminded_at else 0
    return sent < max_reminders() and now >= (reminded_at or since) + remind_after()


@transaction.atomic
def send_reminder(*, recovery: RecoveryRequest, now: datetime | None = None) -> None:
    """Mail the requester's confirmed contact what is still needed and when the request
    closes if nothing happens; count it."""
    now = now or timezone.now()
    row = RecoveryRequest.objects.select_for_update().get(pk=recovery.pk)
    count = row.reminders_sent + 1 if last_reminder_at(row) else 1
    closes_at = max(silent_since(row) + close_after(), now + close_notice())
    notices.tell_requester(recovery=row, template=REMINDER_TEMPLATE, context={
        "state_label": requester_label(row.state),
        "pending_proofs": _pending_proof_labels(row), "reminder_number": count,
        "closes_on": f"{closes_at:%Y-%m-%d}",
    })
    RecoveryRequest.objects.filter(pk=row.pk).update(reminders_sent=count)
    recovery.reminders_sent = count


@transaction.atomic
def close_for_silence(*, recovery: RecoveryRequest) -> None:
    """Close ``recovery`` for lack of response and tell the requester how to reopen it."""
    # This mail says how to reopen; the move itself mails nobody more (notices).
    workflow.move(recovery=recovery, to=State.CLOSED_NO_RESPONSE, actor=workflow.Actor.SYSTEM,
                  reason="No answer from the requester.")
    notices.tell_requester(recovery=recovery, template=CLOSED_TEMPLATE, context={})


def _pending_proof_labels(recovery: RecoveryRequest) -> list[str]:
    pending = recovery.proofs.filter(status=RecoveryProof.Status.PENDING)
    return [str(ProofKind(kind).label) for kind in pending.values_list("kind", flat=True)]


# -- repo_branch re-checks -----------------------------------------------------------------


def _pending_branches() -> QuerySet[RecoveryProof]:
    return RecoveryProof.objects.select_related("request").filter(
        kind=ProofKind.REPO_BRANCH, status=RecoveryProof.Status.PENDING,
        request__state__in=(State.SUBMITTED, State.AWAITING_PROOF, State.IN_WAITING_PERIOD,
                            State.AWAITING_APPROVAL),
    )


def _recheck_branch(proof: RecoveryProof, report: PassReport) -> None:
    """Expire a proof whose time is up (recorded, announced, the request moved on as for
    any other outcome: no git runs); else queue a worker check of its repository, unless
    one is already queued. ``branches_checked`` lists the proofs with a check on its way."""
    from relatch.recovery.proofs import branch_checks
    from relatch.recovery.proofs.services import ProofError

    if branch_checks.expire_if_due(proof=proof):
        report.branches_expired.append(proof.pk)
        return
    try:
        branch_checks.request_check(proof=proof, by_requester=False)
    except ProofError:
        return  # not open to proofs now (e.g. on hold): the next pass looks again
    report.branches_checked.append(proof.pk)


# -- requests never filed ------------------------------------------------------------------


def _delete_unconfirmed(now: datetime, report: PassReport) -> None:
    """Delete requests whose contact address was never confirmed: they were never filed,
    nobody was told of them, and keeping them only keeps a stranger's address and story
    (data minimisation). A code still valid (a new one was asked for) keeps its request."""
    stale = RecoveryRequest.objects.filter(
        contact_confirmed_at__isnull=True, created_at__lt=now - unconfirmed_lifetime()
    ).exclude(contact_code_expires_at__gt=now)
    _, deleted = stale.delete()
    report.unconfirmed_deleted = deleted.get(RecoveryRequest._meta.label, 0)
