"""What the staff desk reads: the queue and an account's facts (issue 5 point 7).

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
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import Release, Role
from relatch.mfa.models import RecoveryCode, RecoveryCodeSet, TotpDevice, WebAuthnCredential
from relatch.recovery.models import OPEN_STATES, RecoveryMessage, RecoveryRequest, State

RECENT_EVENTS = 20
RECENT_SIGNINS = 5
# A page that lists every earlier request grows without bound for an account someone files
# against again and again; the rest are one search away (the desk's user search).
EARLIER_REQUESTS = 20
QUEUE_PAGE = 50


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
    # Only filed requests: an unconfirmed contact address means the requester never finished.
    return (
        RecoveryRequest.objects.filter(contact_confirmed_at__isnull=False)
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
class AccountFacts:
    """What staff need to know about the account a request names."""

    user: User
    totp_since: datetime | None
    keys: list[WebAuthnCredential]
    codes: CodeFacts | None
    addresses: list[AddressFact]
    projects: list[ProjectFact]
    signins: list[SecurityEvent]
    events: list[SecurityEvent]
    earlier_requests: list[RecoveryRequest] = field(default_factory=list)
    # More earlier requests exist than ``earlier_requests`` shows.
    more_earlier_requests: bool = False


def account_facts(recovery: RecoveryRequest) -> AccountFacts | None:
    """The facts of the account ``recovery`` names, or None when no account matched."""
    user = recovery.user
    if user is None:
        return None
    totp = TotpDevice.objects.filter(user=user).first()
    events = list(SecurityEvent.objects.filter(user=user)[:RECENT_EVENTS])
    signins = SecurityEvent.objects.filter(user=user, kind=EventKind.SIGNIN_SUCCEEDED)
    earlier = list(
        RecoveryRequest.objects.filter(user=user).exclude(pk=recovery.pk)
        .order_by("-created_at")[:EARLIER_REQUESTS + 1]
    )
    return AccountFacts(
        user=user, totp_since=totp.created_at if totp else None,
        keys=list(WebAuthnCredential.objects.filter(user=user).order_by("created_at")),
        codes=_codes(user),
        addresses=[AddressFact(e.address, e.primary, e.verified, e.verified_at)
                   for e in user.emails.order_by("-primary", "address")],
        projects=_projects(user), signins=list(signins[:RECENT_SIGNINS]), events=events,
        earlier_requests=earlier[:EARLIER_REQUESTS],
        more_earlier_requests=len(earlier) > EARLIER_REQUESTS,
    )


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
    """What a "this wasn't me" left on the account: a freeze, a block, an urgent mark."""

    frozen_at: datetime | None
    is_frozen: bool
    block_until: datetime | None
    block_reason: str
    urgent_since: datetime | None


def standing(recovery: RecoveryRequest) -> Standing | None:
    """The account's freeze and block, and the request's urgency (None: no account)."""
    from relatch.recovery.holds import active_block

    user = recovery.user
    if user is None:
        return None
    user.refresh_from_db(fields=["is_frozen", "frozen_at"])
    block = active_block(user)
    return Standing(frozen_at=user.frozen_at, is_frozen=user.is_frozen,
                    block_until=block.until if block else None,
                    block_reason=block.reason if block else "",
                    urgent_since=recovery.urgent_since)


def urgent(*, limit: int = QUEUE_PAGE, now: datetime | None = None) -> list[QueueRow]:
    """Requests raised by a "this wasn't me", the longest waiting first: shown above the
    queue whatever its filters, until staff decide."""
    now = now or timezone.now()
    rows = (_annotated().filter(urgent_since__isnull=False)
            .order_by("urgent_since", "id")[:limit])
    target = first_answer_target()
    return [_row(r, now, target) for r in rows]
