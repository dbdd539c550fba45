"""The page the yearly mail links to: the account's ways back in, and one button to confirm
them. Signed in (the middleware sends others to sign in first, and back here)."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from relatch.accounts.current import signed_in_user
from relatch.mfa.yearly_check.queries import recovery_info
from relatch.mfa.yearly_check.services import confirm_recovery_info


@require_GET
def check(request: HttpRequest) -> HttpResponse:
    """Addresses, recovery-code count and factors, each linked to the page that fixes it."""
    info = recovery_info(user=signed_in_user(request))
    return render(request, "mfa/yearly_check/check.html", {"info": info})


@require_POST
def confirm(request: HttpRequest) -> HttpResponse:
    """"This is all still right": not asked again for 12 months."""
    confirm_recovery_info(request=request, user=signed_in_user(request))
    messages.success(request, "Thank you: your recovery information is confirmed. "
                              "We will ask again in 12 months.")
    return redirect("recovery_info:check")
