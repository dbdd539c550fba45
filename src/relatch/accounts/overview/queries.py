"""Reads for the account page and the security history."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from relatch.accounts.models import Email, User
from relatch.accounts.overview.upload_details import publish_detail
from relatch.accounts.sessions.useragents import describe_user_agent
from relatch.audit.models import EventKind, SecurityEvent

RECENT_EVENTS = 5


@dataclass(frozen=True)
class EventRow:
    """One security event as the history shows it."""

    label: str
    factor: str
    detail: str
    created_at: datetime
    ip_address: str | None
    browser: str
    system: str


def _detail(event: SecurityEvent) -> str:
    """A short, safe fact from the event's details (never a token or other secret)."""
    details = event.details if isinstance(event.details, dict) else {}
    if isinstance(address := details.get("address"), str):
        return address
    agent, count = details.get("user_agent"), details.get("count")
    if event.kind == EventKind.SESSION_ENDED and isinstance(agent, str):
        client = describe_user_agent(agent)
        return f"{client.browser} on {client.system}"
    if event.kind == EventKind.OTHER_SESSIONS_ENDED and isinstance(count, int):
        return f"{count} session{'' if count == 1 else 's'}"
    return publish_detail(event.kind, details)


def event_row(event: SecurityEvent) -> EventRow:
    """Display values of one event; browser and system are empty when no browser was involved
    (an operator's command, a background task)."""
    client = describe_user_agent(event.user_agent) if event.user_agent else None
    return EventRow(
        label=event.get_kind_display(),
        factor=event.get_factor_display() if event.factor else "",
        detail=_detail(event),
        created_at=event.created_at,
        ip_address=event.ip_address,
        browser=client.browser if client else "",
        system=client.system if client else "",
    )


def event_rows(events: Iterable[SecurityEvent]) -> list[EventRow]:
    return [event_row(e) for e in events]


def recent_event_rows(*, user: User, limit: int = RECENT_EVENTS) -> list[EventRow]:
    """The user's latest security events, newest first, for the account page."""
    latest = SecurityEvent.objects.filter(user=user).order_by("-created_at", "-id")[:limit]
    return event_rows(latest)


def addresses(*, user: User) -> list[Email]:
    """The user's addresses, primary first."""
    return list(user.emails.order_by("-primary", "created_at", "id"))
