"""Re-authentication: sensitive actions ask for the password again (ASVS 7.5.1)."""

import time
from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

_SESSION_KEY = "relatch_reauth_at"


def mark_reauthenticated(request: HttpRequest) -> None:
    """Record that the user proved their password just now (sign-in or re-authentication)."""
    request.session[_SESSION_KEY] = int(time.time())


def is_recently_authenticated(request: HttpRequest) -> bool:
    at = request.session.get(_SESSION_KEY)
    return isinstance(at, int) and time.time() - at <= settings.REAUTH_MAX_AGE


def reauthenticate_url(next_url: str) -> str:
    return f"{reverse('signin:reauthenticate')}?{urlencode({'next': next_url})}"


def require_recent_auth_then[**P](
    return_to: str | None = None,
) -> Callable[[Callable[P, HttpResponse]], Callable[P, HttpResponse]]:
    """``require_recent_auth`` for a POST-only action: after the password is confirmed the user
    comes back to the page named ``return_to`` (a URL name) and sends the form again."""

    def decorator(view: Callable[P, HttpResponse]) -> Callable[P, HttpResponse]:
        @wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> HttpResponse:
            request = args[0]
            assert isinstance(request, HttpRequest)
            if is_recently_authenticated(request):
                return view(*args, **kwargs)
            return redirect(reauthenticate_url(_come_back_to(request, return_to)))

        return wrapper

    return decorator


def _come_back_to(request: HttpRequest, return_to: str | None) -> str:
    if return_to is not None:
        messages.info(request, "Confirm your password, then send the form again.")
        return reverse(return_to)
    return request.get_full_path() if request.method == "GET" else request.path


def require_recent_auth[**P](view: Callable[P, HttpResponse]) -> Callable[P, HttpResponse]:
    """Send the user to confirm their password first when the last proof is too old.

    A POST that arrives too late changes nothing: the user confirms, then sends it again from
    the page, so a stolen unattended session cannot change credentials.
    """
    decorate: Callable[[Callable[P, HttpResponse]], Callable[P, HttpResponse]]
    decorate = require_recent_auth_then(None)
    return decorate(view)
