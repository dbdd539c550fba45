"""A URLconf for tests/web/test_outage.py: views that fail as a database outage and as a bug."""

from django.contrib.auth.decorators import login_not_required
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.urls import path

from relatch.urls import urlpatterns as site


@login_not_required
def database_gone(request: HttpRequest) -> HttpResponse:
    # What psycopg raises while PostgreSQL restarts (Django wraps it as OperationalError).
    raise OperationalError("terminating connection due to administrator command")


@login_not_required
def bug(request: HttpRequest) -> HttpResponse:
    raise ZeroDivisionError("a bug")


urlpatterns = [path("gone/", database_gone), path("bug/", bug), *site]
handler500 = "relatch.web.outage.server_error"
