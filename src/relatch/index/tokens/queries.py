"""What the API-token list shows: one read model for the page (tokens:list) and the JSON API
(GET /api/v1/account/tokens), so both list the same tokens with the same words."""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from relatch.accounts.models import User
from relatch.index.models import APIToken
from relatch.index.tokens.services import describe_scope


@dataclass(frozen=True)
class TokenLine:
    """One token of the account, as listed (never its secret)."""

    id: int
    name: str
    identifier: str
    purpose: str
    # In words: "Project <name>" or "All your projects".
    scope: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    # Not revoked, but past its expiry when read.
    expired: bool


def token_line(token: APIToken, *, now: datetime | None = None) -> TokenLine:
    now = now or timezone.now()
    return TokenLine(
        id=token.pk, name=token.name, identifier=token.identifier, purpose=token.purpose,
        scope=describe_scope(token), created_at=token.created_at,
        last_used_at=token.last_used_at, expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        expired=token.expires_at is not None and token.expires_at <= now,
    )


def token_lines(user: User) -> list[TokenLine]:
    """The account's tokens, newest first, revoked and expired ones included (marked)."""
    now = timezone.now()
    rows = (APIToken.objects.select_related("project").filter(user=user)
            .order_by("-created_at", "-id"))
    return [token_line(row, now=now) for row in rows]
