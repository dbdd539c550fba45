"""Keeps sessions listable and endable."""

from collections.abc import Callable
from datetime import timedelta

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from relatch.accounts.models import UserSession
from relatch.accounts.sessions.services import session_digest
from relatch.web.client import client_ip

# Writing last_seen on every request would make each page a write; a minute is precise enough.
LAST_SEEN_PRECISION = timedelta(minutes=1)


class SessionTrackingMiddleware:
    """Signs out a session whose row was deleted (ended from another browser, password change,
    recovery) and keeps "last seen" fresh for the sessions page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.session.session_key
        if key and request.user.is_authenticated:
            row = UserSession.objects.filter(
                session_digest=session_digest(key), user=request.user
            ).first()
            if row is None:
                logout(request)
            else:
                self._touch(request, row)
        return self.get_response(request)

    def _touch(self, request: HttpRequest, row: UserSession) -> None:
        now = timezone.now()
        if now - row.last_seen >= LAST_SEEN_PRECISION:
            UserSession.objects.filter(pk=row.pk).update(
                last_seen=now, ip_address=client_ip(request)
            )
