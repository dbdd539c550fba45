"""Who may see the staff pages of the mail queue: staff with a second factor.

The same rule as the recovery desk's (``relatch.recovery.desk.views.staff_only``), kept here
because notify sits below the apps that know about factors: whether an account has a second
factor is mfa's to say, and mfa registers its answer when it starts (``relatch.mfa.apps``), as
the index registers project ownership with mfa.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

View = Callable[..., HttpResponse]
_QUEUE = "staffmail:queue"


class _SecondFactor:
    check: Callable[[Any], bool] | None = None


def answer_second_factor(check: Callable[[Any], bool]) -> None:
    """The factors' app registers how to tell whether an account has a second factor."""
    _SecondFactor.check = check


def has_second_factor(user: Any) -> bool:
    """Whether ``user`` signs in with a second factor (as the factors' app answers it)."""
    check = _SecondFactor.check
    # Without an answer every staff account would be refused, or, worse, every one let in:
    # an error at once, not a guess.
    if check is None:
        raise RuntimeError("The second-factor app has not registered its answer.")
    return check(user)


def _is_staff(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_authenticated and user.is_active and getattr(user, "is_staff", False))


def staff_only(view: View) -> View:
    """Staff with a second factor only; staff without one get a 403 saying what to do, and
    everyone else the 404 of a page that does not exist (the page is not even revealed)."""

    @login_not_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not _is_staff(request):
            raise Http404("No such page.")
        if not has_second_factor(request.user):
            # Set up a factor, then back to this page (its forms are sent again from it).
            next_url = request.get_full_path() if request.method == "GET" else reverse(_QUEUE)
            context = {"next": next_url}
            return render(request, "notify/staff/needs_second_factor.html", context, status=403)
        return view(request, *args, **kwargs)

    return wrapper
