"""The staff desk's actions (issue 5 point 7): the only place the desk changes anything.

Every action checks who acts (staff, with a second factor, never on their own account), writes a
StaffAction with the state before and after, and changes a request's state only through
``relatch.recovery.workflow.move`` with the STAFF actor.
"""

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from relatch.accounts.models import User
from relatch.audit.models import EventKind, StaffAction
from relatch.audit.services import record_event, record_staff_action
from relatch.index.models import Project
from relatch.mfa.policy import has_second_factor
from relatch.notify.services import send_mail
from relatch.recovery import workflow
from relatch.recovery.models import (
    ProofKind,
    RecoveryApproval,
    RecoveryMessage,
    RecoveryProof,
    RecoveryRequest,
    State,
)
from relatch.recovery.requester.links import NOT_ME_LINK_BUILDER, STATUS_LINK_BUILDER
from relatch.web.refusals import Refusal

MAX_MESSAGE = 5000
MAX_REASON = 2000
# Approvals count only once the evidence is in: during the wait or at the approval step.
APPROVABLE = frozenset({State.IN_WAITING_PERIOD, State.AWAITING_APPROVAL})
ACTIVE = frozenset({State.SUBMITTED, State.AWAITING_PROOF, State.IN_WAITING_PERIOD,
                    State.AWAITING_APPROVAL, State.ON_HOLD})


class DeskRefusedError(Refusal):
    """The action is not allowed; ``message`` says why, for the staff member (a 409)."""

    status = 409


def check_staff(staff: User) -> None:
    """Refuse anyone who is not staff with a second factor (a stolen password is not enough)."""
    if not (staff.is_active and staff.is_staff):
        raise DeskRefusedError("Only staff can work on recovery requests.")
    if not has_second_factor(staff):
        raise DeskRefusedError(
            "Staff need two-step sign-in: add an authenticator app or a security key first."
        )


def _locked(recovery: RecoveryRequest, staff: User, *, active: bool = True) -> RecoveryRequest:
    check_staff(staff)
    # Lock only the request: PostgreSQL cannot lock the nullable side of the join.
    locked = RecoveryRequest.objects.select_for_update(of=("self",)).select_related("user")
    row = locked.get(pk=recovery.pk)
    # A staff member recovering their own account would need no one else: separation of duties.
    if row.user_id is not None and row.user_id == staff.pk:
        raise DeskRefusedError(
            "This request is for your own account: another staff member must handle it."
        )
    if active and row.state not in ACTIVE:
        raise DeskRefusedError(finished_message(row.state))
    return row


def finished_message(state: str) -> str:
    """Why a finished request takes no more actions (the desk's page and the API say it)."""
    return (f"This request is finished ({State(state).label.lower()}): nothing more can be "
            "done on it.")


def _audit(row: RecoveryRequest, staff: User, action: str, reason: str,
           before: dict[str, Any], after: dict[str, Any]) -> StaffAction:
    return record_staff_action(
        staff=staff, subject=row.user, action=f"recovery:{action}", reason=reason,
        before={"request": row.public_id, **before}, after={"request": row.public_id, **after},
    )


def _move(row: RecoveryRequest, to: State, staff: User, reason: str,
          wait_ends_at: datetime | None = None) -> None:
    try:
        workflow.move(recovery=row, to=to, actor=workflow.Actor.STAFF, staff=staff,
                      reason=reason, wait_ends_at=wait_ends_at)
    except workflow.TransitionRefusedError as refusal:
        raise DeskRefusedError(refusal.message) from refusal


def _reason(text: str, what: str) -> str:
    text = text.strip()
    if not text:
        raise DeskRefusedError(f"{what} needs a written reason.")
    if len(text) > MAX_REASON:
        raise DeskRefusedError(f"The reason has at most {MAX_REASON} characters.")
    return text


@transaction.atomic
def assign(*, recovery: RecoveryRequest, staff: User, assignee: User | None) -> None:
    """Give the request to ``assignee`` (a staff member), or to no one with None. A finished
    request is no one's work any more: refused."""
    row = _locked(recovery, staff)
    if assignee is not None:
        if not (assignee.is_active and assignee.is_staff):
            raise DeskRefusedError("Requests can only be assigned to staff members.")
        if assignee.pk == row.user_id:
            raise DeskRefusedError("A request cannot be assigned to the account it recovers.")
    before = {"assigned_to": row.assigned_to.username if row.assigned_to else ""}
    row.assigned_to = assignee
    row.updated_at = timezone.now()
    row.save(update_fields=["assigned_to", "updated_at"])
    _audit(row, staff, "assign", "", before,
           {"assigned_to": assignee.username if assignee else ""})
    recovery.refresh_from_db()


