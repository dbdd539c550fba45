"""Completing a recovery (DESIGN §5 "Completion"): one transaction that takes the account back
from whoever may hold it and hands it to the requester's confirmed address.

Removed: authenticator app, security keys, recovery codes. Ended: every session, every trusted
device, a waiting self-service recovery. Revoked: every API token (so nothing can be uploaded
until the owner enrols a second factor again, which a new token requires). The confirmed contact
address becomes the verified primary and every other address is unverified (the owner verifies
again the ones they still hold: any of them may be a hijacker's). The changes staff chose from
the account's recent history are reversed. The password is disabled and a reset link is mailed
to the contact address.

Staff complete a request waiting for approval; the system completes one whose announced
automatic wait ended with no objection (``policy.may_complete_automatically``).
"""

from django.db import transaction
from django.http import HttpRequest

from relatch.accounts.emails.staff import AddressVerifiedElsewhereError
from relatch.accounts.models import User
from relatch.accounts.takeback import end_every_session, hand_over
from relatch.audit.models import EventKind
from relatch.audit.services import record_event, record_staff_action
from relatch.index.tokens.takeback import remove_every_publisher, revoke_every_token
from relatch.mfa.takeback import remove_every_factor
from relatch.recovery import notices, workflow
from relatch.recovery.models import RecoveryRequest, State
from relatch.recovery.policy import may_complete_automatically, verdict
from relatch.recovery.sources import record_judgement
from relatch.recovery.takeover import reverse_changes


class CompletionRefusedError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@transaction.atomic
def complete_recovery(
    *, recovery: RecoveryRequest, staff: User | None, request: HttpRequest | None = None,
    reverse: list[int] | None = None,
) -> None:
    """Complete ``recovery`` if the policy allows it now; all or nothing. ``staff`` None: the
    system completes an automatic request. ``reverse``: ids of recent changes to undo."""
    row = RecoveryRequest.objects.select_for_update(of=("self",)).select_related("user").get(
        pk=recovery.pk)
    _check(row, staff)
    user = row.user
    assert user is not None  # the verdict refuses requests without an account
    record_judgement(row)  # before completion changes what the proofs rested on
    removed = _take_back(user)
    # Announced before the hand-over, while the old addresses are still verified: they are
    # the ones that must hear of it, with a "this wasn't me" link, if it was not the owner.
    actor = workflow.Actor.STAFF if staff else workflow.Actor.SYSTEM
    workflow.move(recovery=row, to=State.COMPLETED, actor=actor, staff=staff,
                  reason="completed" if staff else "completed: no objection during the wait")
    unverified = _hand_over(user, row.contact_email)
    undone = reverse_changes(recovery=row, event_ids=reverse or [], staff=staff) if staff else []
    _record(row, user, staff, request, {**removed, "unverified": unverified, "undone": undone})
    recovery.refresh_from_db()


def _check(row: RecoveryRequest, staff: User | None) -> None:
    if staff is None:
        if row.state != State.IN_WAITING_PERIOD or not may_complete_automatically(row):
            raise CompletionRefusedError("This request cannot complete by itself now.")
    else:
        judged = verdict(row)
        if row.state != State.AWAITING_APPROVAL or not judged.may_complete:
            raise CompletionRefusedError(
                "This request cannot complete yet: "
                + ("; ".join(judged.missing) or State(row.state).label.lower()))
    if row.contact_confirmed_at is None:
        raise CompletionRefusedError("The requester's contact address is not confirmed.")


def _take_back(user: User) -> dict[str, int]:
    """Each app takes back what it keeps: factors, sessions and devices, API tokens."""
    return {
        **remove_every_factor(user=user),
        **end_every_session(user=user),
        "api_tokens": revoke_every_token(user=user),
        "trusted_publishers": remove_every_publisher(user=user),
    }


def _hand_over(user: User, address: str) -> list[str]:
    try:
        return hand_over(user=user, address=address)
    except AddressVerifiedElsewhereError as error:  # verified on another account meanwhile
        raise CompletionRefusedError(
            "The contact address is verified on another account; ask for another address."
        ) from error


def _record(
    row: RecoveryRequest, user: User, staff: User | None, request: HttpRequest | None,
    removed: dict[str, object],
) -> None:
    record_event(user=user, kind=EventKind.RECOVERY_COMPLETED, request=request,
                 details={"request": row.public_id, "removed": removed})
    if staff is not None:
        record_staff_action(
            staff=staff, subject=user, action="recovery:complete", reason=row.public_id,
            before={"removed": removed}, after={"primary": row.contact_email},
        )
    # Every address verified until now heard of the completion from the workflow's notice;
    # the requester hears of it here, once, with the reset link and their status link.
    notices.tell_requester(recovery=row, template="recovery_reset_link",
                           context={"username": user.username}, reset_user_id=user.pk)
