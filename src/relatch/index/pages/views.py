"""Public pages: a project (its description, releases, files, links and maintainers) and a user
(their projects). Read-only, and shown by the installers' rules (relatch.index.simple.access):
a private project only to its people, and with RELATCH_READ_ACCESS=authenticated nothing to
an anonymous visitor, who is sent to sign in (a browser follows that; installers never come
here). A private project someone may not read is a 404, as a name that does not exist."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from relatch.index.models import Project
from relatch.index.names import normalize_project_name
from relatch.index.pages.queries import (
    project_page,
    public_user,
    recently_updated_projects,
    shown_description,
    user_roles,
)
from relatch.index.pages.rendering import rendered_description
from relatch.index.simple import access

PageView = Callable[..., HttpResponse]


def _open_to_all() -> bool:
    return bool(settings.READ_ACCESS == access.PUBLIC)


def _readers_only(view: PageView) -> PageView:
    """With RELATCH_READ_ACCESS=authenticated, an anonymous visitor signs in first (the
    setting is read per request, not when the URLs load); what a reader sees is kept out of
    shared caches."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        reader = access.session_reader(request)
        if reader is None and not _open_to_all():
            return redirect_to_login(request.get_full_path())
        response = view(request, *args, **kwargs)
        if reader is not None or not _open_to_all():
            access.keep_private(response)
        return response

    return wrapper


@login_not_required
@_readers_only
def home(request: HttpRequest) -> HttpResponse:
    """The site's home page: what it is, and the projects updated last that the visitor may
    read."""
    readable = access.readable_filter(access.session_reader(request))
    return render(request, "web/home.html",
                  {"recent_projects": recently_updated_projects(readable=readable)})


def _may_see(request: HttpRequest, project: Project, *, is_member: bool, is_staff: bool
             ) -> bool:
    reader = access.session_reader(request)
    # Staff get no way around a private project (access.may_read), only around a quarantine.
    if not access.may_read(reader, project_id=project.pk, private=project.private):
        return False
    # PEP 792: a quarantined project is hidden from everyone but its people and the staff.
    return project.status != Project.Status.QUARANTINED or is_member or is_staff


@login_not_required
@require_safe
@_readers_only
def project(request: HttpRequest, name: str, version: str | None = None) -> HttpResponse:
    """A project's page, showing its latest release or the ``version`` asked for. Names that are
    not PEP 503-normalised, and versions not as uploaded ("1.0.0" for "1.0"), redirect."""
    normalized = normalize_project_name(name)
    if name != normalized:
        return _redirect_to_project(normalized, version)
    page = project_page(normalized_name=normalized, version=version)
    if page is None:
        raise Http404("No such project or version.")
    is_member = any(role.user_id == request.user.pk for role in page.roles)
    is_staff = bool(request.user.is_active and request.user.is_staff)
    if not _may_see(request, page.project, is_member=is_member, is_staff=is_staff):
        # The same answer as a missing name: a private name is not confirmed to outsiders.
        raise Http404("No such project or version.")
    shown = page.shown
    if version is not None and shown is not None and version != shown.version:
        return _redirect_to_project(normalized, shown.version)
    description = (
        rendered_description(
            release_id=shown.pk, description=shown_description(shown),
            content_type=shown.description_content_type,
        )
        if shown else ""
    )
    context = {
        "page": page, "description": description, "is_version_page": version is not None,
        # The roles are loaded anyway: no query to decide whether to offer the manage page.
        "is_member": is_member, "is_staff": is_staff,
    }
    return render(request, "index/pages/project.html", context)


def _redirect_to_project(normalized: str, version: str | None) -> HttpResponse:
    if version is None:
        return redirect("pages:project", name=normalized, permanent=True)
    return redirect("pages:project_version", name=normalized, version=version, permanent=True)


@login_not_required
@require_safe
@_readers_only
def user(request: HttpRequest, username: str) -> HttpResponse:
    """A user's public profile: username, name, date joined and the projects with roles the
    visitor may read. No email address, ever: addresses are recovery channels and spam
    targets."""
    account = public_user(username)
    if account is None:
        raise Http404("No such user.")
    readable = access.readable_filter(access.session_reader(request))
    context = {"account": account, "roles": list(user_roles(account, readable=readable))}
    return render(request, "index/pages/user.html", context)
