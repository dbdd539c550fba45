"""The publishing pages: a project's trusted publishers, and the account's pending ones.

/manage/project/<name>/publishing/ is for the project's owners: a maintainer is told only
owners manage publishers, anyone else gets the same 404 as for a project that does not exist
(people without a role must not learn the page exists). Every page needs a second factor and a
fresh password: the form it shows adds a way to publish that needs neither, so a stolen
session alone must not be enough (and the password is asked before the form is filled in, not
after it is sent). /manage/publishing/ lists the account's pending publishers.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from relatch.accounts.current import signed_in_user
from relatch.accounts.reauth import require_recent_auth
from relatch.index.manage.services import ManageError
from relatch.index.manage.views import _membership, _second_factor_required
from relatch.index.models import Project, Role
from relatch.index.trusted import queries, services
from relatch.index.trusted.describe import describe_publisher
from relatch.index.trusted.forms import PendingPublisherForm, PublisherForm

View = Callable[..., HttpResponse]


def _owners_only(request: HttpRequest, project: Project) -> HttpResponse:
    return render(request, "index/trusted/owners_only.html", {"project": project}, status=403)


def _publishing_page(
    request: HttpRequest, project: Project, *, form: PublisherForm | None = None,
    error: str = "", status: int = 200,
) -> HttpResponse:
    rows = queries.publishers_of(project=project)
    return render(request, "index/trusted/publishing.html", {
        "project": project,
        "rows": rows,
        "form": form or PublisherForm(),
        "error": error,
        "trusted_publishing_off": not settings.OIDC_ISSUERS,
        "at_cap": len(rows) >= services.MAX_PUBLISHERS_PER_PROJECT,
        "max_publishers": services.MAX_PUBLISHERS_PER_PROJECT,
    }, status=status)


def _typed(form: PublisherForm) -> dict[str, str]:
    fields = form.cleaned_data["fields"]
    return {"issuer": fields.issuer, "repository": fields.repository,
            "workflow": fields.workflow, "environment": fields.environment,
            "repository_id": fields.repository_id, "owner_id": fields.owner_id}


@require_http_methods(["GET", "POST"])
@_second_factor_required
@require_recent_auth
def publishing(request: HttpRequest, name: str) -> HttpResponse:
    """GET: the project's publishers and the form; POST: an owner adds a publisher."""
    found, role = _membership(request, name)
    if request.method == "GET" and name != found.normalized_name:
        return redirect("manage:publishing", name=found.normalized_name)
    if role.kind != Role.Kind.OWNER:
        return _owners_only(request, found)
    if request.method != "POST":
        return _publishing_page(request, found)
    form = PublisherForm(request.POST)
    if not form.is_valid():
        return _publishing_page(request, found, form=form, status=400)
    try:
        publisher = services.add_publisher(
            request=request, user=signed_in_user(request), project=found, **_typed(form)
        )
    except ManageError as refusal:
        return _publishing_page(request, found, form=form, error=refusal.message,
                                status=refusal.status)
    messages.success(request, f"Added the trusted publisher {describe_publisher(publisher)}. "
                              "Every owner of the project was told by mail.")
    return redirect("manage:publishing", name=found.normalized_name)


def _post_from_page(page: str) -> Callable[[View], View]:
    """GET never changes state: a removal's URL opened by GET (e.g. after confirming the
    password) goes back to its page, where the button is pressed again."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method != "POST":
                name = kwargs.get("name")
                return redirect(page, name=name) if name else redirect(page)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


@_post_from_page("manage:publishing")
@_second_factor_required
@require_recent_auth
def remove_publisher(request: HttpRequest, name: str, publisher_id: int) -> HttpResponse:
    """An owner removes a publisher; its live upload tokens stop working at once."""
    found, role = _membership(request, name)
    if role.kind != Role.Kind.OWNER:
        return _owners_only(request, found)
    try:
        publisher = services.remove_publisher(
            request=request, user=signed_in_user(request), project=found,
            publisher_id=publisher_id,
        )
    except ManageError as refusal:
        return _publishing_page(request, found, error=refusal.message, status=refusal.status)
    messages.success(request, f"Removed the trusted publisher "
                              f"{describe_publisher(publisher)}.")
    return redirect("manage:publishing", name=found.normalized_name)


def _pending_page(
    request: HttpRequest, *, form: PendingPublisherForm | None = None, error: str = "",
    status: int = 200,
) -> HttpResponse:
    rows = queries.pending_of(user=signed_in_user(request))
    return render(request, "index/trusted/pending.html", {
        "rows": rows,
        "form": form or PendingPublisherForm(),
        "error": error,
        "trusted_publishing_off": not settings.OIDC_ISSUERS,
        "at_cap": len(rows) >= services.MAX_PENDING_PER_ACCOUNT,
        "max_pending": services.MAX_PENDING_PER_ACCOUNT,
    }, status=status)


@require_http_methods(["GET", "POST"])
@_second_factor_required
@require_recent_auth
def pending_publishing(request: HttpRequest) -> HttpResponse:
    """GET: the account's pending publishers and the form; POST: add one."""
    if request.method != "POST":
        return _pending_page(request)
    form = PendingPublisherForm(request.POST)
    if not form.is_valid():
        return _pending_page(request, form=form, status=400)
    try:
        publisher = services.add_pending_publisher(
            request=request, user=signed_in_user(request),
            project_name=form.cleaned_data["project_name"], **_typed(form),
        )
    except ManageError as refusal:
        return _pending_page(request, form=form, error=refusal.message, status=refusal.status)
    messages.success(request, f"Added a pending publisher for {publisher.pending_name}: its "
                              "first upload creates the project, owned by you.")
    return redirect("manage:pending_publishing")


@_post_from_page("manage:pending_publishing")
@_second_factor_required
@require_recent_auth
def remove_pending_publisher(request: HttpRequest, publisher_id: int) -> HttpResponse:
    try:
        publisher = services.remove_pending_publisher(
            request=request, user=signed_in_user(request), publisher_id=publisher_id,
        )
    except ManageError as refusal:
        return _pending_page(request, error=refusal.message, status=refusal.status)
    messages.success(request, f"Removed the pending publisher for {publisher.pending_name}.")
    return redirect("manage:pending_publishing")
