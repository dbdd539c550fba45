"""Where a sign-in or re-authentication goes afterwards."""

from urllib.parse import urlencode

from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

MAX_NEXT_LENGTH = 2000


def requested_next(request: HttpRequest) -> str:
    """The ``next`` asked for, when it stays on this site (no open redirect); else ""."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if len(candidate) > MAX_NEXT_LENGTH:
        return ""
    safe = url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return candidate if safe else ""


def login_url(next_url: str) -> str:
    """The sign-in page, coming back to ``next_url`` afterwards (when there is one)."""
    login = reverse("signin:login")
    return f"{login}?{urlencode({'next': next_url})}" if next_url else login
