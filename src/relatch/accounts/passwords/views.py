"""Password change (signed in) and password reset (by emailed link) pages."""

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from relatch.accounts.models import User
from relatch.accounts.passwords import reset
from relatch.accounts.passwords.checks import confirm_password
from relatch.accounts.passwords.forms import NewPasswordForm, PasswordChangeForm, ResetRequestForm
from relatch.accounts.passwords.services import change_password
from relatch.accounts.reauth import require_recent_auth
from relatch.web.referrer import keep_url_out_of_referrers

_RESET_SESSION_KEY = "relatch_password_reset"
_INVALID_LINK_STATUS = 400


@never_cache
@require_recent_auth
@require_http_methods(["GET", "POST"])
def change(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    user = request.user
    form = PasswordChangeForm(request.POST if request.method == "POST" else None, user=user)
    status = 200
    if form.is_valid():
        step = confirm_password(
            request=request,
            user=user,
            password=form.cleaned_data["current_password"],
            during="password_change",
        )
        if step.user is not None:
            new_password = form.cleaned_data["new_password1"]
            change_password(request=request, user=user, new_password=new_password)
            messages.success(request, "Password changed; your other sessions were signed out.")
            return redirect("account:overview")
        form.add_error("current_password", step.error("Your current password is wrong."))
        status = 429 if step.throttle else 200
    return render(request, "accounts/passwords/change.html", {"form": form}, status=status)


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def reset_request(request: HttpRequest) -> HttpResponse:
    form = ResetRequestForm(request.POST if request.method == "POST" else None)
    if not form.is_valid():
        return render(request, "accounts/passwords/reset_request.html", {"form": form})
    reset.request_password_reset(request=request, identifier=form.cleaned_data["identifier"])
    # The same page and status whether or not a mail went out (FP1, ASVS 6.3.8).
    return render(request, "accounts/passwords/reset_sent.html")


@login_not_required
@never_cache
@require_GET
def reset_link(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """The link from the mail: keep the token in the session and take it out of the address
    bar, so it leaks neither through the Referer header nor the browser history (FP5)."""
    if reset.user_for_token(uidb64=uidb64, token=token) is None:
        return _invalid_link(request)
    request.session[_RESET_SESSION_KEY] = {"uidb64": uidb64, "token": token}
    response = redirect("passwords:reset_set_password", uidb64=uidb64)
    keep_url_out_of_referrers(response)
    return response


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def reset_set_password(request: HttpRequest, uidb64: str) -> HttpResponse:
    pending = request.session.get(_RESET_SESSION_KEY) or {}
    user = None
    if pending.get("uidb64") == uidb64:
        user = reset.user_for_token(uidb64=uidb64, token=str(pending.get("token", "")))
    if user is None:
        return _invalid_link(request)
    form = NewPasswordForm(request.POST if request.method == "POST" else None, user=user)
    if not form.is_valid():
        response = render(
            request, "accounts/passwords/set_password.html", {"form": form, "account": user}
        )
        keep_url_out_of_referrers(response)
        return response
    new_password = form.cleaned_data["new_password1"]
    reset.reset_password(request=request, user=user, new_password=new_password)
    _leave_reset_session(request, user)
    messages.success(request, "Your password was reset. Sign in with your new password.")
    return redirect("signin:login")


def _leave_reset_session(request: HttpRequest, user: User) -> None:
    # The reset ended every session of the account, this one too if it was signed in to it;
    # sign it out now (not on the next request) so the success message survives. Never in.
    if request.user.is_authenticated and request.user.pk == user.pk:
        logout(request)
    else:
        request.session.pop(_RESET_SESSION_KEY, None)


def _invalid_link(request: HttpRequest) -> HttpResponse:
    request.session.pop(_RESET_SESSION_KEY, None)
    response = render(
        request, "accounts/passwords/reset_invalid.html", status=_INVALID_LINK_STATUS
    )
    keep_url_out_of_referrers(response)
    return response
