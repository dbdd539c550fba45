"""Public pages: a project (its description, releases, files, links and maintainers) and a user
(their projects). Read-only and open to everyone, signed in or not."""

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from relatch.index.names import normalize_project_name
from relatch.index.pages.queries import (
    project_page,
    public_user,
    recently_updated_projects,
    shown_description,
    user_roles,
)
from relatch.index.pages.rendering import rendered_description


@login_not_required
def home(request: HttpRequest) -> HttpResponse:
    """The site's home page: what it is, and the projects updated last."""
    return render(request, "web/home.html", {"recent_projects": recently_updated_projects()})


@login_not_required
@require_safe
def project(request: HttpRequest, name: str, version: str | None = None) -> HttpResponse:
    """A project's page, showing its latest release or the ``version`` asked for. Names that are
    not PEP 503-normalised, and versions not as uploaded ("1.0.0" for "1.0"), redirect."""
    normalized = normalize_project_name(name)
    if name != normalized:
        return _redirect_to_project(normalized, version)
    page = project_page(normalized_name=normalized, version=version)
    if page is None:
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
        "is_member": any(role.user_id == request.user.pk for role in page.roles),
    }
    return render(request, "index/pages/project.html", context)


def _redirect_to_project(normalized: str, version: str | None) -> HttpResponse:
    if version is None:
        return redirect("pages:project", name=normalized, permanent=True)
    return redirect("pages:project_version", name=normalized, version=version, permanent=True)


@login_not_required
@require_safe
def user(request: HttpRequest, username: str) -> HttpResponse:
    """A user's public profile: username, name, date joined and projects with roles. No email
    address, ever: addresses are recovery channels and spam targets."""
    account = public_user(username)
    if account is None:
        raise Http404("No such user.")
    context = {"account": account, "roles": list(user_roles(account))}
    return render(request, "index/pages/user.html", context)
