"""What happened to a recovery request, in order, as its requester may read it (issue 19).

Built only from rows that exist: the request (filed), its proofs (asked, accepted, failed,
expired), its state history and its messages. The words are the requester's: a hold says
that staff review the request, never who objected; no staff reason is shown (a reason such
as "an account with two-step sign-in" or "owns no project" is an account fact, and the page
must reveal none, not even whether the account exists). Read-only.
"""

from dataclasses import dataclass
from datetime import datetime

from relatch.recovery.models import (
    ProofKind,
    RecoveryProof,
    RecoveryRequest,
    RecoveryTransition,
    State,
)


@dataclass(frozen=True)
class Entry:
    """One line of the timeline; a message carries its author and text."""

    at: datetime
    what: str
    kind: str  # "filed", "proof", "state" or "message"
    author: str = ""  # a message's: "requester", "staff" or "system"
    body: str = ""
    ends_at: datetime | None = None  # a waiting period's end, when known
    ended: bool = False  # that end is past

    @property
    def text(self) -> str:
        """The entry's words as the page shows them, without its times (the page renders
        those, and a waiting period's end, from ``at``, ``ends_at`` and ``ended``)."""
        return self.body if self.kind == "message" else self.what


# Ties in time keep the order in which things cause each other.
_RANK = {"filed": 0, "proof": 1, "state": 2, "message": 3}


def timeline(recovery: RecoveryRequest, *, quiet: bool,
             now: datetime) -> list[Entry]:
    """The request's history, oldest first. ``quiet``: a request refused quietly shows its
    filing and the requester's own messages only, as a submitted one would."""
    entries = [_filed(recovery)] if recovery.contact_confirmed_at else []
    if not quiet:
        entries += _proof_entries(recovery)
        entries += _state_entries(recovery, now)
    entries += _messages(recovery, quiet=quiet)
    return sorted(entries, key=lambda entry: (entry.at, _RANK[entry.kind]))


def _filed(recovery: RecoveryRequest) -> Entry:
    assert recovery.contact_confirmed_at is not None
    return Entry(recovery.contact_confirmed_at, "You filed the request and confirmed your "
                 "contact address.", "filed")


def _proof_entries(recovery: RecoveryRequest) -> list[Entry]:
    entries = []
    for proof in recovery.proofs.order_by("created_at", "pk"):
        label = str(ProofKind(proof.kind).label)
        asker = "Staff asked" if proof.requested_by_id else "From what you still have, we asked"
        entries.append(Entry(proof.created_at, f"{asker} for a proof: {label}.", "proof"))
        outcome = _PROOF_OUTCOMES.get(RecoveryProof.Status(proof.status))
        if outcome:
            when = proof.checked_at or proof.created_at
            entries.append(Entry(when, outcome.format(label=label), "proof"))
    return entries


_PROOF_OUTCOMES = {
    RecoveryProof.Status.SATISFIED: "Proof accepted: {label}.",
    RecoveryProof.Status.FAILED: "Proof failed: {label}.",
    RecoveryProof.Status.EXPIRED: "Proof expired before it was given: {label}.",
}


def _state_entries(recovery: RecoveryRequest, now: datetime) -> list[Entry]:
    moves = list(recovery.transitions.order_by("created_at", "pk"))
    last_wait = max((i for i, m in enumerate(moves) if m.to_state == State.IN_WAITING_PERIOD),
                    default=None)
    entries = []
    for index, move in enumerate(moves):
        what = _words(move)
        if not what:
            continue
        ends_at = recovery.wait_ends_at if index == last_wait else None
        entries.append(Entry(move.created_at, what, "state", ends_at=ends_at,
                             ended=bool(ends_at and ends_at <= now)))
    return entries


def _words(move: RecoveryTransition) -> str:
    """What ``move`` means to the requester; "" for a move another entry already says (the
    first proof asked moves a new request on)."""
    to, came_from = State(move.to_state), State(move.from_state)
    if came_from == State.ON_HOLD and to not in (State.DENIED, State.CANCELLED):
        return "Staff reviewed the request and let it go on."
    if to == State.IN_WAITING_PERIOD:
        return ("Your proofs are enough: the waiting period was shortened."
                if came_from == State.IN_WAITING_PERIOD else "A waiting period started.")
    if to == State.AWAITING_PROOF:
        return _AWAITING_PROOF_FROM.get(came_from, "")
    if to == State.AWAITING_APPROVAL:
        return ("The waiting period ended: staff now decide."
                if came_from == State.IN_WAITING_PERIOD
                else "Your proofs are enough: staff now decide.")
    if to == State.CANCELLED and move.actor == RecoveryTransition.Actor.REQUESTER:
        return "You cancelled the request."
    return _ARRIVALS.get(to, "")


_AWAITING_PROOF_FROM = {
    State.IN_WAITING_PERIOD: "The waiting period ended, but more proof is needed.",
    State.AWAITING_APPROVAL: "Staff asked for more proof before they decide.",
    State.CLOSED_NO_RESPONSE: "You reopened the request.",
}
_ARRIVALS = {
    State.ON_HOLD: "Staff need to review the request before it goes on.",
    State.COMPLETED: "The request was completed: a link to set a new password went to your "
                     "contact address.",
    State.DENIED: "Staff denied the request.",
    State.CANCELLED: "The request was cancelled.",
    State.CLOSED_NO_RESPONSE: "The request was closed because we heard nothing from you.",
}


def _messages(recovery: RecoveryRequest, *, quiet: bool) -> list[Entry]:
    rows = recovery.messages.all()
    if quiet:  # nobody writes to a request refused quietly; only the requester's own show
        rows = rows.filter(author="requester")
    return [Entry(m.created_at, "", "message", author=m.author, body=m.body) for m in rows]