@transaction.atomic
def message_requester(*, recovery: RecoveryRequest, staff: User, body: str) -> RecoveryMessage:
    """Write to the requester: shown on their status page and mailed to the confirmed contact."""
    row = _locked(recovery, staff)
    body = body.strip()
    if not body or len(body) > MAX_MESSAGE:
        raise DeskRefusedError(f"Write a message of 1 to {MAX_MESSAGE} characters.")
    message = RecoveryMessage.objects.create(request=row, author=RecoveryMessage.Author.STAFF,
                                             staff=staff, body=body)
    before = {"awaiting_requester_since": _iso(row.awaiting_requester_since)}
    # Staff now wait for the requester: reminders and closure count from here.
    row.awaiting_requester_since = message.created_at
    row.updated_at = message.created_at
    row.save(update_fields=["awaiting_requester_since", "updated_at"])
    _audit(row, staff, "message", "", before,
           {"message": message.pk, "awaiting_requester_since": _iso(message.created_at)})
    if row.contact_confirmed_at is not None:
        # The body is not a secret; the status link is, so it is made at delivery.
        send_mail(to=[row.contact_email], template="recovery_desk_message",
                  context={"request_id": row.public_id, "body": body},
                  link_builder=STATUS_LINK_BUILDER, link_args={"recovery_id": row.pk})
    recovery.refresh_from_db()
    return message


@transaction.atomic
def request_proof(*, recovery: RecoveryRequest, staff: User, kind: ProofKind,
                  project: Project | None = None) -> RecoveryProof:
    """Ask the requester for a proof; a new request starts waiting for proof."""
    row = _locked(recovery, staff)
    if row.user is None:
        raise DeskRefusedError("No account has this username: there is nothing to prove.")
    before = row.state
    from relatch.recovery.proofs import services as proofs  # built alongside the desk

    try:
        proof = proofs.request_proof(recovery=row, kind=kind, staff=staff, project=project)
    except proofs.ProofError as refusal:
        raise DeskRefusedError(refusal.message) from refusal
    row.refresh_from_db()
    if row.state == State.SUBMITTED:  # the proofs service moves it; make sure, in one place
        _move(row, State.AWAITING_PROOF, staff, f"Asked for a proof: {ProofKind(kind).label}.")
    _audit(row, staff, "request_proof", "", {"state": before},
           {"proof": proof.pk, "kind": kind, "state": row.state,
            "project": project.name if project else ""})
    recovery.refresh_from_db()
    return proof


@transaction.atomic
def approve(*, recovery: RecoveryRequest, staff: User, request: HttpRequest | None = None) -> int:
    """Record ``staff``'s approval; returns how many different staff have approved."""
    row = _locked(recovery, staff)
    if row.state not in APPROVABLE:
        raise DeskRefusedError("Approve once the proofs are in: during the waiting period or "
                               "when the request waits for approval.")
    before = row.approvals.count()
    try:
        with transaction.atomic():
            RecoveryApproval.objects.create(request=row, staff=staff)
    except IntegrityError as error:  # the same person twice is still one approval
        raise DeskRefusedError("You already approved this request; a second approval must "
                               "come from another staff member.") from error
    _audit(row, staff, "approve", "", {"approvals": before}, {"approvals": before + 1})
    _announce_approval(row, request)
    return before + 1


def _announce_approval(row: RecoveryRequest, request: HttpRequest | None) -> None:
    if row.user is None:
        return
    record_event(user=row.user, kind=EventKind.RECOVERY_APPROVED, request=request,
                 details={"request": row.public_id})
    for address in row.user.emails.filter(verified=True).values_list("address", flat=True):
        # Each address gets its own mail carrying the one-click "this wasn't me" link.
        send_mail(to=[address], template="recovery_desk_approved",
                  context={"request_id": row.public_id, "username": row.user.username,
                           "security_notice": True},
                  link_builder=NOT_ME_LINK_BUILDER, link_args={"recovery_id": row.pk})


@transaction.atomic
def deny(*, recovery: RecoveryRequest, staff: User, reason: str) -> None:
    """Deny the request; the written reason is kept in its history and the staff record."""
    reason = _reason(reason, "Denying a request")
    row = _locked(recovery, staff)
    _move(row, State.DENIED, staff, reason)  # the workflow writes the StaffAction
    RecoveryRequest.objects.filter(pk=row.pk).update(urgent_since=None)
    recovery.refresh_from_db()


