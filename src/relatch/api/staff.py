"""The staff side of the JSON API: the queue, a request's detail with the account's facts, the
desk's actions and its user search. Authenticated by a staff-purpose API token
(``relatch.api.auth``); every action goes through ``relatch.recovery.desk.services``, which
writes the StaffAction. Requests are found, and shown, as the desk's pages find and show them
(``relatch.recovery.desk.queries``); a refusal of the desk (DeskRefusedError) is a 409 with
its message, from the handler of relatch.api.api."""

from dataclasses import asdict
from datetime import timedelta
from typing import TYPE_CHECKING

from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.errors import HttpError

from relatch.accounts.models import User
from relatch.api.auth import staff_token
from relatch.api.schemas import (
    AccountMatchOut,
    ApprovalsOut,
    AssignIn,
    CompleteIn,
    ErrorOut,
    MessageIn,
    OpenRequestOut,
    ProofRequestIn,
    QueueFilters,
    QueueRowOut,
    ReasonIn,
    RequestDetailOut,
    SearchAddressOut,
    SearchFactorsOut,
    StaffMessageOut,
    StaffProofOut,
    UserSearch,
)
from relatch.api.staff_detail import detail_of, proof_out
from relatch.index.queries import find_project_by_typed_name
from relatch.recovery.desk.queries import filed_request
from relatch.recovery.models import ProofKind, RecoveryRequest

if TYPE_CHECKING:
    from relatch.recovery.desk.lookup import AccountMatch

router = Router(tags=["recovery: staff"], auth=staff_token)
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut,
          422: ErrorOut}
NOT_FOUND = "There is no recovery request with this id."


def _staff(request: HttpRequest) -> User:
    user: User = request.auth  # type: ignore[attr-defined]
    return user


def _filed(public_id: str) -> RecoveryRequest:
    """The filed request, as the desk's pages find it (an unfiled one is not found)."""
    recovery = filed_request(public_id)
    if recovery is None:
        raise HttpError(404, NOT_FOUND)
    return recovery


def _reasoned(request: HttpRequest, public_id: str, action: str,
              payload: ReasonIn) -> RequestDetailOut:
    """Run the desk action ``action`` that takes a written reason; the request's detail."""
    from relatch.recovery.desk import services as desk

    recovery = _filed(public_id)
    getattr(desk, action)(recovery=recovery, staff=_staff(request), reason=payload.reason)
    return detail_of(recovery)


@router.get("/requests", response={200: list[QueueRowOut], **ERRORS})
def queue(request: HttpRequest, filters: Query[QueueFilters]) -> list[QueueRowOut]:
    """The queue, oldest first (open requests unless ``state`` says otherwise)."""
    from relatch.recovery.desk.queries import queue as desk_queue

    older = timedelta(days=filters.older_than_days) if filters.older_than_days else None
    rows = desk_queue(state=filters.state, older_than=older, owns_projects=filters.owns_projects,
                      assigned_to=_staff(request) if filters.assigned_to_me else None)
    return [QueueRowOut(**{**row.__dict__, "age_seconds": int(row.age.total_seconds())})
            for row in rows]


@router.get("/requests/{public_id}", response={200: RequestDetailOut, **ERRORS})
def detail(request: HttpRequest, public_id: str) -> RequestDetailOut:
    """Everything staff see of a request: proofs, messages, history, the policy's verdict,
    weak evidence and the account's facts."""
    return detail_of(_filed(public_id))


@router.post("/requests/{public_id}/assign", response={200: RequestDetailOut, **ERRORS})
def assign(request: HttpRequest, public_id: str, payload: AssignIn) -> RequestDetailOut:
    """Assign the request to a staff member (by username), or unassign with null."""
    from relatch.recovery.desk import services as desk

    recovery = _filed(public_id)
    assignee = None
    if payload.assignee is not None:
        assignee = User.objects.filter(username__iexact=payload.assignee.strip()).first()
        if assignee is None:
            raise HttpError(400, "There is no staff member with that username.")
    desk.assign(recovery=recovery, staff=_staff(request), assignee=assignee)
    return detail_of(recovery)


@router.post("/requests/{public_id}/messages", response={201: StaffMessageOut, **ERRORS})
def message(request: HttpRequest, public_id: str,
            payload: MessageIn) -> Status[StaffMessageOut]:
    """Write to the requester (shown on their status page and mailed to them)."""
    from relatch.recovery.desk import services as desk

    staff = _staff(request)
    sent = desk.message_requester(recovery=_filed(public_id), staff=staff, body=payload.body)
    return Status(201, StaffMessageOut(author=sent.author, body=sent.body,
                                       created_at=sent.created_at, staff=staff.username))


