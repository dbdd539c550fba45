"""URLs of the JSON API, mounted at /api/v1/ (namespace "api")."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, URLResolver, path
from django.views.decorators.csrf import csrf_exempt

from relatch.api.api import api

View = Callable[..., HttpResponse]


def _json_refusals(view: View) -> View:
    """ninja answers a wrong method with a plain-text 405; API clients get JSON everywhere."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if response.status_code != 405 or response.get("Content-Type", "").startswith(
            "application/json"
        ):
            return response
        allowed = response.get("Allow", "")
        refusal = JsonResponse({"detail": f"Method not allowed; use {allowed}."}, status=405)
        refusal["Allow"] = allowed
        return refusal

    return wrapper


def _public(entries: list[URLPattern | URLResolver]) -> None:
    """The API authenticates each call itself (status token, staff token or session), so
    the site's sign-in redirect must not turn its 401s into HTML redirects."""
    for entry in entries:
        if isinstance(entry, URLPattern):
            entry.callback = login_not_required(_json_refusals(entry.callback))
        else:
            _public(entry.url_patterns)


@login_not_required
@csrf_exempt  # it changes nothing; a POST to a wrong path gets the JSON 404 too
def not_found(request: HttpRequest, rest: str) -> JsonResponse:
    return JsonResponse({"detail": "Not found."}, status=404)


patterns, _ninja_app, _ninja_namespace = api.urls
_public(patterns)
app_name = "api"
urlpatterns = [*patterns, path("<path:rest>", not_found, name="not_found")]
