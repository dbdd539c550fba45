"""Writing security events and staff actions: the only writers of those two tables. Services
call these inside their own transaction."""

from typing import Any

# Any user model's base, not relatch.accounts' User: audit sits below accounts (the apps
# import one way, tests/test_import_order.py), so rows are written by the user's id.
from django.contrib.auth.base_user import AbstractBaseUser as User
from django.http import HttpRequest

from relatch.audit.models import EventKind, Factor, SecurityEvent, StaffAction
from relatch.web.client import client_ip, client_user_agent
from relatch.web.health.metrics import count_security_event


def record_event(
    *,
    user: User,
    kind: EventKind,
    request: HttpRequest | None = None,
    factor: Factor | str = "",
    details: dict[str, Any] | None = None,
) -> SecurityEvent:
    """Append a security event for ``user``; IP and user agent come from ``request`` if given."""
    count_security_event(str(kind))  # /metrics, once the event's transaction commits
    return SecurityEvent.objects.create(
        user_id=user.pk,
        kind=kind,
        factor=factor,
        ip_address=client_ip(request) if request is not None else None,
        user_agent=client_user_agent(request) if request is not None else "",
        details=details or {},
    )


def record_staff_action(
    *,
    staff: User,
    subject: User | None,
    action: str,
    reason: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> StaffAction:
    """Append what ``staff`` did to ``subject``'s account (None: to no account), with the
    state ``before`` and ``after`` (e.g. ``action="recovery:complete"``)."""
    return StaffAction.objects.create(
        staff_id=staff.pk,
        subject_id=subject.pk if subject is not None else None,
        action=action,
        reason=reason,
        before=before or {},
        after=after or {},
    )