@router.post("/requests/{public_id}/proofs", response={201: StaffProofOut, **ERRORS})
def request_proof(request: HttpRequest, public_id: str,
                  payload: ProofRequestIn) -> Status[StaffProofOut]:
    """Ask the requester for a proof (``project`` names the project for ``repo_branch``)."""
    from relatch.recovery.desk import services as desk

    project = None
    if payload.project:
        project = find_project_by_typed_name(payload.project)
        if project is None:
            raise HttpError(400, "There is no project with that name.")
    proof = desk.request_proof(recovery=_filed(public_id), staff=_staff(request),
                               kind=ProofKind(payload.kind), project=project)
    return Status(201, proof_out(proof))


@router.post("/requests/{public_id}/approve", response={200: ApprovalsOut, **ERRORS})
def approve(request: HttpRequest, public_id: str) -> ApprovalsOut:
    """Approve (a second staff member's approval is a second call by another token)."""
    from relatch.recovery.desk import services as desk

    count = desk.approve(recovery=_filed(public_id), staff=_staff(request), request=request)
    return ApprovalsOut(detail="Your approval was recorded.", approvals=count)


@router.post("/requests/{public_id}/deny", response={200: RequestDetailOut, **ERRORS})
def deny(request: HttpRequest, public_id: str, payload: ReasonIn) -> RequestDetailOut:
    """Deny the request with a written reason."""
    return _reasoned(request, public_id, "deny", payload)


@router.post("/requests/{public_id}/override", response={200: RequestDetailOut, **ERRORS})
def override(request: HttpRequest, public_id: str, payload: ReasonIn) -> RequestDetailOut:
    """Go on without a proof: a written reason, then the enforced wait and two approvals."""
    return _reasoned(request, public_id, "override", payload)


@router.post("/requests/{public_id}/complete", response={200: RequestDetailOut, **ERRORS})
def complete(request: HttpRequest, public_id: str,
             payload: CompleteIn | None = None) -> RequestDetailOut:
    """Complete the recovery, if the policy allows it now, reversing the recent changes
    named in ``reverse`` (ids from the detail's ``changes``; others are refused)."""
    from relatch.recovery.desk import services as desk
    from relatch.recovery.takeover import recent_changes

    recovery = _filed(public_id)
    chosen = list(payload.reverse) if payload else []
    offered = {c.event_id for c in recent_changes(recovery) if c.undo}
    if not set(chosen) <= offered:
        raise HttpError(400, "Reverse only changes the request's detail offers (its "
                             "\"changes\" with an \"undo\").")
    desk.complete(recovery=recovery, staff=_staff(request), request=request, reverse=chosen)
    return detail_of(recovery)


@router.post("/requests/{public_id}/resume", response={200: RequestDetailOut, **ERRORS})
def resume(request: HttpRequest, public_id: str, payload: ReasonIn) -> RequestDetailOut:
    """It is the owner's request: lift the account's block and take the request off hold,
    back to where it was."""
    return _reasoned(request, public_id, "resume", payload)


@router.post("/requests/{public_id}/lift-block", response={200: RequestDetailOut, **ERRORS})
def lift_block(request: HttpRequest, public_id: str, payload: ReasonIn) -> RequestDetailOut:
    """Lift the "this wasn't me" block on the request's account (held requests stay held)."""
    return _reasoned(request, public_id, "lift_block", payload)


@router.post("/requests/{public_id}/unfreeze", response={200: RequestDetailOut, **ERRORS})
def unfreeze(request: HttpRequest, public_id: str, payload: ReasonIn) -> RequestDetailOut:
    """Unfreeze the request's account."""
    return _reasoned(request, public_id, "unfreeze", payload)


@router.get("/users", response={200: list[AccountMatchOut], **ERRORS})
def users(request: HttpRequest, search: Query[UserSearch]) -> list[AccountMatchOut]:
    """Find accounts as the desk's search page does: exact username, exact address, then
    usernames starting with ``q`` (3 or more characters); at most 25."""
    from relatch.recovery.desk.lookup import find_accounts

    return [_match_out(match) for match in find_accounts(search.q)]


def _match_out(match: "AccountMatch") -> AccountMatchOut:
    user = match.user
    found = match.matched_address
    return AccountMatchOut(
        username=user.username, name=user.name, date_joined=user.date_joined,
        is_active=user.is_active, is_frozen=user.is_frozen,
        matched_by=match.matched_by.name.lower(),
        matched_address=SearchAddressOut(**asdict(found)) if found else None,
        addresses=[SearchAddressOut(**asdict(a)) for a in match.addresses],
        factors=SearchFactorsOut(**asdict(match.factors)), owns=match.owns,
        maintains=match.maintains,
        open_requests=[OpenRequestOut(**asdict(r)) for r in match.open_requests],
    )
