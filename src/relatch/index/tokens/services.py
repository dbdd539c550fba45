"""API tokens: create, revoke, check, record their use (issue 4 §2).

Only accounts with a second factor create tokens: a token uploads without one, so it must be
minted by someone who proved two factors. The plaintext exists once, in the return value of
``create_token``; the database keeps the SHA-256 of the secret. The upload endpoint calls
``authenticate_token``, ``token_allows_project`` and ``note_token_use``.
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from relatch.accounts.freeze import AccountFrozenError, refuse_if_frozen
from relatch.accounts.models import User
from relatch.accounts.notices import announce_to_account
from relatch.audit.models import EventKind, Factor
from relatch.audit.services import record_event
from relatch.index.models import APIToken, Project, Role
from relatch.index.tokens import primitive
from relatch.mfa.policy import require_second_factor
from relatch.web.client import client_ip, client_user_agent
from relatch.web.refusals import Refusal

# A cap on live tokens per account: enough for every CI system a maintainer runs, and a bound
# on what a stolen session could mint before the owner notices the mails. Tokens minted by a
# trusted publisher (15 minutes each) are not counted: a busy release pipeline must not lock
# its owner out of making a token.
MAX_LIVE_TOKENS = 50
MAX_NAME_LENGTH = 100
CREATE_ACTION = "Creating an API token"
HOW_TO_USE = 'Use "__token__" as the user name and the whole token, "relatch-…", as the password.'


class TokenError(Refusal):
    """A refused token action; ``message`` says why, plainly. Nothing changed."""

    status = 400


class FrozenAccountError(TokenError):
    """Refused because the account is frozen (relatch.accounts.freeze). Nothing changed."""

    status = 403


class TokenNotFoundError(TokenError):
    """No such token of this account (another account's id gets the same answer)."""

    status = 404


class TokenRefusedError(TokenError):
    """A token presented for upload was refused. ``reason`` names the case for the audit
    ("malformed", "invalid", "revoked", "expired", "inactive"); ``token`` is the row only when
    its secret was right (revoked, expired, inactive), so its owner can be told."""

    status = 403

    def __init__(self, message: str, *, reason: str, token: APIToken | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.token = token


WRONG_PURPOSE = "This token is not for this use: make a token for it."
MALFORMED = f"That is not a Relatch API token. {HOW_TO_USE}"
# Unknown identifier and wrong secret share one message: the answer does not say which
# identifiers exist.
INVALID = "This API token is not valid. Check that you copied all of it, or create a new one."
REVOKED = "This API token was revoked. Create a new one on your account's API tokens page."
EXPIRED = "This API token has expired. Create a new one on your account's API tokens page."
INACTIVE = "The account this API token belongs to is disabled."


def in_utc(at: datetime) -> str:
    """A time for a mail's context (JSON-safe, unambiguous)."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def own_tokens(user: User) -> QuerySet[APIToken]:
    """The tokens the account made itself (page, API, staff command): not those a trusted
    publisher minted, which belong to the project's publishing page."""
    return APIToken.objects.filter(user=user, publisher__isnull=True)


def live_tokens(user: User) -> QuerySet[APIToken]:
    """The account's own tokens that still work: not revoked, not expired."""
    now = timezone.now()
    return own_tokens(user).filter(revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def default_expiry(now: datetime | None = None) -> datetime:
    """When a token expires if its maker picks no date: TOKEN_DEFAULT_DAYS from now."""
    return (now or timezone.now()) + timedelta(days=settings.TOKEN_DEFAULT_DAYS)


def latest_expiry(now: datetime | None = None) -> datetime:
    """The furthest a token's expiry may be: TOKEN_MAX_DAYS from now."""
    return (now or timezone.now()) + timedelta(days=settings.TOKEN_MAX_DAYS)


def expiry_too_far(latest: datetime) -> str:
    """The refusal of an expiry after ``latest``, naming the latest one allowed."""
    return (f"A token can work for at most {settings.TOKEN_MAX_DAYS} days: choose an expiry "
            f"on or before {in_utc(latest)}.")


def projects_for_scope(user: User) -> QuerySet[Project]:
    """The projects a token of ``user`` may be limited to: those where they have a role."""
    return Project.objects.filter(roles__user=user).distinct()


def describe_scope(token: APIToken) -> str:
    """The token's scope in words, for the list and the mails."""
    return f"Project {token.project.name}" if token.project else "All your projects"


def create_token(
    *,
    request: HttpRequest | None,
    user: User,
    name: str,
    project: Project | None,
    expires_at: datetime | None = None,
    purpose: str = APIToken.Purpose.UPLOAD,
) -> tuple[APIToken, str]:
    """Mint a token; return its row and its text, the only time the text exists.

    ``expires_at`` None means the default, TOKEN_DEFAULT_DAYS from now: no new token lives
    forever, so one forgotten in an old CI secret stops working by itself.

    Raises SecondFactorRequiredError without a second factor, TokenError for an empty or
    overlong name, a project without a role, an expiry in the past or more than
    TOKEN_MAX_DAYS ahead (the pages and the API alike), too many live tokens, a
    staff token for someone who is not staff (or limited to a project), or a frozen account
    (FrozenAccountError, 403).
    Records API_TOKEN_CREATED and tells every verified address.
    """
    require_second_factor(user=user, action=CREATE_ACTION)
    name = name.strip()
    expires_at = expires_at if expires_at is not None else default_expiry()
    _check_request(user=user, name=name, project=project, expires_at=expires_at)
    if purpose == APIToken.Purpose.STAFF and not (user.is_staff and project is None):
        raise TokenError("Only staff can have a recovery-desk token, and it has no project.")
    token_text = primitive.new_token()
    row = _store_token(
        request=request,
        user=user,
        name=name,
        project=project,
        expires_at=expires_at,
        token_text=token_text,
        purpose=purpose,
    )
    return row, token_text.text


def _check_request(
    *, user: User, name: str, project: Project | None, expires_at: datetime
) -> None:
    if not name:
        raise TokenError("Give the token a name, e.g. where it will be used.")
    if len(name) > MAX_NAME_LENGTH:
        raise TokenError(f"A token name has at most {MAX_NAME_LENGTH} characters.")
    # A forged project id: a token may only reach projects the user already works on.
    if project is not None and not Role.objects.filter(project=project, user=user).exists():
        raise TokenError("You have no role on that project, so a token cannot be limited to it.")
    now = timezone.now()
    if expires_at <= now:
        raise TokenError("The expiry date must be in the future.")
    # A long-lived token is the one that leaks from CI and is used years later.
    if expires_at > latest_expiry(now):
        raise TokenError(expiry_too_far(latest_expiry(now)))


@transaction.atomic
def _store_token(
    *,
    request: HttpRequest | None,
    user: User,
    name: str,
    project: Project | None,
    expires_at: datetime,
    token_text: primitive.TokenText,
    purpose: str,
) -> APIToken:
    # Lock the account row so two racing requests cannot both pass the cap.
    User.objects.select_for_update().filter(pk=user.pk).first()
    try:
        # A hijacker holding a session of a frozen account must not mint a token that would
        # outlive the sessions staff end (DESIGN §5).
        refuse_if_frozen(user=user, action=CREATE_ACTION)
    except AccountFrozenError as frozen:
        raise FrozenAccountError(frozen.message) from frozen
    if live_tokens(user).count() >= MAX_LIVE_TOKENS:
        raise TokenError(
            f"You already have {MAX_LIVE_TOKENS} working tokens. Revoke one you no longer use."
        )
    row = APIToken.objects.create(
        user=user,
        name=name,
        identifier=token_text.identifier,
        secret_digest=primitive.digest_secret(token_text.secret),
        project=project,
        expires_at=expires_at,
        purpose=purpose,
    )
    record_event(
        user=user, kind=EventKind.API_TOKEN_CREATED, request=request, details=event_details(row)
    )
    announce_to_account(user=user, template="token_created", context=mail_context(request, row))
    return row


def event_details(token: APIToken) -> dict[str, object]:
    """What a token's SecurityEvent records of it (never its secret)."""
    return {
        "token_id": token.pk,
        "name": token.name,
        "identifier": token.identifier,
        "project": token.project.normalized_name if token.project else None,
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
    }


def mail_context(request: HttpRequest | None, token: APIToken) -> dict[str, object]:
    """What a token's mails say of it (JSON-safe, never its secret)."""
    return {
        "token_name": token.name,
        "scope": describe_scope(token),
        "expires_at": in_utc(token.expires_at) if token.expires_at else "",
        "when": in_utc(timezone.now()),
        "ip_address": (client_ip(request) if request is not None else None) or "unknown",
    }


@transaction.atomic
def revoke_token(*, request: HttpRequest | None, user: User, token_id: int) -> APIToken:
    """Revoke one of ``user``'s own tokens; it stops working at once.

    Raises TokenNotFoundError for a missing id, another account's token or a token a trusted
    publisher minted (the project's publishing page manages those), TokenError when it was
    already revoked (a double submit changes nothing). Records API_TOKEN_REVOKED and tells
    every verified address.
    """
    token = own_tokens(user).select_related("project").filter(pk=token_id).first()
    if token is None:
        raise TokenNotFoundError("There is no such token on your account.")
    now = timezone.now()
    # Conditional: of two racing submits, only one revokes (and records the event).
    if not APIToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoked_because=APIToken.RevokedBecause.OWNER
    ):
        raise TokenError(f"The token “{token.name}” was already revoked. Nothing was changed.")
    token.revoked_at = now
    token.revoked_because = APIToken.RevokedBecause.OWNER
    record_event(
        user=user, kind=EventKind.API_TOKEN_REVOKED, request=request, details=event_details(token)
    )
    announce_to_account(user=user, template="token_revoked", context=mail_context(request, token))
    return token


def token_spelled_by(raw: str) -> APIToken | None:
    """The row of the token ``raw`` spells, whatever its state, or None when the identifier is
    unknown or the secret wrong; MalformedTokenError when ``raw`` is no token at all.

    Constant cost: one lookup by identifier and one SHA-256 compared with
    ``hmac.compare_digest``; an unknown identifier is compared against a dummy digest, so the
    time tells nobody which identifiers exist."""
    parsed = primitive.parse_token(raw)
    token = (
        APIToken.objects.select_related("user", "project")
        .filter(identifier=parsed.identifier)
        .first()
    )
    if not primitive.secret_matches(parsed.secret, token.secret_digest if token else None):
        return None
    return token


def authenticate_token(*, raw: str, purpose: str = APIToken.Purpose.UPLOAD) -> APIToken:
    """The token that ``raw`` spells, if it may be used now for ``purpose``; else raise
    TokenRefusedError. A staff token never uploads, and an upload token never reaches the desk.

    Constant cost: one lookup by identifier and one SHA-256 compared with
    ``hmac.compare_digest``; an unknown identifier is compared against a dummy digest. Revoked,
    expired and disabled-account answers are given only to someone who knows the secret.
    """
    try:
        token = token_spelled_by(raw)
    except primitive.MalformedTokenError:
        raise TokenRefusedError(MALFORMED, reason="malformed") from None
    if token is None:
        raise TokenRefusedError(INVALID, reason="invalid")
    refuse_unusable_token(token)
    if token.purpose != purpose:
        raise TokenRefusedError(WRONG_PURPOSE, reason="purpose", token=token)
    return token


def refuse_unusable_token(token: APIToken) -> None:
    """Raise TokenRefusedError if ``token`` (with its user) is revoked, expired or its
    account disabled: at authentication, and again when an upload commits."""
    if token.revoked_at is not None:
        raise TokenRefusedError(REVOKED, reason="revoked", token=token)
    if token.expires_at is not None and token.expires_at <= timezone.now():
        raise TokenRefusedError(EXPIRED, reason="expired", token=token)
    if not token.user.is_active:
        raise TokenRefusedError(INACTIVE, reason="inactive", token=token)


def token_allows_project(token: APIToken, normalized_name: str) -> bool:
    """Whether ``token``'s scope reaches the project ``normalized_name`` (PEP 503 form).

    Scope only: an all-projects token still needs the user's role on an existing project,
    which the upload endpoint checks.
    """
    if token.project_id is None:
        return True
    return token.project is not None and token.project.normalized_name == normalized_name


@transaction.atomic
def note_token_use(*, request: HttpRequest | None, token: APIToken) -> None:
    """Record that ``token`` was used: its last-used time, address and user agent (shown on
    the tokens page, so a leaked token used from elsewhere stands out) and an API_TOKEN_USED
    event."""
    now = timezone.now()
    ip = client_ip(request) if request is not None else None
    agent = client_user_agent(request) if request is not None else ""
    APIToken.objects.filter(pk=token.pk).update(
        last_used_at=now, last_used_ip=ip, last_used_user_agent=agent
    )
    token.last_used_at, token.last_used_ip, token.last_used_user_agent = now, ip, agent
    record_event(
        user=token.user,
        kind=EventKind.API_TOKEN_USED,
        request=request,
        factor=Factor.API_TOKEN,
        details=event_details(token),
    )


@transaction.atomic
def note_token_refusal(*, request: HttpRequest | None, refusal: TokenRefusedError) -> None:
    """Record API_TOKEN_REFUSED on the owner's account when the refused token is known (its
    secret was right but it is revoked, expired or its account disabled): the owner learns a
    leaked old token is still being tried. Unknown tokens have no account to record it on."""
    if refusal.token is None:
        return
    details = {**event_details(refusal.token), "reason": refusal.reason}
    record_event(
        user=refusal.token.user,
        kind=EventKind.API_TOKEN_REFUSED,
        request=request,
        factor=Factor.API_TOKEN,
        details=details,
    )
