"""Ending and naming devices: the owner's way to make a browser a stranger again.

A known device skips the per-account limit on failed passwords and, after issue 3, the
new-device email check. A browser left behind (a shared computer, a sold laptop, a phone that
was stolen) should keep neither those privileges nor its sessions: ending its entry on the
devices page signs it out and forgets its row, so its next sign-in is treated as a new device
again. The cookie in that browser stays, but names no row any more.

Ending is the owner's own protective action, taken after re-authentication: it makes the
account stricter, never weaker, so it is recorded as SecurityEvents and not mailed.
"""

from dataclasses import dataclass

from django.db import transaction
from django.http import HttpRequest

from relatch.accounts.devices import current_device_digest
from relatch.accounts.models import KnownDevice, User, UserSession
from relatch.accounts.sessions.services import current_digest, delete_other_sessions
from relatch.audit.models import EventKind
from relatch.audit.services import record_event


@dataclass(frozen=True)
class Ended:
    """What ending did: sessions signed out, devices forgotten, and whether the browser that
    asked was among them (then the caller signs it out now)."""

    sessions: int
    devices: int
    here: bool = False


@transaction.atomic
def end_device(*, request: HttpRequest, user: User, device_id: int) -> Ended | None:
    """Sign out every session of one of ``user``'s devices and forget it (this browser
    included); None, and nothing changed, when ``user`` has no device with that id (another
    account's, or one already ended)."""
    # Locked so two submits of the same form write one set of events, not two.
    device = KnownDevice.objects.select_for_update().filter(user=user, pk=device_id).first()
    if device is None:
        return None
    sessions = UserSession.objects.filter(user=user, device_digest=device.device_digest)
    here = current_digest(request) in set(sessions.values_list("session_digest", flat=True))
    ended, _ = sessions.delete()
    device.delete()
    if ended:
        record_event(
            user=user,
            kind=EventKind.SESSION_ENDED,
            request=request,
            details={"count": ended, "ip_address": device.ip_address,
                     "user_agent": device.user_agent, "with_device": True},
        )
    record_event(
        user=user,
        kind=EventKind.DEVICE_FORGOTTEN,
        request=request,
        details={
            "count": 1,
            "user_agent": device.user_agent,
            "first_seen": device.first_seen.isoformat(),
            "this_browser": device.device_digest == current_device_digest(request),
            "sessions_ended": ended,
        },
    )
    return Ended(sessions=ended, devices=1, here=here)


@transaction.atomic
def end_other_devices(*, request: HttpRequest, user: User) -> Ended:
    """Sign out every session of ``user`` but this one and forget every device but this
    browser. Nothing to end records nothing (a double submit leaves one set of events)."""
    devices = KnownDevice.objects.select_for_update().filter(user=user)
    if digest := current_device_digest(request):
        devices = devices.exclude(device_digest=digest)
    # Locked first (delete() drops FOR UPDATE): a concurrent double submit then finds nothing.
    ids = list(devices.values_list("pk", flat=True))
    forgotten, _ = KnownDevice.objects.filter(pk__in=ids).delete()
    ended = delete_other_sessions(user=user, keep_digest=current_digest(request))
    if ended:
        record_event(
            user=user, kind=EventKind.OTHER_SESSIONS_ENDED, request=request,
            details={"count": ended},
        )
    if forgotten:
        record_event(
            user=user, kind=EventKind.DEVICE_FORGOTTEN, request=request,
            details={"count": forgotten, "all_others": True},
        )
    return Ended(sessions=ended, devices=forgotten)


@transaction.atomic
def rename_device(*, request: HttpRequest, user: User, device_id: int, name: str) -> bool:
    """Give one of ``user``'s devices the name ``name`` (checked by the form; "" gives back its
    browser's name); False, and nothing changed, when ``user`` has no such device.

    Recorded like a security key's new name: a name is what the owner goes by when ending a
    device, so a name changed by someone else (a session left open) shows in the history.
    """
    device = KnownDevice.objects.select_for_update().filter(user=user, pk=device_id).first()
    if device is None:
        return False
    if device.name != name:
        KnownDevice.objects.filter(pk=device.pk).update(name=name)
        record_event(user=user, kind=EventKind.DEVICE_RENAMED, request=request,
                     details={"from": device.name, "to": name,
                              "user_agent": device.user_agent})
    return True
