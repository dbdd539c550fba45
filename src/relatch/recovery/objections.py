""" "This wasn't me": what one click on a recovery notice does (DESIGN §5).

The link goes to every address verified on the account when a notice is sent, and so may be
in a hijacker's hands as easily as in the owner's (the hijacker may have changed the account's
address first). So a click never decides anything and never cancels: it holds every open
request of the account, blocks its recovery, freezes its sensitive changes and raises it to
staff as urgent. Staff then resume or deny, lift or unfreeze, with a reason.

After a completed recovery a click tells the truth ("recovered on … to …"), ends every session
and trusted device of the recovered account, revokes the API tokens made since, freezes the
account and alerts staff as urgent.
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from relatch.accounts.freeze import freeze_account
from relatch.accounts.models import User
from relatch.accounts.notices import verified_addresses
from relatch.accounts.takeback import end_every_session
from relatch.audit.models import EventKind, SecurityEvent
from relatch.audit.services import record_event
from relatch.index.tokens.takeback import remove_every_publisher, revoke_every_token
from relatch.notify.services import send_mail
from relatch.recovery.holds import active_block, hold_everything, mark_urgent
from relatch.recovery.models import (
    RecoveryBlock,
    RecoveryRequest,
    RecoveryTransition,
    State,
)
from relatch.recovery.proofs.evidence import mask_address

CLOSED = frozenset({State.DENIED, State.CANCELLED, State.CLOSED_NO_RESPONSE})


@dataclass(frozen=True)
class Objection:
    """What the click did, for the page that answers it.

    ``outcome``: "held" (requests held, account frozen), "closed" (the request had ended and
    nothing else was open), "recovered" (after completion), or "reviewed" (staff had already
    resumed this request after an earlier click: they are told again).
    """

    outcome: str
    held: list[str]
    recovered_on: datetime | None = None
    recovered_to: str = ""


@transaction.atomic
def object_to_request(*, recovery: RecoveryRequest) -> Objection:
    """The owner (or whoever holds a notice) says ``recovery`` was not theirs. The caller
    checked the link's token. Safe to repeat: a second click changes nothing more."""
    row = RecoveryRequest.objects.select_for_update(of=("self",)).select_related("user").get(
        pk=recovery.pk)
    user = row.user
    assert user is not None
    earlier = _objected_before(row, user)
    record_event(user=user, kind=EventKind.RECOVERY_OBJECTED,
                 details={"request": row.public_id, "state": row.state})
    if row.state == State.COMPLETED:
        return _after_completion(row, user, repeated=earlier)
    if _resumed_by_staff(row):
        mark_urgent(recovery=row)
        _alert_staff(row, user, "reviewed")
        return Objection("reviewed", [])
    held = hold_everything(user=user, reason=f"this wasn't me (request {row.public_id})")
    if row.state in CLOSED and not held and active_block(user) is None:
        return Objection("closed", [])
    _block(user, row)
    if freeze_account(user=user, reason=f"this wasn't me (request {row.public_id})") or held:
        _alert_staff(row, user, "held")
    mark_urgent(recovery=row)
    return Objection("held", held)


def _objected_before(row: RecoveryRequest, user: User) -> bool:
    return SecurityEvent.objects.filter(user=user, kind=EventKind.RECOVERY_OBJECTED,
                                        details__request=row.public_id,
                                        details__state=row.state).exists()


def _resumed_by_staff(row: RecoveryRequest) -> bool:
    """Staff looked at an earlier objection to this request and let it go on."""
    return row.state != State.ON_HOLD and row.transitions.filter(
        from_state=State.ON_HOLD, actor=RecoveryTransition.Actor.STAFF,
        to_state__in=[State.SUBMITTED, State.AWAITING_PROOF, State.IN_WAITING_PERIOD,
                      State.AWAITING_APPROVAL],
    ).exists()


def _block(user: User, row: RecoveryRequest) -> None:
    if active_block(user) is None:
        RecoveryBlock.objects.create(user=user, until=timezone.now() + settings.RECOVERY_BLOCK,
                                     reason=f"not me: request {row.public_id}")


def _after_completion(row: RecoveryRequest, user: User, *, repeated: bool) -> Objection:
    completed = row.closed_at or row.updated_at
    # Once only: a link kept by a hijacker must not end the owner's sessions again and again.
    if not repeated:
        ended = _end_recovered_access(user, since=completed)
        freeze_account(user=user, reason=f"this wasn't me after recovery {row.public_id}")
        record_event(user=user, kind=EventKind.OTHER_SESSIONS_ENDED,
                     details={"request": row.public_id, **ended})
        mark_urgent(recovery=row)
        _alert_staff(row, user, "recovered")
    return Objection("recovered", [], recovered_on=completed,
                     recovered_to=mask_address(row.contact_email))


def _end_recovered_access(user: User, *, since: datetime) -> dict[str, int]:
    """End what the recovered account's holder could use: sessions, trusted devices, and the
    API tokens and trusted publishers made since the recovery (older ones were all taken by
    the completion)."""
    return {
        **end_every_session(user=user),
        "api_tokens": revoke_every_token(user=user, since=since),
        "trusted_publishers": remove_every_publisher(user=user, since=since),
    }


def _alert_staff(row: RecoveryRequest, user: User, outcome: str) -> None:
    from relatch.recovery.requester.services import desk_url

    staff = User.objects.filter(is_staff=True, is_active=True)
    addresses = [a for member in staff for a in verified_addresses(member)]
    if addresses:
        send_mail(to=addresses, template="recovery_request_not_me",
                  context={"username": user.username, "request_id": row.public_id,
                           "outcome": outcome, "block_days": settings.RECOVERY_BLOCK.days,
                           "desk_url": desk_url(row)})
