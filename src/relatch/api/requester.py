"""The requester's side of the JSON API: start a request, confirm the contact address, then
follow it with the status token (``Authorization: Bearer <public_id>.<token>``).

Same rules as the pages: no answer says whether the username exists (ASVS 6.3.8), and a
request refused quietly because the account is blocked looks like any submitted one. The
status is the status page's read model (relatch.recovery.requester.queries); a refusal of the
services is answered by the handler of relatch.api.api, with its message and status.
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
    StartedOut,
)
from relatch.api.status_schemas import StatusOut
from relatch.recovery.models import RecoveryRequest
from relatch.recovery.requester import services
from relatch.recovery.requester.queries import requester_status

router = Router(tags=["recovery: requester"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut,
          429: ErrorOut}
STARTED = ("If the details are complete, a 6-digit code was sent to the contact address. "
           "Send it to /api/v1/recovery/requests/{public_id}/confirm to file the request.")
FILED = ("The request is filed. Its status link was mailed to the contact address; the part "
         "after /status/ is your status token.")
RESENT = "If the request still waits for its code, a new one was sent."
NO_SUCH = "No request is waiting for a code under this id."


@router.post("/requests", response={202: StartedOut, **ERRORS}, auth=None)
def start(request: HttpRequest, payload: NewRequestIn) -> Status[StartedOut]:
    """Start a recovery request; a code goes to the contact address (the same answer whether
    or not the username exists)."""
    recovery = services.start_request(
        request=request, username=payload.username.strip(),
        contact_email=payload.contact_email, still_has=list(payload.still_has),
        description=payload.description.strip(), agreed=payload.agreed,
        acknowledged=payload.acknowledged,
    )
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
        raise HttpError(400, services.why_code_refused(recovery))
    return DetailOut(detail=FILED)


@router.post("/requests/{public_id}/new-code", response={202: DetailOut, **ERRORS}, auth=None)
def new_code(request: HttpRequest, public_id: str) -> Status[DetailOut]:
    """Replace the contact code with a new one (rate-limited)."""
    services.send_new_code(request=request, recovery=_unfiled(public_id))
    return Status(202, DetailOut(detail=RESENT))


@router.get("/status", response={200: StatusOut, **ERRORS}, auth=status_token)
def status(request: HttpRequest) -> StatusOut:
    """The request's state, deadlines, the proofs asked for and the messages with staff."""
    return status_of(request.auth)  # type: ignore[attr-defined]


def status_of(recovery: RecoveryRequest) -> StatusOut:
    """What the status page shows, as JSON."""
    return StatusOut.model_validate(requester_status(recovery))


@router.post("/status/messages", response={201: MessageOut, **ERRORS}, auth=status_token)
def send_message(request: HttpRequest, payload: MessageIn) -> Status[MessageOut]:
    """Write to the staff working on the request."""
    recovery: RecoveryRequest = request.auth  # type: ignore[attr-defined]
    message = services.post_message(recovery=recovery, body=payload.body)
    return Status(201, MessageOut(author=message.author, body=message.body,
                                  created_at=message.created_at))


@router.post("/status/cancel", response={200: StatusOut, **ERRORS}, auth=status_token)
def cancel(request: HttpRequest) -> StatusOut:
    """Withdraw the request."""
    recovery: RecoveryRequest = request.auth  # type: ignore[attr-defined]
    services.cancel_by_requester(recovery=recovery)
    recovery.refresh_from_db()
    return status_of(recovery)


@router.post("/status/reopen", response={200: StatusOut, **ERRORS}, auth=status_token)
def reopen(request: HttpRequest) -> StatusOut:
    """Reopen a request that was closed for lack of response."""
    recovery: RecoveryRequest = request.auth  # type: ignore[attr-defined]
    services.reopen(recovery=recovery)
    recovery.refresh_from_db()
    return status_of(recovery)
