"""Blocks and holds: what a "this wasn't me" does to an account's recovery (DESIGN §5).

A click never decides. It holds every open request of the account (``State.ON_HOLD``, which
remembers where each was), blocks the account's recovery for RECOVERY_BLOCK (a request filed
meanwhile is held as soon as it is filed), freezes the account (relatch.accounts.freeze) and
raises the account's requests to the top of the desk as urgent. Staff then resume a request
(it was the owner), deny it, lift the block or unfreeze, each with a written reason.

The workflow refuses every forward move while a block stands (``workflow.move``), so a proof
satisfied, a wait ended or an approval given during a block cannot carry a request on.
"""

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from relatch.accounts.models import User
from relatch.audit.models import EventKind
from relatch.audit.services import record_event, record_staff_action
from relatch.recovery import workflow
from relatch.recovery.models import OPEN_STATES, RecoveryBlock, RecoveryRequest, State


def active_block(user: User) -> RecoveryBlock | None:
    """The block that stands on ``user``'s recovery now, if any."""
    return (RecoveryBlock.objects.filter(user=user, until__gt=timezone.now(),
                                         lifted_at__isnull=True)
            .order_by("-created_at").first())


def open_requests(user: User) -> QuerySet[RecoveryRequest]:
    """The account's filed requests that are still open (a hold included)."""
    return RecoveryRequest.objects.filter(user=user, state__in=OPEN_STATES,
                                          contact_confirmed_at__isnull=False)


def hold(*, recovery: RecoveryRequest, reason: str,
         actor: workflow.Actor = workflow.Actor.SYSTEM) -> bool:
    """Put ``recovery`` on hold and mark it urgent; False when it was already held or closed."""
    recovery.refresh_from_db()
    if recovery.state == State.ON_HOLD or not workflow.may_move(recovery.state, State.ON_HOLD):
        return False
    workflow.move(recovery=recovery, to=State.ON_HOLD, actor=actor, reason=reason)
    mark_urgent(recovery=recovery)
    if recovery.user is not None:
        record_event(user=recovery.user, kind=EventKind.RECOVERY_HELD,
                     details={"request": recovery.public_id, "reason": reason})
    return True


def mark_urgent(*, recovery: RecoveryRequest) -> None:
    """Raise ``recovery`` to the top of the desk (kept from the first time it was raised)."""
    RecoveryRequest.objects.filter(pk=recovery.pk, urgent_since__isnull=True).update(
        urgent_since=timezone.now()
    )
    recovery.refresh_from_db(fields=["urgent_since"])


@transaction.atomic
def hold_everything(*, user: User, reason: str) -> list[str]:
    """Hold every open request of ``user``; the public ids of those newly held."""
    held = []
    for recovery in open_requests(user).select_for_update(of=("self",)):
        if hold(recovery=recovery, reason=reason, actor=workflow.Actor.OWNER):
            held.append(recovery.public_id)
    return held


@transaction.atomic
def lift_block(*, user: User, staff: User, reason: str) -> int:
    """Lift every standing block on ``user``'s recovery; how many were lifted. The caller
    checked that ``staff`` may act and that the reason is written."""
    now = timezone.now()
    standing = RecoveryBlock.objects.select_for_update().filter(
        user=user, until__gt=now, lifted_at__isnull=True)
    ids = [block.pk for block in standing]
    if ids:
        RecoveryBlock.objects.filter(pk__in=ids).update(lifted_at=now, lifted_by=staff,
                                                        lift_reason=reason)
        record_staff_action(staff=staff, subject=user, action="recovery:lift_block",
                            reason=reason, before={"blocks": ids},
                            after={"lifted_at": now.isoformat()})
    return len(ids)


def clear_urgent(*, user: User) -> None:
    """Staff have decided about the account: its requests leave the urgent list."""
    RecoveryRequest.objects.filter(user=user, urgent_since__isnull=False).update(
        urgent_since=None)
