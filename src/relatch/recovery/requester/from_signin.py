"""The page behind "I can't use any of these" on the second step of a sign-in: a recovery
request that already counts the password (``signin_requests``).

Only a live partial sign-in of this browser reaches it: that is what says the password was
right. It shows the account's addresses masked, never whole: whoever holds a stolen password
must not learn them (ASVS 6.3.8).
"""

from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from relatch.accounts.models import Email, User
from relatch.recovery.models import RecoveryRequest
from relatch.recovery.requester import services, signin_requests
from relatch.recovery.requester.forms import OTHER_ADDRESS, FromSigninForm
from relatch.recovery.requester.views import PENDING_KEY
from relatch.signin.newdevice.partial import PartialSignin, current_partial_signin

_T = "recovery/requester"


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def from_signin(request: HttpRequest) -> HttpResponse:
    """Explain what happens, ask where to write and what happened; make the request."""
    partial = current_partial_signin(request)
    if partial is None:
        return render(request, f"{_T}/from_signin_refused.html", status=403)
    masked = signin_requests.masked_choices(partial.user)
    form = FromSigninForm(request.POST if request.method == "POST" else None, masked=masked)
    if request.method != "POST":
        return _page(request, partial, form)
    if not form.is_valid():
        return _page(request, partial, form, status=400)
    try:
        recovery = _start(request, partial, form.cleaned_data)
    except services.RequesterError as refusal:
        form.add_error(None, refusal.message)
        return _page(request, partial, form, status=refusal.status)
    request.session[PENDING_KEY] = recovery.public_id
    return redirect("requester:confirm")


def _page(request: HttpRequest, partial: PartialSignin, form: FromSigninForm,
          status: int = 200) -> HttpResponse:
    context = {"form": form, "username": partial.user.username,
               "expires_at": partial.expires_at}
    return render(request, f"{_T}/from_signin.html", context, status=status)


def _start(request: HttpRequest, partial: PartialSignin, data: dict[str, Any]
           ) -> RecoveryRequest:
    chosen = str(data["contact"])
    return signin_requests.start_from_signin(
        request=request, user=partial.user,
        # The sign-in's clock: when the password was right (or, after a factor passed
        # since, a few minutes later; the proof says which step checked it).
        password_checked_at=datetime.fromtimestamp(partial.started_at, tz=UTC),
        account_email=None if chosen == OTHER_ADDRESS else _email(partial.user, chosen),
        other_address=str(data.get("other_address") or ""),
        still_has=list(data.get("still_has") or []),
        description=str(data["description"]), agreed=bool(data["agreed"]),
        acknowledged=bool(data["acknowledged"]),
    )


def _email(user: User, chosen: str) -> Email | None:
    return user.emails.filter(pk=int(chosen)).first() if chosen.isdigit() else None
