"""Re-authentication pages: the password, then, for an account with a second factor, the
factor step (its URLs live in the ``signin`` namespace)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from relatch.accounts.current import signed_in_user
from relatch.accounts.emails.middleware import verified_email_not_required
from relatch.accounts.models import User
from relatch.accounts.passwords.checks import WRONG_PASSWORD, PasswordStep
from relatch.mfa.policy import has_second_factor
from relatch.signin.factor.views import step_views
from relatch.signin.forms import ReauthenticateForm
from relatch.signin.reauth import services
from relatch.signin.redirects import requested_next

# The factor step: the signed-in user's, also before an address is verified.
_step = step_views(services.REAUTHENTICATION, access=verified_email_not_required)
factor_step = _step.page
answer = _step.answer


@verified_email_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def reauthenticate(request: HttpRequest) -> HttpResponse:
    """Confirm it is you before a sensitive action (ASVS 7.5.1): the password; then, for an
    account with a second factor, one of its factors too (OWASP MFA6, NIST N13)."""
    user = signed_in_user(request)  # LoginRequiredMiddleware sent anonymous users away
    needs_factor = has_second_factor(user)
    form = ReauthenticateForm(request.POST if request.method == "POST" else None)
    status = 200
    if form.is_valid():
        password = form.cleaned_data["password"]
        step, go_to = _confirm_password(request, user, password, needs_factor=needs_factor)
        if step.user is not None:
            return redirect(go_to)
        form.add_error("password", step.error(WRONG_PASSWORD))
        status = 429 if step.throttle else 200
    context = {"form": form, "next": requested_next(request), "needs_factor": needs_factor}
    return render(request, "signin/reauthenticate.html", context, status=status)


def _confirm_password(
    request: HttpRequest, user: User, password: str, *, needs_factor: bool
) -> tuple[PasswordStep, str]:
    """Check the password; the second value is where to go when it was right: the factor
    step for an account with a second factor, otherwise the page asked for."""
    if needs_factor:
        step = services.confirm_password_then_factor(
            request=request, user=user, password=password, next_url=requested_next(request)
        )
        return step, reverse("signin:reauthenticate_factor")
    step = services.reauthenticate(request=request, user=user, password=password)
    return step, requested_next(request) or reverse("account:overview")
