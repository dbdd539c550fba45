"""Site-wide pages every app shares: the error pages. (The home page lists projects: it is
the index's, in relatch.index.pages.views; web imports no app above it.)"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without a valid CSRF token: explain, change nothing."""
    return render(request, "web/csrf_failure.html", status=403)
