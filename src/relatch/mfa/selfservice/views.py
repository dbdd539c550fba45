"""A self-service recovery's status page and the mailed cancel link (it is started from the
sign-in's check-your-mail page, by the sign-in app, which holds the half-done sign-in)."""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from relatch.audit.models import Factor
from relatch.mfa.notices import factor_label
from relatch.mfa.selfservice import services
from relatch.web.referrer import keep_url_out_of_referrers

_TEMPLATES = "mfa/selfservice"


@login_not_required
@never_cache
@require_GET
def status(request: HttpRequest) -> HttpResponse:
    """What this browser's recovery waits for, and until when."""
    rows = [
        {
            "recovery": recovery,
            "factor_label": factor_label(recovery.factor),
            "over": recovery.ends_at <= timezone.now(),
        }
        for recovery in services.browser_recoveries(request)
    ]
    wait_hours = int(settings.SELF_RECOVERY_WAIT.total_seconds() // 3600)
    context = {"rows": rows, "wait_hours": wait_hours}
    return render(request, f"{_TEMPLATES}/status.html", context)


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def cancel(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a "Cancel this recovery" button (mail scanners follow links); POST cancels."""
    try:
        if request.method == "POST":
            recovery = services.cancel_by_owner_link(request=request, token=token)
        else:
            recovery = services.recovery_for_cancel_link(token=token)
    except services.SelfRecoveryError as refusal:
        page = render(
            request,
            f"{_TEMPLATES}/cancel_refused.html",
            {"reason": refusal.message},
            status=refusal.status,
        )
        return keep_url_out_of_referrers(page)
    template = "cancelled.html" if request.method == "POST" else "cancel_confirm.html"
    context = {
        "recovery": recovery,
        "factor_label": factor_label(recovery.factor),
        "is_code": recovery.factor == Factor.RECOVERY_CODE,
    }
    return keep_url_out_of_referrers(render(request, f"{_TEMPLATES}/{template}", context))