@transaction.atomic
def override(*, recovery: RecoveryRequest, staff: User, reason: str) -> None:
    """Go on without a proof: needs a written reason; starts the enforced waiting period
    (RECOVERY_WAIT), after which two different staff members must approve."""
    reason = _reason(reason, "An override")
    row = _locked(recovery, staff)
    if row.user is None:
        raise DeskRefusedError("No account has this username: there is nothing to recover.")
    if row.state == State.IN_WAITING_PERIOD:
        raise DeskRefusedError("This request is already in its waiting period.")
    if row.state == State.ON_HOLD:
        raise DeskRefusedError("This request is on hold: resume it first.")
    before = {"override_reason": row.override_reason, "state": row.state}
    row.override_reason = reason
    row.save(update_fields=["override_reason"])
    if row.state == State.SUBMITTED:
        _move(row, State.AWAITING_PROOF, staff, "override")
    ends = timezone.now() + settings.RECOVERY_WAIT
    _move(row, State.IN_WAITING_PERIOD, staff, reason, wait_ends_at=ends)
    _audit(row, staff, "override", reason, before,
           {"override_reason": reason, "state": State.IN_WAITING_PERIOD,
            "wait_ends_at": ends.isoformat()})
    recovery.refresh_from_db()


def complete(*, recovery: RecoveryRequest, staff: User, request: HttpRequest | None = None,
             reverse: list[int] | None = None) -> None:
    """Complete the recovery if the policy allows it, undoing the chosen recent changes
    (``reverse``: their ids from ``relatch.recovery.takeover.recent_changes``); completion.py
    records and announces."""
    from relatch.recovery.completion import CompletionRefusedError, complete_recovery

    with transaction.atomic():
        row = _locked(recovery, staff)
        try:
            complete_recovery(recovery=row, staff=staff, request=request, reverse=reverse)
        except CompletionRefusedError as refusal:
            raise DeskRefusedError(refusal.message) from refusal
    recovery.refresh_from_db()


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


# -- holds, blocks and freezes ("this wasn't me") ------------------------------------------


@transaction.atomic
def resume(*, recovery: RecoveryRequest, staff: User, reason: str) -> None:
    """It was the owner: lift the account's block and move the held request back to where it
    was, then let its proofs carry it on. Other held requests of the account stay held."""
    from relatch.recovery.holds import lift_block
    from relatch.recovery.proofs.outcomes import after_proof

    reason = _reason(reason, "Resuming a request")
    row = _locked(recovery, staff)
    if row.state != State.ON_HOLD or row.user is None:
        raise DeskRefusedError("Only a request on hold can be resumed.")
    lift_block(user=row.user, staff=staff, reason=reason)
    _move(row, State(row.held_from), staff, reason)
    RecoveryRequest.objects.filter(pk=row.pk).update(urgent_since=None)
    row.refresh_from_db()
    if row.state == State.SUBMITTED and row.proofs.exists():
        _move(row, State.AWAITING_PROOF, staff, "Resumed with proofs already asked for.")
    after_proof(recovery=row)
    recovery.refresh_from_db()


@transaction.atomic
def lift_block(*, recovery: RecoveryRequest, staff: User, reason: str) -> int:
    """Lift the "this wasn't me" block on the request's account (held requests stay held
    until resumed or denied); how many blocks were lifted."""
    from relatch.recovery.holds import lift_block as lift

    reason = _reason(reason, "Lifting a block")
    row = _locked(recovery, staff, active=False)
    if row.user is None:
        raise DeskRefusedError("No account has this username: there is no block to lift.")
    lifted = lift(user=row.user, staff=staff, reason=reason)
    if not lifted:
        raise DeskRefusedError("No block stands on this account.")
    return lifted


@transaction.atomic
def unfreeze(*, recovery: RecoveryRequest, staff: User, reason: str) -> None:
    """Unfreeze the request's account; its requests that are not on hold leave the urgent
    list (staff have decided about them)."""
    from relatch.accounts.freeze import unfreeze_account

    reason = _reason(reason, "Unfreezing an account")
    row = _locked(recovery, staff, active=False)
    if row.user is None or not unfreeze_account(user=row.user, staff=staff, reason=reason):
        raise DeskRefusedError("This account is not frozen.")
    RecoveryRequest.objects.filter(user=row.user, urgent_since__isnull=False).exclude(
        state=State.ON_HOLD).update(urgent_since=None)
