"""Writing security events. Services call these inside their own transaction."""

from typing import Any

from django.http import HttpRequest

from relatch.accounts.models import User
from relatch.audit.models import EventKind, Factor, SecurityEvent
from relatch.web.client import client_ip, client_user_agent


def record_event(
    *,
    user: User,
    kind: EventKind,
    request: HttpRequest | None = None,
    factor: Factor | str = "",
    details: dict[str, Any] | None = None,
) -> SecurityEvent:
    """Append a security event for ``user``; IP and user agent come from ``request`` if given."""
    return SecurityEvent.objects.create(
        user=user,
        kind=kind,
        factor=factor,
        ip_address=client_ip(request) if request is not None else None,
        user_agent=client_user_agent(request) if request is not None else "",
        details=details or {},
    )
