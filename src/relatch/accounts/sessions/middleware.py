"""Keeps sessions listable and endable."""

from collections.abc import Callable
from datetime import timedelta

from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, logout
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from relatch.accounts.devices import current_device_digest
from relatch.accounts.models import UserSession
from relatch.accounts.sessions.services import auth_digest, session_digest
from relatch.web.client import client_ip

# Writing last_seen on every request would make each page a write; a minute is precise enough.
LAST_SEEN_PRECISION = timedelta(minutes=1)


class SessionTrackingMiddleware:
    """Signs out a session whose row was deleted (ended from another browser, password change,
    recovery) and keeps "last seen" fresh for the devices page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self._check(request)
        return self.get_response(request)

    def _check(self, request: HttpRequest) -> None:
        key = request.session.session_key
        claimed = key is not None and SESSION_KEY in request.session
        if key and request.user.is_authenticated:
            row = UserSession.objects.filter(
                session_digest=session_digest(key), user=request.user
            ).first()
            if row is None:
                logout(request)
            else:
                self._touch(request, row)
        elif claimed and key:
            # Django just signed out a session whose auth hash is no longer the account's (the
            # password changed under it): its row goes too, rather than stay listed.
            UserSession.objects.filter(session_digest=session_digest(key)).delete()

    def _touch(self, request: HttpRequest, row: UserSession) -> None:
        now = timezone.now()
        digest = auth_digest(request.session.get(HASH_SESSION_KEY, ""))
        # A row from before rows named their device learns it from the cookie once.
        device = row.device_digest or current_device_digest(request) or ""
        if (
            now - row.last_seen >= LAST_SEEN_PRECISION
            or row.auth_digest != digest
            or row.device_digest != device
        ):
            # The digest follows the session's hash when Django renews it (a rotated
            # SECRET_KEY), so a live session is never taken for an ended one.
            UserSession.objects.filter(pk=row.pk).update(
                last_seen=now, ip_address=client_ip(request), auth_digest=digest,
                device_digest=device,
            )
