"""Site-wide pages: home and the error pages."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from relatch.index.pages.queries import recently_updated_projects


@login_not_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "web/home.html", {"recent_projects": recently_updated_projects()})


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without a valid CSRF token: explain, change nothing."""
    return render(request, "web/csrf_failure.html", status=403)
