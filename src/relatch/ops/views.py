"""/health/live, /health/ready and /metrics.

None of them uses the session or the user (``login_not_required``), takes a form (GET and
HEAD only, so CSRF never applies) or may be kept by a cache (``never_cache``). So they take the
installers' lean path (``installer_view``): a probe every second per balancer costs no
session or user lookup.
"""

import logging
import math
import time

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from relatch.index.simple.lean import installer_view
from relatch.ops import checks
from relatch.ops.access import may_read_metrics
from relatch.ops.collectors import exposition

logger = logging.getLogger(__name__)

# A balancer probes every few seconds: the same failure is logged once a minute per process.
LOG_EVERY = 60.0
_logged: dict[str, float] = {}


@installer_view
@login_not_required
@never_cache
@require_safe
def live(request: HttpRequest) -> HttpResponse:
    """200 whenever a web process answers: nothing is read, so a database or storage outage
    never makes an orchestrator restart processes that are fine."""
    return HttpResponse("ok\n", content_type="text/plain; charset=utf-8")


@installer_view
@login_not_required
@never_cache
@require_safe
def ready(request: HttpRequest) -> JsonResponse:
    """200 when the required checks pass, else 503 (relatch.ops.checks says which are).

    Everyone gets each check's state; the failures' wording (which may name hosts, paths or
    errors of the database and the store) only the readers of /metrics."""
    found = checks.run_checks(timezone.now())
    failed = [check for check in found if check.failed]
    detailed = may_read_metrics(request)
    body: dict[str, object] = {
        "status": "not ready" if failed else "ready",
        "checks": {check.name: _shown(check, detailed=detailed) for check in found},
    }
    if detailed:
        body["problems"] = [check.line() for check in found if check.state != "ok"]
    if failed:
        _log_not_ready("; ".join(check.line() for check in failed))
    return JsonResponse(body, status=503 if failed else 200)


def _log_not_ready(problems: str) -> None:
    now = time.monotonic()
    if now - _logged.get(problems, -math.inf) >= LOG_EVERY:
        _logged.clear()  # only the latest wording is remembered
        _logged[problems] = now
        logger.warning("Not ready: %s", problems)


def _shown(check: checks.Check, *, detailed: bool) -> dict[str, object]:
    shown: dict[str, object] = {"state": check.state, "required": check.required}
    if detailed:
        shown["detail"] = check.detail
    return shown


@installer_view
@login_not_required
@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus text format; to anyone else a 404, the same as for a page that does
    not exist (the endpoint is not advertised)."""
    if not may_read_metrics(request):
        raise Http404
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
