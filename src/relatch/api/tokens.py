"""API-token management in the JSON API, for the signed-in account (browser session, CSRF
checked). Listing also works with a staff token, so a desk client can see its own tokens.

The same services as the pages: a second factor is needed to mint, creating and revoking
need a recent password confirmation (ASVS 7.5.1), and every change is announced.
"""

from dataclasses import asdict
from datetime import datetime

from django.http import HttpRequest
from django.urls import reverse
from ninja import Path, Router, Status
from ninja.errors import HttpError

from relatch.accounts.models import User
from relatch.accounts.reauth import is_recently_authenticated
from relatch.api.auth import signed_in, staff_token
from relatch.api.schemas import ErrorOut, TokenCreatedOut, TokenIn, TokenOut
from relatch.index.models import Project
from relatch.index.queries import find_project_by_typed_name
from relatch.index.simple import access
from relatch.index.tokens import services as tokens
from relatch.index.tokens.queries import token_line, token_lines
from relatch.web.path_prefix import site_url

router = Router(tags=["API tokens"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut}
MAX_ID = 2**31 - 1


def _user(request: HttpRequest) -> User:
    user: User = request.auth  # type: ignore[attr-defined]
    return user


def _recent(request: HttpRequest) -> None:
    if not is_recently_authenticated(request):
        raise HttpError(403, "Confirm your password first: "
                        + site_url(reverse("signin:reauthenticate")))


@router.get("/tokens", response={200: list[TokenOut], **ERRORS}, auth=[signed_in, staff_token])
def list_tokens(request: HttpRequest) -> list[TokenOut]:
    """The caller's own tokens, newest first (revoked ones included, marked), with where
    each was last used from; tokens a trusted publisher minted are not listed."""
    return [TokenOut.model_validate(line) for line in token_lines(_user(request))]


@router.post("/tokens", response={201: TokenCreatedOut, **ERRORS}, auth=signed_in)
def create_token(request: HttpRequest, payload: TokenIn) -> Status[TokenCreatedOut]:
    """Mint an upload token, or a read token (``purpose``: "read"); the token text is in
    this answer and nowhere else, ever. Without ``expires_at`` it expires in
    TOKEN_DEFAULT_DAYS; an expiry after TOKEN_MAX_DAYS is refused, naming the latest one."""
    _recent(request)
    user = _user(request)
    project = _project(user, payload.project)
    # Refused (no second factor, an expiry past or too far ahead, ...): the handler of
    # relatch.api.api answers with the service's own message and status.
    row, text = tokens.create_token(request=request, user=user, name=payload.name,
                                    project=project, expires_at=_aware(payload.expires_at),
                                    purpose=payload.purpose)
    return Status(201, TokenCreatedOut.model_validate({**asdict(token_line(row)),
                                                       "token": text}))


def _project(user: User, name: str | None) -> Project | None:
    if not name:
        return None
    project = find_project_by_typed_name(name)
    # A private project the caller may not read answers as a missing one: "you have no role
    # on it" would confirm a private name to any signed-in account (access module docstring).
    if project is None or not access.may_read(access.Reader(user, None), project_id=project.pk,
                                              private=project.private):
        raise HttpError(400, "There is no project with that name.")
    return project


def _aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        raise HttpError(400, "Give the expiry with its time zone, e.g. 2030-01-01T00:00:00Z.")
    return moment


@router.post("/tokens/{token_id}/revoke", response={200: TokenOut, **ERRORS}, auth=signed_in)
def revoke_token(request: HttpRequest,
                 token_id: int = Path(..., ge=1, le=MAX_ID)) -> TokenOut:
    """Revoke one of your own tokens; it stops working at once. A token a trusted publisher
    minted is not found here (the project's publishing page manages it)."""
    _recent(request)
    row = tokens.revoke_token(request=request, user=_user(request), token_id=token_id)
    return TokenOut.model_validate(token_line(row))
