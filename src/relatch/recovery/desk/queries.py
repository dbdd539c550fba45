"""What the staff desk reads: the queue, a request's detail and the account's facts (issue 5
point 7). The desk's pages and the staff side of the JSON API read the same functions and the
same frozen dataclasses (issue 16): the page renders them, the API's schemas are built from
them.

Staff see filed requests only (``filed_requests``): one whose contact address was never
confirmed was never filed, and is in no queue, no detail page and no API answer.

Read-only; every function runs a fixed number of queries whatever the queue's length. The
queue is read a page at a time, by keyset (after a given request, in (created_at, id) order):
the database reads one page of rows whatever the queue's length, never a count or an OFFSET
over 100 k requests (bench/scale.py).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from relatch.accounts.models import User
from relatch.accounts.sessions.useragents import describe_user_agent
from relatch.audit.models import EventKind, SecurityEvent, kind_label
from relatch.index.models import Release, Role
from relatch.mfa.models import RecoveryCode, RecoveryCodeSet, TotpDevice, WebAuthnCredential
from relatch.recovery.models import (
    OPEN_STATES,
    ProofKind,
    RecoveryMessage,
    RecoveryProof,
    RecoveryRequest,
    RecoveryTransition,
    State,
)
from relatch.recovery.policy import verdict
from relatch.recovery.sources import Judged
from relatch.recovery.takeover import Change, recent_changes

RECENT_EVENTS = 20
RECENT_SIGNINS = 5
# A page that lists every earlier request grows without bound for an account someone files
# against again and again; the rest are one search away (the desk's user search).
EARLIER_REQUESTS = 20
QUEUE_PAGE = 50
MAX_PUBLIC_ID = 24  # RecoveryRequest.public_id's length: anything longer names no request


def filed_requests() -> QuerySet[RecoveryRequest]:
    """The requests staff see: those whose contact address was confirmed. One still waiting
    for its code was never filed (the requester never finished)."""
    return RecoveryRequest.objects.filter(contact_confirmed_at__isnull=False)


def filed_request(public_id: str) -> RecoveryRequest | None:
    """The filed request ``public_id`` names, for the desk's pages and the API alike; None
    for an unknown or unfiled one."""
    # A NUL cannot be in an id, and PostgreSQL refuses it in a query (a 500, not a 404).
    if len(public_id) > MAX_PUBLIC_ID or "\x00" in public_id:
        return None
    return (filed_requests().select_related("user", "assigned_to")
            .filter(public_id=public_id).first())


def first_answer_target() -> timedelta:
    """How soon staff aim to answer a new request (setting RECOVERY_FIRST_ANSWER_TARGET)."""
    target = getattr(settings, "RECOVERY_FIRST_ANSWER_TARGET", timedelta(days=2))
    return target if isinstance(target, timedelta) else timedelta(days=2)


@dataclass(frozen=True)
class QueueRow:
    """One line of the queue."""

    public_id: str
    username_claimed: str
    account_matched: bool
    owns_projects: bool
    state: str
    state_label: str
    created_at: datetime
    age: timedelta
    first_answer_at: datetime | None
    # Not yet answered by staff and older than the first-answer target.
    over_target: bool
    assigned_to: str


def queue(
    *,
    state: State | str | None = None,
    older_than: timedelta | None = None,
    owns_projects: bool | None = None,
    assigned_to: User | None = None,
    after: str | None = None,
    limit: int | None = None,
    now: datetime | None = None,
) -> list[QueueRow]:
    """Filed requests, oldest first. ``state=None`` lists the open ones, ``"all"`` every one.

    ``after`` (a public id) starts the list after that request (one that does not exist gives
    an empty list); ``limit`` caps its length.
    """
    now = now or timezone.now()
    rows = _filtered(_annotated(), state, older_than, owns_projects, assigned_to, now)
    if after:
        rows = rows.filter(_after(after))
    if limit is not None:
        rows = rows[:limit]
    target = first_answer_target()
    return [_row(r, now, target) for r in rows]


def _after(public_id: str) -> Q:
    # Keyset: strictly after the named request in (created_at, id) order, read in the same
    # query (no extra round trip, and an unknown id matches nothing, so no rows are skipped).
    mark = RecoveryRequest.objects.filter(public_id=public_id)
    created = Subquery(mark.values("created_at")[:1])
    return Q(created_at__gt=created) | Q(created_at=created, id__gt=Subquery(mark.values("id")[:1]))


def _owner() -> Exists:
    return Exists(Role.objects.filter(user=OuterRef("user"), kind=Role.Kind.OWNER))


def _annotated() -> QuerySet[RecoveryRequest]:
    return (
        filed_requests()
        .select_related("assigned_to")
        .annotate(
            # One owner role's id, or NULL: a correlated subquery with LIMIT 1 is probed per
            # row shown, where an EXISTS in the select list let PostgreSQL hash all 200 k roles
            # before the page was cut (bench/scale.py).
            owner_role=Subquery(
                Role.objects.filter(user=OuterRef("user"), kind=Role.Kind.OWNER)
                .values("pk")[:1]
            ),
            # A subquery, not an aggregate over a join: computed only for the rows shown,
            # instead of grouping every message of every filed request before the page is cut.
            first_answer_at=Subquery(
                RecoveryMessage.objects.filter(
                    request=OuterRef("pk"), author=RecoveryMessage.Author.STAFF
                ).order_by("created_at").values("created_at")[:1]
            ),
        )
        .order_by("created_at", "id")
    )


def _filtered(
    rows: QuerySet[RecoveryRequest], state: State | str | None, older_than: timedelta | None,
    owns: bool | None, assigned_to: User | None, now: datetime,
) -> QuerySet[RecoveryRequest]:
    if state is None:
        rows = rows.filter(state__in=OPEN_STATES)
    elif state != "all":
        rows = rows.filter(state=state)
    if older_than is not None:
        rows = rows.filter(created_at__lte=now - older_than)
    if owns is not None:
        rows = rows.filter(_owner() if owns else ~_owner())
    if assigned_to is not None:
        rows = rows.filter(assigned_to=assigned_to)
    return rows


def _row(r: RecoveryRequest, now: datetime, target: timedelta) -> QueueRow:
    age = now - r.created_at
    answered: datetime | None = getattr(r, "first_answer_at", None)
    return QueueRow(
        public_id=r.public_id, username_claimed=r.username_claimed,
        account_matched=r.user_id is not None,
        owns_projects=getattr(r, "owner_role", None) is not None,
        state=r.state, state_label=State(r.state).label, created_at=r.created_at, age=age,
        first_answer_at=answered,
        over_target=answered is None and r.state in OPEN_STATES and age > target,
        assigned_to=r.assigned_to.username if r.assigned_to else "",
    )


@dataclass(frozen=True)
class CodeFacts:
    made_at: datetime
    confirmed_at: datetime | None
    total: int
    used: int


@dataclass(frozen=True)
class AddressFact:
    address: str
    primary: bool
    verified: bool
    verified_at: datetime | None


@dataclass(frozen=True)
class ProjectFact:
    name: str
    role: str
    # (label, url) pairs from the releases' metadata (Project-URL, Home-page), newest first.
    urls: list[tuple[str, str]]


@dataclass(frozen=True)
class KeyFact:
    label: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class EventFact:
    """A security event of the account."""

    kind: str
    label: str
    created_at: datetime
    ip_address: str | None
    device: str  # its user agent described, "Firefox 140 on Linux" ("" when none)


@dataclass(frozen=True)
class EarlierRequest:
    """Another filed request for the same account."""

    public_id: str
    state_label: str
    created_at: datetime


@dataclass(frozen=True)
class AccountFacts:
    """What staff need to know about the account a request names."""

    username: str
    is_active: bool
    is_frozen: bool
    date_joined: datetime
    totp_since: datetime | None
    keys: list[KeyFact]
    recovery_codes: CodeFacts | None
    addresses: list[AddressFact]
    projects: list[ProjectFact]
    signins: list[EventFact]
    events: list[EventFact]
    earlier: list[EarlierRequest] = field(default_factory=list)
    # More earlier requests exist than ``earlier`` shows.
    more_earlier_requests: bool = False

    @property
    def earlier_requests(self) -> list[str]:
        """The public ids of the earlier requests (as the API lists them)."""
        return [r.public_id for r in self.earlier]


def account_facts(recovery: RecoveryRequest) -> AccountFacts | None:
    """The facts of the account ``recovery`` names, or None when no account matched."""
    user = recovery.user
    if user is None:
        return None
    totp = TotpDevice.objects.filter(user=user).first()
    events = list(SecurityEvent.objects.filter(user=user)[:RECENT_EVENTS])
    signins = SecurityEvent.objects.filter(user=user, kind=EventKind.SIGNIN_SUCCEEDED)
    earlier = list(
        filed_requests().filter(user=user).exclude(pk=recovery.pk)
        .order_by("-created_at")[:EARLIER_REQUESTS + 1]
    )
    return AccountFacts(
        username=user.username, is_active=user.is_active, is_frozen=user.is_frozen,
        date_joined=user.date_joined, totp_since=totp.created_at if totp else None,
        keys=[KeyFact(k.label, k.created_at, k.last_used_at)
              for k in WebAuthnCredential.objects.filter(user=user).order_by("created_at")],
        recovery_codes=_codes(user),
        addresses=[AddressFact(e.address, e.primary, e.verified, e.verified_at)
                   for e in user.emails.order_by("-primary", "address")],
        projects=_projects(user),
        signins=[_event(e) for e in signins[:RECENT_SIGNINS]],
        events=[_event(e) for e in events],
        earlier=[EarlierRequest(r.public_id, str(State(r.state).label), r.created_at)
                 for r in earlier[:EARLIER_REQUESTS]],
        more_earlier_requests=len(earlier) > EARLIER_REQUESTS,
    )


def _event(event: SecurityEvent) -> EventFact:
    return EventFact(kind=event.kind, label=kind_label(event.kind),
                     created_at=event.created_at, ip_address=event.ip_address,
                     device=_device(event.user_agent))


def _device(user_agent: str) -> str:
    # Named as the owner's devices page names it: a raw agent is long, and whatever the client
    # chose to send, so it never reaches staff as text that could pass for a note.
    return str(describe_user_agent(user_agent)) if user_agent else ""


def _codes(user: User) -> CodeFacts | None:
    code_set = RecoveryCodeSet.objects.filter(user=user).first()
    if code_set is None:
        return None
    codes = RecoveryCode.objects.filter(code_set=code_set)
    return CodeFacts(made_at=code_set.created_at, confirmed_at=code_set.confirmed_at,
                     total=codes.count(), used=codes.filter(used_at__isnull=False).count())


def _projects(user: User) -> list[ProjectFact]:
    roles = list(Role.objects.filter(user=user).select_related("project")
                 .order_by("project__normalized_name"))
    releases = (Release.objects.filter(project__in=[r.project for r in roles])
                .order_by("-created_at").values("project_id", "project_urls", "home_page"))
    urls: dict[int, dict[str, str]] = {r.project_id: {} for r in roles}
    for release in releases:
        found = urls[release["project_id"]]
        for label, url in _release_urls(release["project_urls"], release["home_page"]):
            found.setdefault(url, label)
    return [ProjectFact(r.project.name, r.get_kind_display(),
                        [(label, url) for url, label in urls[r.project_id].items()])
            for r in roles]


def _release_urls(project_urls: object, home_page: str) -> list[tuple[str, str]]:
    pairs = list(project_urls.items()) if isinstance(project_urls, dict) else []
    if home_page:
        pairs.append(("Home-page", home_page))
    return [(str(label), str(url)) for label, url in pairs if isinstance(url, str) and url]


@dataclass(frozen=True)
class Standing:
    """What a "this wasn't me" left: a hold, a block, a freeze of the account, an urgent mark
    (no freeze and no block when no account matched)."""

    held_from: str
    held_from_label: str
    urgent_since: datetime | None
    account_frozen: bool
    frozen_at: datetime | None
    block_until: datetime | None
    block_reason: str
    completes_automatically: bool


def standing(recovery: RecoveryRequest) -> Standing:
    """The request's hold and urgency, and its account's freeze and block."""
    from relatch.recovery.holds import active_block

    user = recovery.user
    block = None
    if user is not None:
        user.refresh_from_db(fields=["is_frozen", "frozen_at"])
        block = active_block(user)
    return Standing(
        held_from=recovery.held_from,
        held_from_label=str(State(recovery.held_from).label) if recovery.held_from else "",
        urgent_since=recovery.urgent_since,
        account_frozen=bool(user and user.is_frozen),
        frozen_at=user.frozen_at if user else None,
        block_until=block.until if block else None,
        block_reason=block.reason if block else "",
        completes_automatically=recovery.completes_automatically,
    )


@dataclass(frozen=True)
class StaffProof:
    """A proof as staff see it, with what the policy counted it as (satisfied ones only)."""

    id: int
    kind: str
    kind_label: str
    status: str
    status_label: str
    expires_at: datetime | None
    evidence: dict[str, object]
    created_at: datetime
    checked_at: datetime | None
    requested_by: str  # "" when it was asked automatically from what the requester said
    counts: bool | None  # None: not judged (not satisfied)
    source: str  # "" when it rests on nothing counted
    source_label: str
    why: str


def staff_proof(proof: RecoveryProof, judged: Judged | None = None) -> StaffProof:
    return StaffProof(
        id=proof.pk, kind=proof.kind, kind_label=str(ProofKind(proof.kind).label),
        status=proof.status, status_label=str(RecoveryProof.Status(proof.status).label),
        expires_at=proof.expires_at, evidence=dict(proof.evidence or {}),
        created_at=proof.created_at, checked_at=proof.checked_at,
        requested_by=proof.requested_by.username if proof.requested_by else "",
        counts=judged.counts if judged else None,
        source=str(judged.source or "") if judged else "",
        source_label=judged.source_label if judged else "", why=judged.why if judged else "",
    )


@dataclass(frozen=True)
class DeskMessage:
    author: str
    author_label: str
    body: str
    created_at: datetime
    staff: str  # the staff member who wrote it, or ""


@dataclass(frozen=True)
class Transition:
    from_state: str
    from_label: str
    to_state: str
    to_label: str
    actor: str
    actor_label: str
    staff: str
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class Outcome:
    """How a finished request ended: its last state, when, and who moved it there (the staff
    member's name only when staff did)."""

    state_label: str
    at: datetime | None
    by: str  # "" when no recorded move ended it
    reason: str


@dataclass(frozen=True)
class Approval:
    staff: str
    created_at: datetime


@dataclass(frozen=True)
class PolicyVerdict:
    """What the policy says about completing now (relatch.recovery.policy.verdict)."""

    may_complete: bool
    missing: list[str]
    approvals_needed: int
    approvals: list[str]  # who approved, first first
    sources: list[str]  # the independent sources counted so far, one entry each
    source_labels: list[str]


@dataclass(frozen=True)
class RequestDetail:
    """Everything staff see of a request: the desk's detail page and GET /api/v1/desk/
    requests/<public_id>."""

    public_id: str
    username_claimed: str
    account_matched: bool
    contact_email: str
    contact_confirmed_at: datetime | None
    still_has: list[str]
    description: str
    state: str
    state_label: str
    created_at: datetime
    updated_at: datetime
    wait_ends_at: datetime | None
    awaiting_requester_since: datetime | None
    assigned_to: str
    override_reason: str
    reminders_sent: int
    proofs: list[StaffProof]
    messages: list[DeskMessage]
    transitions: list[Transition]
    approvals: list[Approval]
    verdict: PolicyVerdict
    weak_evidence: list[str]
    facts: AccountFacts | None
    standing: Standing
    changes: list[Change]
    # None while the request is open (OPEN_STATES); then the desk offers no more actions.
    outcome: Outcome | None = None


def request_detail(recovery: RecoveryRequest) -> RequestDetail:
    """``recovery`` as staff see it (read as it is now in the database)."""
    said = verdict(recovery)
    judged = {item.proof.pk: item for item in said.judged}
    approvals = [Approval(a.staff.username, a.created_at) for a in
                 recovery.approvals.select_related("staff").order_by("created_at", "pk")]
    transitions = [_transition(t) for t in recovery.transitions.select_related("staff")]
    return RequestDetail(
        public_id=recovery.public_id, username_claimed=recovery.username_claimed,
        account_matched=recovery.user_id is not None, contact_email=recovery.contact_email,
        contact_confirmed_at=recovery.contact_confirmed_at,
        still_has=[str(item) for item in recovery.still_has or []],
        description=recovery.description, state=recovery.state,
        state_label=str(State(recovery.state).label), created_at=recovery.created_at,
        updated_at=recovery.updated_at, wait_ends_at=recovery.wait_ends_at,
        awaiting_requester_since=recovery.awaiting_requester_since,
        assigned_to=recovery.assigned_to.username if recovery.assigned_to else "",
        override_reason=recovery.override_reason, reminders_sent=recovery.reminders_sent,
        proofs=[staff_proof(p, judged.get(p.pk)) for p in
                recovery.proofs.select_related("requested_by").order_by("created_at", "pk")],
        messages=[DeskMessage(m.author, str(m.get_author_display()), m.body, m.created_at,
                              m.staff.username if m.staff else "")
                  for m in recovery.messages.select_related("staff")],
        transitions=transitions, approvals=approvals,
        verdict=PolicyVerdict(
            may_complete=said.may_complete, missing=list(said.missing),
            approvals_needed=said.approvals_needed, approvals=[a.staff for a in approvals],
            sources=[str(item.source) for item in said.sources],
            source_labels=[item.source_label for item in said.sources]),
        weak_evidence=_weak_evidence(recovery), facts=account_facts(recovery),
        standing=standing(recovery), changes=recent_changes(recovery),
        outcome=outcome(recovery, transitions),
    )


def outcome(recovery: RecoveryRequest, transitions: list[Transition]) -> Outcome | None:
    """How ``recovery`` ended, from the move into its final state; None while it is open."""
    if recovery.state in OPEN_STATES:
        return None
    label = str(State(recovery.state).label)
    ending = next((t for t in reversed(transitions) if t.to_state == recovery.state), None)
    if ending is None:  # a row made without the workflow (an import): the dates alone
        return Outcome(label, recovery.closed_at or recovery.updated_at, "", "")
    return Outcome(label, ending.created_at, _by(ending), ending.reason)


def _by(t: Transition) -> str:
    if t.actor == RecoveryTransition.Actor.STAFF:
        return f"staff member {t.staff}"
    if t.actor == RecoveryTransition.Actor.SYSTEM:
        return "Relatch, automatically"
    return f"the {t.actor_label.lower()}"


def _transition(t: RecoveryTransition) -> Transition:
    return Transition(
        from_state=t.from_state, from_label=str(t.get_from_state_display()),
        to_state=t.to_state, to_label=str(t.get_to_state_display()), actor=t.actor,
        actor_label=str(t.get_actor_display()), staff=t.staff.username if t.staff else "",
        reason=t.reason, created_at=t.created_at)


def _weak_evidence(recovery: RecoveryRequest) -> list[str]:
    try:
        from relatch.recovery.proofs.services import weak_evidence
    except ImportError:  # the proofs area not installed: nothing to show, not an error
        return []
    return [str(item) for item in weak_evidence(recovery)]


def urgent(*, limit: int = QUEUE_PAGE, now: datetime | None = None) -> list[QueueRow]:
    """Requests raised by a "this wasn't me", the longest waiting first: shown above the
    queue whatever its filters, until staff decide."""
    now = now or timezone.now()
    rows = (_annotated().filter(urgent_since__isnull=False)
            .order_by("urgent_since", "id")[:limit])
    target = first_answer_target()
    return [_row(r, now, target) for r in rows]
