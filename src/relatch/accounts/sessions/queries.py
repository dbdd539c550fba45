"""Reads of an account's sessions and trusted devices: what is live, what is "this one"."""

from django.db.models import QuerySet

from relatch.accounts.models import KnownDevice, User, UserSession
from relatch.accounts.sessions.services import live_auth_digest


def live_sessions(user: User) -> QuerySet[UserSession]:
    """The sessions of ``user`` that can still be used: not those a password change ended (their
    auth hash is the old password's, so Django signs them out at their next request) though
    their row outlived the change. Rows from before auth digests were kept count as live."""
    return UserSession.objects.filter(user=user, auth_digest__in=["", live_auth_digest(user)])


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


def other_device_count(*, user: User, current_digest: str | None) -> int:
    """How many trusted devices "end all other devices" would forget."""
    devices = KnownDevice.objects.filter(user=user)
    if current_digest:
        devices = devices.exclude(device_digest=current_digest)
    return devices.count()
