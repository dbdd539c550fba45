"""Browser sessions of an account: started at sign-in, listed, ended."""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.auth import HASH_SESSION_KEY
from django.db import transaction
from django.http import HttpRequest

from relatch.accounts.models import KnownDevice, User, UserSession
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.web.client import client_ip, client_user_agent


def session_digest(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()


def auth_digest(auth_hash: str) -> str:
    """What UserSession.auth_digest holds for a session whose auth hash is ``auth_hash``."""
    return hashlib.sha256(auth_hash.encode()).hexdigest()


def live_auth_digest(user: User) -> str:
    """The auth digest of the sessions that ``user``'s current password leaves alive."""
    return auth_digest(user.get_session_auth_hash())


def _session_auth_digest(request: HttpRequest) -> str:
    return auth_digest(request.session.get(HASH_SESSION_KEY, ""))


def current_digest(request: HttpRequest) -> str | None:
    key = request.session.session_key
    return session_digest(key) if key else None


@contextmanager
def session_row_follows_key(*, request: HttpRequest, user: User) -> Iterator[None]:
    """Around code that gives the session a new key (``cycle_key``, ``update_session_auth_hash``):
    move the UserSession row to the new key, or the tracking middleware would take the session
    for one that was ended and sign the user out."""
    old = current_digest(request)
    yield
    new = current_digest(request)
    if old and new:
        # The auth hash changes with the password: the row says this session outlived it.
        UserSession.objects.filter(user=user, session_digest=old).update(
            session_digest=new, auth_digest=_session_auth_digest(request)
        )


def start_session(
    *, request: HttpRequest, user: User, device: KnownDevice, method: str
) -> UserSession:
    """Register the session that ``auth.login`` just started, so it can be listed and ended,
    as one of ``device``'s (this browser, just remembered); ``method``: how it signed in, as
    the devices page shows it (``methods.method_label``)."""
    if request.session.session_key is None:
        request.session.save()
    key = request.session.session_key
    assert key is not None  # saved just above
    return UserSession.objects.create(
        user=user,
        session_digest=session_digest(key),
        ip_address=client_ip(request),
        user_agent=client_user_agent(request),
        # The hash auth.login stored: when the password changed since it was checked (a
        # sign-in in the same moment as a change), the row is born dead and is never listed.
        auth_digest=_session_auth_digest(request),
        device_digest=device.device_digest,
        signin_method=method,
    )


def delete_other_sessions(*, user: User, keep_digest: str | None) -> int:
    """Delete every session row of ``user`` but one; the tracking middleware signs them out.

    The caller records the event (a password change, a reset, "end all others").
    """
    rows = UserSession.objects.filter(user=user)
    if keep_digest:
        rows = rows.exclude(session_digest=keep_digest)
    deleted, _ = rows.delete()
    return deleted


@transaction.atomic
def end_session(*, request: HttpRequest, user: User, session_id: int) -> bool:
    """End one of the user's other sessions; False if there is no such session."""
    row = UserSession.objects.filter(user=user, pk=session_id).first()
    if row is None or row.session_digest == current_digest(request):
        return False
    row.delete()
    record_event(
        user=user,
        kind=EventKind.SESSION_ENDED,
        request=request,
        details={"ip_address": row.ip_address, "user_agent": row.user_agent},
    )
    return True


@transaction.atomic
def end_other_sessions(*, request: HttpRequest, user: User) -> int:
    """End every session of the user but the current one; returns how many ended."""
    count = delete_other_sessions(user=user, keep_digest=current_digest(request))
    record_event(
        user=user, kind=EventKind.OTHER_SESSIONS_ENDED, request=request, details={"count": count}
    )
    return count


def end_current_session(*, request: HttpRequest, user: User) -> None:
    """Forget the current session's row (sign-out); the caller flushes the session itself."""
    if digest := current_digest(request):
        UserSession.objects.filter(user=user, session_digest=digest).delete()
