"""What the holder of a status link reads about their request: one read model for the status
page and the JSON API (GET /api/v1/recovery/status), so both show the same state, proofs and
messages. A request refused quietly (its account is blocked) reads as a submitted one with
nothing asked, as on every other answer (relatch.recovery.requester.services). Read-only.

The page reads as one timeline (``timeline.py``) and then one next step that cannot contradict
itself: the proofs still to give, or nothing to do and until when, or the outcome (issue 19).
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from relatch.recovery.models import ProofKind, RecoveryProof, RecoveryRequest, State
from relatch.recovery.proofs.wording import PROOF_INSTRUCTIONS
from relatch.recovery.requester.services import refused_quietly
from relatch.recovery.requester.timeline import Entry, timeline
from relatch.recovery.waits import another_proof_ends_wait, kinds_that_could
from relatch.recovery.workflow import TERMINAL, requester_label


@dataclass(frozen=True)
class PendingProof:
    """A proof staff asked for that waits for the requester's answer."""

    id: int
    kind: str
    kind_label: str
    status: str
    expires_at: datetime | None
    instructions: str
    # Its page (secret: it holds the status token); "" when read without the token (the API).
    page_url: str = ""


@dataclass(frozen=True)
class MessageLine:
    author: str  # "requester", "staff" or "system"
    body: str
    created_at: datetime


@dataclass(frozen=True)
class KindOfProof:
    """A kind of proof: its value (what the API's clients compare) and its label (the words)."""

    kind: str
    label: str


@dataclass(frozen=True)
class NextStep:
    """The one thing the page says to do now.

    ``kind``: "proofs" (give ``proofs``), "wait" (nothing to do until ``wait_ends_at``),
    "staff" (nothing to do: staff act next), "reopen" (closed for silence) or "finished"
    (``outcome``: the state it ended in). ``completes_automatically``: a running wait after
    which the request completes by itself unless someone objects (said only while the wait
    runs, as the page says it). ``sooner``: a wait that one more independent proof ends
    early; ``sooner_proofs`` are the asked proofs that could, ``sooner_kinds`` every kind
    that could.
    """

    kind: str
    proofs: list[PendingProof] = field(default_factory=list)
    wait_ends_at: datetime | None = None
    wait_over: bool = False
    completes_automatically: bool = False
    sooner: bool = False
    sooner_proofs: list[PendingProof] = field(default_factory=list)
    sooner_kinds: list[KindOfProof] = field(default_factory=list)
    outcome: str | None = None


@dataclass(frozen=True)
class RequesterStatus:
    public_id: str
    state: str
    state_label: str
    created_at: datetime
    filed_at: datetime | None
    # Only while the waiting period is shown.
    wait_ends_at: datetime | None
    waiting_for_you_since: datetime | None
    completes_automatically: bool
    pending_proofs: list[PendingProof]
    messages: list[MessageLine]
    may_cancel: bool
    may_reopen: bool
    timeline: list[Entry] = field(default_factory=list)
    next_step: NextStep = field(default_factory=lambda: NextStep("staff"))
    finished: bool = False


def requester_status(recovery: RecoveryRequest, *, token: str = "") -> RequesterStatus:
    """``recovery`` as its requester sees it; ``token`` (the status link's) adds each pending
    proof's page address."""
    quiet = refused_quietly(recovery)
    shown = State.SUBMITTED if quiet else State(recovery.state)
    rows = [] if quiet else list(
        recovery.proofs.filter(status=RecoveryProof.Status.PENDING).order_by("created_at", "pk"))
    pending = [_pending(recovery, proof, token) for proof in rows]
    now = timezone.now()
    return RequesterStatus(
        public_id=recovery.public_id, state=shown.value, state_label=requester_label(shown),
        created_at=recovery.created_at, filed_at=recovery.contact_confirmed_at,
        wait_ends_at=recovery.wait_ends_at if shown == State.IN_WAITING_PERIOD else None,
        waiting_for_you_since=None if quiet else recovery.awaiting_requester_since,
        completes_automatically=not quiet and recovery.completes_automatically,
        pending_proofs=pending,
        messages=[MessageLine(author=m.author, body=m.body, created_at=m.created_at)
                  for m in recovery.messages.all()],
        may_cancel=quiet or shown not in TERMINAL,
        may_reopen=shown == State.CLOSED_NO_RESPONSE,
        timeline=timeline(recovery, quiet=quiet, now=now),
        next_step=_next_step(recovery, shown, pending, now),
        finished=shown in TERMINAL,
    )


def _next_step(recovery: RecoveryRequest, shown: State, pending: list[PendingProof],
               now: datetime) -> NextStep:
    if shown in TERMINAL:
        return NextStep("finished", outcome=shown.value)
    if shown == State.CLOSED_NO_RESPONSE:
        return NextStep("reopen")
    if shown == State.IN_WAITING_PERIOD:
        return _waiting(recovery, pending, now)
    if shown in (State.AWAITING_PROOF, State.ON_HOLD) and pending:
        return NextStep("proofs", proofs=pending)
    return NextStep("staff")


def _waiting(recovery: RecoveryRequest, pending: list[PendingProof], now: datetime) -> NextStep:
    """Nothing to do until the wait ends; and, when one more independent proof would end it
    sooner, which asked proofs and which kinds could."""
    ends = recovery.wait_ends_at
    over = ends is not None and ends <= now
    if over or not another_proof_ends_wait(recovery, now=now):
        return NextStep("wait", wait_ends_at=ends, wait_over=over,
                        completes_automatically=not over and recovery.completes_automatically)
    could = kinds_that_could(recovery)
    return NextStep("wait", wait_ends_at=ends, sooner=True,
                    sooner_proofs=[proof for proof in pending if proof.kind in could],
                    sooner_kinds=[KindOfProof(kind.value, str(kind.label)) for kind in could])


def _pending(recovery: RecoveryRequest, proof: RecoveryProof, token: str) -> PendingProof:
    return PendingProof(
        id=proof.pk, kind=proof.kind, kind_label=str(ProofKind(proof.kind).label),
        status=proof.status, expires_at=proof.expires_at,
        instructions=PROOF_INSTRUCTIONS.get(proof.kind, ""),
        page_url=_page_url(recovery, proof, token) if token else "",
    )


def _page_url(recovery: RecoveryRequest, proof: RecoveryProof, token: str) -> str:
    try:  # the proof pages of the proofs area (/recovery/proof/), when wired
        return reverse("proofs:proof", kwargs={"proof_id": proof.pk,
                                               "public_id": recovery.public_id, "token": token})
    except NoReverseMatch:
        return ""
