"""Counting and timing every request Django answers (kept pages are counted where they are
sent: relatch.index.simple.response_cache)."""

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from relatch.web.health.metrics import UNMATCHED, observe_request

# Where the route's name is left for the response cache, which keeps it with a kept response
# so that its hits count under the same name (request.META is the WSGI environ).
ROUTE_KEY = "relatch.route"


class RequestMetricsMiddleware:
    """First in MIDDLEWARE, so the time covers the whole stack; it stays in the installers'
    lean stack (relatch.index.simple.lean), where it costs two clock reads, a dict lookup, an
    increment and an observation."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        route = match.view_name if match is not None else UNMATCHED
        request.META[ROUTE_KEY] = route
        observe_request(route, response.status_code, time.perf_counter() - started)
        return response
