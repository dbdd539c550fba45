"""The requester's side of the JSON API: start a request, confirm the contact address, then
follow it with the status token (``Authorization: Bearer <public_id>.<token>``).

Same rules as the pages: no answer says whether the username exists (ASVS 6.3.8), and a
request refused quietly because the account is blocked looks like any submitted one.
"""

from django.http import HttpRequest
from ninja import Router, Status
from ninja.errors import HttpError

from relatch.api.auth import status_token
from relatch.api.schemas import (
    CodeIn,
    DetailOut,
    ErrorOut,
    MessageIn,
    MessageOut,
    NewRequestIn,
    ProofOut,
    StartedOut,
    StatusOut,
)
from relatch.recovery.models import ProofKind, RecoveryProof, RecoveryRequest, State
from relatch.recovery.requester import services
from relatch.recovery.workflow import requester_label

router = Router(tags=["recovery: requester"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut,
          429: ErrorOut}
STARTED = ("If the details are complete, a 6-digit code was sent to the contact address. "
           "Send it to /api/v1/recovery/requests/{public_id}/confirm to file the request.")
FILED = ("The request is filed. Its status link was mailed to the contact address; the part "
         "after /status/ is your status token.")
RESENT = "If the request still waits for its code, a new one was sent."
NO_SUCH = "No request is waiting for a code under this id."


def _refused(refusal: services.RequesterError) -> HttpError:
    return HttpError(refusal.status, refusal.message)


@router.post("/requests", response={202: StartedOut, **ERRORS}, auth=None)
def start(request: HttpRequest, payload: NewRequestIn) -> Status[StartedOut]:
    """Start a recovery request; a code goes to the contact address (the same answer whether
    or not the username exists)."""
    try:
        recovery = services.start_request(
            request=request, username=payload.username.strip(),
            contact_email=payload.contact_email, still_has=list(payload.still_has),
            description=payload.description.strip(), agreed=payload.agreed,
            acknowledged=payload.acknowledged,
        )
    except services.RequesterError as refusal:
        raise _refused(refusal) from None
    return Status(202, StartedOut(public_id=recovery.public_id, detail=STARTED))


def _unfiled(public_id: str) -> RecoveryRequest:
    # A NUL cannot be in an id, and PostgreSQL refuses it in a query (a 500, not a 404).
    if len(public_id) > 24 or "\x00" in public_id:
        raise HttpError(404, NO_SUCH)
    recovery = RecoveryRequest.objects.filter(public_id=public_id).first()
    if recovery is None:
        raise HttpError(404, NO_SUCH)
    return recovery


@router.post("/requests/{public_id}/confirm", response={200: DetailOut, **ERRORS}, auth=None)
def confirm(request: HttpRequest, public_id: str, payload: CodeIn) -> DetailOut:
    """Enter the code mailed to the contact address; the right code files the request."""
    recovery = _unfiled(public_id)
    if recovery.contact_confirmed_at is None and services.confirm_contact(
        recovery=recovery, code=payload.code
    ) is False:
        raise HttpError(400, services.code_problem(recovery) or "That code is wrong.")
    return DetailOut(detail=FILED)


@router.post("/requests/{public_id}/new-code", response={202: DetailOut, **ERRORS}, auth=None)
def new_code(request: HttpRequest, public_id: str) -> Status[DetailOut]:
    """Replace the contact code with a new one (rate-limited)."""
    recovery = _unfiled(public_id)
    try:
        services.send_new_code(request=request, recovery=recovery)
    except services.RequesterError as refusal:
        raise _refused(refusal) from None
    return Status(202, DetailOut(detail=RESENT))


@router.get("/status", response={200: StatusOut, **ERRORS}, auth=status_token)
def status(request: HttpRequest) -> StatusOut:
    """The request's state, deadlines, the proofs asked for and the messages with staff."""
    return status_of(request.auth)  # type: ignore[attr-defined]


def status_of(recovery: RecoveryRequest) -> StatusOut:
    from relatch.recovery.requester.views import PROOF_INSTRUCTIONS

    quiet = services.refused_quietly(recovery)
    shown = State.SUBMITTED if quiet else State(recovery.state)
    pending = [] if quiet else recovery.proofs.filter(status=RecoveryProof.Status.PENDING)
    return StatusOut(
        public_id=recovery.public_id, state=shown.value, state_label=requester_label(shown),
        created_at=recovery.created_at,
        wait_ends_at=recovery.wait_ends_at if shown == State.IN_WAITING_PERIOD else None,
        waiting_for_you_since=None if quiet else recovery.awaiting_requester_since,
        pending_proofs=[
            ProofOut(id=p.pk, kind=p.kind, kind_label=str(ProofKind(p.kind).label),
                     status=p.status, expires_at=p.expires_at,
                     instructions=PROOF_INSTRUCTIONS.get(p.kind, ""))
            for p in pending
        ],
        messages=[MessageOut(author=m.author, body=m.body, created_at=m.created_at)
                  for m in recovery.messages.all()],
        may_cancel=quiet or shown not in (State.COMPLETED, State.DENIED, State.CANCELLED),
        may_reopen=shown == State.CLOSED_NO_RESPONSE,
    )


@router.post("/status/messages", response={201: MessageOut, **ERRORS}, auth=status_token)
def send_message(request: HttpRequest, payload: MessageIn) -> Status[MessageOut]:
    """Write to the staff working on the request."""
    try:
        recovery: RecoveryRequest = request.auth  # type: ignore[attr-defined]
        message = services.post_message(recovery=recovery, body=payload.body)
    except services.RequesterError as refusal:
        raise _refused(refusal) from None
    return Status(201, MessageOut(author=message.author, body=message.body,
                                  created_at=message.created_at))


@router.post("/status/cancel", response={200: StatusOut, **ERRORS}, auth=status_token)
def cancel(request: HttpRequest) -> StatusOut:
    """Withdraw the request."""
    recovery: RecoveryRequest = request.auth  # type: ignore[attr-defined]
    try:
        services.cancel_by_requester(recovery=recovery)
    except services.RequesterError as refusal:
        raise _refused(refusal) from None
    recovery.refresh_from_db()
    return status_of(recovery)


@router.post("/status/reopen", response={200: StatusOut, **ERRORS}, auth=status_token)
def reopen(request: HttpRequest) -> StatusOut:
    """Reopen a request that was closed for lack of response."""
    recovery: RecoveryRequest = request.auth  # type: ignore[attr-defined]
    try:
        services.reopen(recovery=recovery)
    except services.RequesterError as refusal:
        raise _refused(refusal) from None
    recovery.refresh_from_db()
    return status_of(recovery)
