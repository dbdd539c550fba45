"""Site-wide pages every app shares: the error pages and the code of conduct. (The home page
lists projects: it is the index's, in relatch.index.pages.views; web imports no app above it.)"""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without a valid CSRF token: explain, change nothing."""
    return render(request, "web/csrf_failure.html", status=403)


@login_not_required
@require_safe
def conduct(request: HttpRequest) -> HttpResponse:
    """The code of conduct a recovery requester agrees to; open to everyone (people locked
    out of their account read it before filing)."""
    return render(request, "web/conduct.html")
