"""Reads of an account's sessions and trusted devices for pages."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from relatch.accounts.models import KnownDevice, User, UserSession
from relatch.accounts.sessions.services import live_auth_digest
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


def live_sessions(user: User) -> QuerySet[UserSession]:
    """The sessions of ``user`` that can still be used: not those a password change ended (their
    auth hash is the old password's, so Django signs them out at their next request) though
    their row outlived the change. Rows from before auth digests were kept count as live."""
    return UserSession.objects.filter(user=user, auth_digest__in=["", live_auth_digest(user)])


def session_rows(*, user: User, current_digest: str | None) -> list[SessionRow]:
    """Every live session of ``user``, most recently active first; ``current_digest`` is
    marked."""
    sessions = live_sessions(user).order_by("-last_seen", "-created_at", "-id")
    return [_row(s, current_digest) for s in sessions]


def session_count(*, user: User) -> int:
    return live_sessions(user).count()


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
    rows = live_sessions(user)
    if current_digest:
        rows = rows.exclude(session_digest=current_digest)
    return rows.count()


@dataclass(frozen=True)
class DeviceRow:
    """One trusted device (a browser that completed a sign-in) as the sessions page shows it."""

    id: int
    browser: str
    system: str
    ip_address: str | None
    first_seen: datetime
    last_seen: datetime
    confirmed: bool
    is_current: bool


def _device_row(device: KnownDevice, current_digest: str | None) -> DeviceRow:
    client = describe_user_agent(device.user_agent)
    return DeviceRow(
        id=device.pk,
        browser=client.browser,
        system=client.system,
        ip_address=device.ip_address,
        first_seen=device.first_seen,
        last_seen=device.last_seen,
        confirmed=device.confirmed,
        is_current=current_digest is not None and device.device_digest == current_digest,
    )


def trusted_device_rows(*, user: User, current_digest: str | None) -> list[DeviceRow]:
    """Every known device of ``user``, most recently seen first; ``current_digest`` (from
    ``relatch.accounts.devices.current_device_digest``) is marked as this browser."""
    devices = KnownDevice.objects.filter(user=user).order_by("-last_seen", "-first_seen", "-id")
    return [_device_row(d, current_digest) for d in devices]


def other_device_count(*, user: User, current_digest: str | None) -> int:
    """How many devices "forget all other devices" would forget."""
    devices = KnownDevice.objects.filter(user=user)
    if current_digest:
        devices = devices.exclude(device_digest=current_digest)
    return devices.count()
