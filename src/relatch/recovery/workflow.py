"""The states of a recovery request and the only service that moves it between them.

Every move is checked against ``ALLOWED``, recorded in the request's history (and as a
StaffAction when staff made it), and announced to whoever it gives something to do
(``relatch.recovery.notices``): the account's verified addresses of a wait and of the
completion (NIST N8/N9), the requester of what they did not just see on their page.
"""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from relatch.accounts.models import User
from relatch.audit.models import EventKind
from relatch.audit.services import record_event, record_staff_action
from relatch.recovery import notices
from relatch.recovery.models import RecoveryRequest, RecoveryTransition, State

Actor = RecoveryTransition.Actor

TERMINAL = frozenset({State.COMPLETED, State.DENIED, State.CANCELLED})
_EXITS = {State.DENIED, State.CANCELLED, State.ON_HOLD}
# Moves that bring an account closer to being handed over: refused while the account is
# blocked by a "this wasn't me", and out of a hold for anyone but staff (DESIGN §5: blocks
# and holds are read at every transition, not only at filing).
FORWARD = frozenset({State.AWAITING_PROOF, State.IN_WAITING_PERIOD, State.AWAITING_APPROVAL,
                     State.COMPLETED, State.SUBMITTED})

# from -> the states it may move to. Completion is reached only from awaiting_approval, and
# only when ``relatch.recovery.policy`` agrees (see completion.py). A waiting period may
# become another (a second source shortens it to the announced 24 hours).
ALLOWED: dict[State, frozenset[State]] = {
    State.SUBMITTED: frozenset({State.AWAITING_PROOF, State.CLOSED_NO_RESPONSE, *_EXITS}),
    State.AWAITING_PROOF: frozenset(
        {State.IN_WAITING_PERIOD, State.AWAITING_APPROVAL, State.CLOSED_NO_RESPONSE, *_EXITS}
    ),
    State.IN_WAITING_PERIOD: frozenset({State.AWAITING_PROOF, State.IN_WAITING_PERIOD,
                                        State.AWAITING_APPROVAL, State.COMPLETED, *_EXITS}),
    State.AWAITING_APPROVAL: frozenset({State.AWAITING_PROOF, State.COMPLETED, *_EXITS}),
    # Staff resume a held request to where it was, or deny it; its requester may cancel it.
    State.ON_HOLD: frozenset({State.SUBMITTED, State.AWAITING_PROOF, State.IN_WAITING_PERIOD,
                              State.AWAITING_APPROVAL, State.DENIED, State.CANCELLED}),
    # A request closed for silence can be reopened by its requester.
    State.CLOSED_NO_RESPONSE: frozenset({State.AWAITING_PROOF, State.CANCELLED}),
    State.COMPLETED: frozenset(),
    State.DENIED: frozenset(),
    State.CANCELLED: frozenset(),
}
# What the requester reads: a hold is staff's to resolve; it does not say who objected.
REQUESTER_LABELS = {State.ON_HOLD: "Waiting for staff review"}


def requester_label(state: str) -> str:
    """The state as the requester's page and mails name it."""
    return str(REQUESTER_LABELS.get(State(state), State(state).label))


class TransitionRefusedError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def may_move(from_state: str, to_state: str) -> bool:
    return State(to_state) in ALLOWED[State(from_state)]


@transaction.atomic
def move(
    *,
    recovery: RecoveryRequest,
    to: State,
    actor: RecoveryTransition.Actor,
    staff: User | None = None,
    reason: str = "",
    wait_ends_at: datetime | None = None,
    tell_requester: bool = True,
) -> RecoveryTransition:
    """Move ``recovery`` to ``to`` if the table allows it; record and announce the move.
    ``tell_requester`` False: the caller tells the requester itself, or they made the move
    happen on the page they are looking at (a proof they just answered)."""
    row = RecoveryRequest.objects.select_for_update().get(pk=recovery.pk)
    if not may_move(row.state, to):
        raise TransitionRefusedError(
            f"A request that is {State(row.state).label.lower()} cannot become {to.label.lower()}."
        )
    if actor == Actor.STAFF and staff is None:
        raise TransitionRefusedError("A staff move names the staff member.")
    if to == State.IN_WAITING_PERIOD and (wait_ends_at is None or wait_ends_at <= timezone.now()):
        raise TransitionRefusedError("A waiting period needs an end in the future.")
    _check_hold_and_block(row, to, actor)
    transition = _apply(row, to, actor, staff, reason, wait_ends_at)
    _announce(row, transition, tell_requester=tell_requester)
    recovery.refresh_from_db()
    return transition


def _check_hold_and_block(row: RecoveryRequest, to: State, actor: str) -> None:
    from relatch.recovery.holds import active_block

    if to not in FORWARD:
        return
    if row.state == State.ON_HOLD and (actor != Actor.STAFF or to != row.held_from):
        raise TransitionRefusedError(
            "This request is on hold: only staff can resume it, to where it was."
        )
    if row.user is not None and active_block(row.user) is not None:
        raise TransitionRefusedError(
            "Someone said \"this wasn't me\" about a recovery of this account: staff must "
            "lift the block before any request for it goes on."
        )


def _apply(
    row: RecoveryRequest,
    to: State,
    actor: RecoveryTransition.Actor,
    staff: User | None,
    reason: str,
    wait_ends_at: datetime | None,
) -> RecoveryTransition:
    before = {"state": row.state, "wait_ends_at": _iso(row.wait_ends_at)}
    now = timezone.now()
    transition = RecoveryTransition.objects.create(
        request=row, from_state=row.state, to_state=to, actor=actor, staff=staff, reason=reason
    )
    if to == State.ON_HOLD:
        row.held_from = row.state
    elif row.state == State.ON_HOLD:
        row.held_from = ""
    row.state = to
    row.updated_at = now
    if to == State.IN_WAITING_PERIOD:
        row.wait_started_at = now
        row.wait_ends_at = wait_ends_at
    if to != State.IN_WAITING_PERIOD and to != State.ON_HOLD:
        row.completes_automatically = False
    if to in TERMINAL or to == State.CLOSED_NO_RESPONSE:
        row.closed_at = now
    row.save()
    if staff is not None:
        record_staff_action(
            staff=staff, subject=row.user, action=f"recovery:{to}", reason=reason,
            before=before, after={"state": to, "wait_ends_at": _iso(row.wait_ends_at),
                                  "request": row.public_id},
        )
    return transition


def _announce(row: RecoveryRequest, transition: RecoveryTransition, *,
              tell_requester: bool) -> None:
    if row.user is not None:
        record_event(user=row.user, kind=EventKind.RECOVERY_STATE_CHANGED,
                     details={"request": row.public_id, "state": transition.to_state})
    context = notices.state_context(row)
    told: set[str] = set()
    if row.user is not None and transition.to_state in notices.ACCOUNT_HEARS:
        # NIST N8/N11: a wait (what the owner can still stop, and until when) and a
        # completion (which the link then reports, ending the recovered sessions).
        told = notices.tell_account(recovery=row, template="recovery_state_changed", context={
            **context, "from_state": State(transition.from_state).label,
            "to_state": State(transition.to_state).label})
    if tell_requester and notices.requester_hears(transition):
        notices.tell_requester(recovery=row, template="recovery_request_update", told=told,
                               context={**context, "to_state": requester_label(row.state)})


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""
