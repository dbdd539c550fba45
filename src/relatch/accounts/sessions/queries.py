"""Reads of an account's sessions for pages."""

from dataclasses import dataclass
from datetime import datetime

from relatch.accounts.models import User, UserSession
from relatch.accounts.sessions.useragents import describe_user_agent


@dataclass(frozen=True)
class SessionRow:
    """One signed-in browser as the sessions page shows it."""

    id: int
    browser: str
    system: str
    ip_address: str | None
    created_at: datetime
    last_seen: datetime
    is_current: bool


def _row(session: UserSession, current_digest: str | None) -> SessionRow:
    client = describe_user_agent(session.user_agent)
    return SessionRow(
        id=session.pk,
        browser=client.browser,
        system=client.system,
        ip_address=session.ip_address,
        created_at=session.created_at,
        last_seen=session.last_seen,
        is_current=session.session_digest == current_digest,
    )


def session_rows(*, user: User, current_digest: str | None) -> list[SessionRow]:
    """Every session of ``user``, most recently active first; ``current_digest`` is marked."""
    sessions = UserSession.objects.filter(user=user).order_by("-last_seen", "-created_at", "-id")
    return [_row(s, current_digest) for s in sessions]


def session_count(*, user: User) -> int:
    return UserSession.objects.filter(user=user).count()


def is_current_session(*, user: User, session_id: int, current_digest: str | None) -> bool:
    """Whether ``session_id`` is the session making the request (it is ended by signing out)."""
    return (
        current_digest is not None
        and UserSession.objects.filter(
            user=user, pk=session_id, session_digest=current_digest
        ).exists()
    )


def other_session_count(*, user: User, current_digest: str | None) -> int:
    """How many sessions "end all other sessions" would end."""
    rows = UserSession.objects.filter(user=user)
    if current_digest:
        rows = rows.exclude(session_digest=current_digest)
    return rows.count()
