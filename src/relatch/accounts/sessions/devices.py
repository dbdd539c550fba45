"""Forgetting trusted devices: the owner's way to make a browser a stranger again.

A known device skips the per-account limit on failed passwords and, after issue 3, the
new-device email check. A browser left behind (a shared computer, a sold laptop, a phone that
was stolen) should not keep those privileges: forgetting its row means its next sign-in is
treated as a new device again. The cookie in that browser stays, but names no row any more.

Forgetting is the owner's own protective action, taken after re-authentication: it makes the
account stricter, never weaker, so it is recorded as a SecurityEvent and not mailed.
"""

from django.db import transaction
from django.http import HttpRequest

from relatch.accounts.devices import current_device_digest
from relatch.accounts.models import KnownDevice, User
from relatch.audit.models import EventKind
from relatch.audit.services import record_event


@transaction.atomic
def forget_device(*, request: HttpRequest, user: User, device_id: int) -> bool:
    """Forget one of ``user``'s devices (this browser included); False, and nothing changed,
    when ``user`` has no device with that id (another account's, or already forgotten)."""
    # Locked so two submits of the same form write one event, not two.
    device = KnownDevice.objects.select_for_update().filter(user=user, pk=device_id).first()
    if device is None:
        return False
    is_current = device.device_digest == current_device_digest(request)
    device.delete()
    record_event(
        user=user,
        kind=EventKind.DEVICE_FORGOTTEN,
        request=request,
        details={
            "count": 1,
            "user_agent": device.user_agent,
            "first_seen": device.first_seen.isoformat(),
            "this_browser": is_current,
        },
    )
    return True


@transaction.atomic
def forget_other_devices(*, request: HttpRequest, user: User) -> int:
    """Forget every device of ``user`` except this browser; returns how many were forgotten.

    Nothing to forget records nothing (a double submit leaves one event).
    """
    devices = KnownDevice.objects.select_for_update().filter(user=user)
    if digest := current_device_digest(request):
        devices = devices.exclude(device_digest=digest)
    # Locked first (delete() drops FOR UPDATE): a concurrent double submit then finds nothing.
    ids = list(devices.values_list("pk", flat=True))
    count, _ = KnownDevice.objects.filter(pk__in=ids).delete()
    if count:
        record_event(
            user=user,
            kind=EventKind.DEVICE_FORGOTTEN,
            request=request,
            details={"count": count, "all_others": True},
        )
    return count
