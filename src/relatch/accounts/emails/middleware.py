"""An account whose addresses are all unverified can only verify or replace them.

Except when Relatch itself took the verification back (a domain check): that account was
verified and is its owner's, so it keeps its sessions, factors and pages, and is asked for a
new address on the address page and in the account's check-up.
"""

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect


def verified_email_not_required[F: Callable[..., Any]](view: F) -> F:
    """Mark a signed-in view as usable before any address is verified."""
    view.verified_email_required = False  # type: ignore[attr-defined]
    return view


def has_verified_email(user: Any) -> bool:
    return bool(user.emails.filter(verified=True).exists())


def trust_taken_back(user: Any) -> bool:
    """Whether the account has no verified address because Relatch took the verification
    back (relatch.accounts.emails.trust: a lapsed or resurrected domain). Such an account was
    its owner's all along: it keeps working, and its pages ask for a new address at once."""
    if has_verified_email(user):
        return False
    return bool(user.emails.filter(unverified_at__isnull=False).exists())


class RequireVerifiedEmailMiddleware:
    """Sends a signed-in user without a verified address to the address page.

    Public views (``login_not_required``) and views marked ``verified_email_not_required`` pass;
    everything else waits for a verified address, so a typo at sign-up is fixed by the user.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        if not request.user.is_authenticated:
            return None
        if not getattr(view, "login_required", True):
            return None
        if not getattr(view, "verified_email_required", True):
            return None
        if has_verified_email(request.user) or trust_taken_back(request.user):
            return None
        return redirect("emails:manage")
