"""What the API-token list shows: one read model for the page (tokens:list) and the JSON API
(GET /api/v1/account/tokens), so both list the same tokens with the same words.

Tokens a trusted publisher minted are not listed: they live 15 minutes, there is one per
publishing job, and they belong to the project's publishing page.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from relatch.accounts.models import User
from relatch.accounts.sessions.useragents import UNKNOWN_BROWSER, describe_user_agent
from relatch.index.models import APIToken
from relatch.index.tokens.services import describe_scope, own_tokens

# "twine/6.1.0 requests/2.32.3 ... CPython/3.12.3 Linux/6.8.0", "uv/0.5.11 {...}": tools
# that upload and install name themselves first; browsers' parser knows none of them.
_PROGRAM = re.compile(r"([A-Za-z][A-Za-z0-9._-]{0,39})/([0-9][A-Za-z0-9.+-]{0,39})")
NO_USER_AGENT = "no user agent sent"


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
    # Where the last use came from: the address, and the program in words ("twine 6.1.0 on
    # Linux 6", "Firefox 140 on Linux"), with the raw user agent for the API.
    last_used_ip: str | None
    last_used_user_agent: str
    last_used_client: str
    # None for a token made before tokens expired by default: it works until revoked, or
    # until the unused-token rule disables it.
    expires_at: datetime | None
    revoked_at: datetime | None
    # Why it was revoked ("owner", "unused", "leaked", ...), "" when it was not, or not said.
    revoked_because: str
    # Not revoked, but past its expiry when read.
    expired: bool


def describe_client(user_agent: str) -> str:
    """The program a user agent names, in words: a browser as the devices page names it
    ("Firefox 140 on Linux"), else the tool's own name and version ("twine 6.1.0 on Linux 6",
    "uv 0.5.11"). Parsed names only: the raw string is never shown as it is on the page."""
    if not user_agent:
        return NO_USER_AGENT
    client = describe_user_agent(user_agent)
    if client.browser != UNKNOWN_BROWSER:
        return str(client)
    match = _PROGRAM.match(user_agent.strip())
    if match is None:
        return str(client)
    program = f"{match.group(1)} {match.group(2)}"
    return program if client.system.startswith("Unknown") else f"{program} on {client.system}"


def token_line(token: APIToken, *, now: datetime | None = None) -> TokenLine:
    """``token`` as the list shows it."""
    now = now or timezone.now()
    return TokenLine(
        id=token.pk, name=token.name, identifier=token.identifier, purpose=token.purpose,
        scope=describe_scope(token), created_at=token.created_at,
        last_used_at=token.last_used_at, last_used_ip=token.last_used_ip,
        last_used_user_agent=token.last_used_user_agent,
        last_used_client=describe_client(token.last_used_user_agent),
        expires_at=token.expires_at, revoked_at=token.revoked_at,
        revoked_because=token.revoked_because,
        expired=token.expires_at is not None and token.expires_at <= now,
    )


def token_lines(user: User) -> list[TokenLine]:
    """The account's own tokens, newest first, revoked and expired ones included (marked);
    not those a trusted publisher minted."""
    now = timezone.now()
    rows = own_tokens(user).select_related("project").order_by("-created_at", "-id")
    return [token_line(row, now=now) for row in rows]
