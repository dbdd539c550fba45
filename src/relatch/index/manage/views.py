"""The owner's pages: "your projects", a project's members and releases, invitations.

Every page needs a second factor. A project's page is for its members only: anyone else gets
the same 404 as for a project that does not exist. Role changes and release actions need a
fresh password (a stolen session must not hand a project to someone else).
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from relatch.accounts.current import signed_in_user
from relatch.accounts.reauth import require_recent_auth
from relatch.index.manage import queries, releases, services
from relatch.index.manage.forms import DeleteReleaseForm, InviteForm, RoleForm, YankForm
from relatch.index.manage.services import ManageError
from relatch.index.models import Project, Role
from relatch.index.queries import find_project_by_typed_name
from relatch.index.trusted.queries import publish_history
from relatch.mfa.policy import SecondFactorRequiredError, require_second_factor

View = Callable[..., HttpResponse]


def _second_factor_required(view: View) -> View:
    """Every owner's page needs a second factor; without one, a page that links to setting one
    up and comes back here afterwards (issue 19: the wall returns to the task)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            require_second_factor(user=signed_in_user(request), action="Managing projects")
        except SecondFactorRequiredError as refusal:
            return render(request, "index/manage/needs_second_factor.html", {
                "reason": refusal.message, "next": _task_page(request),
            }, status=403)
        return view(request, *args, **kwargs)

    return wrapper


_ANSWERS = {"accept_invitation", "decline_invitation"}


def _task_page(request: HttpRequest) -> str:
    """The page to come back to: this one, or for a form sent, a page that shows its form
    again. The project actions' URLs do, opened by GET (``_post_from_page``); the answers to
    an invitation are POST only, so their page is the invitations list."""
    if request.method == "GET":
        return request.get_full_path()
    match = request.resolver_match
    if match is not None and match.url_name in _ANSWERS:
        return reverse("manage:invitations")
    return request.path


def _post_from_page(view: View) -> View:
    """GET never changes state: an action's URL opened by GET (e.g. after re-authenticating)
    goes back to the project page, where the form is sent again."""

    @wraps(view)
    def wrapper(request: HttpRequest, name: str, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return redirect("manage:project", name=name)
        return view(request, name, *args, **kwargs)

    return wrapper


def _membership(request: HttpRequest, name: str) -> tuple[Project, Role]:
    """The project and the user's role on it; 404 for non-members, as for unknown names."""
    project = find_project_by_typed_name(name)
    if project is None:
        raise Http404("No such project among yours.")
    role = services.role_of(user=signed_in_user(request), project=project)
    if role is None:
        raise Http404("No such project among yours.")
    return project, role


@require_GET
@_second_factor_required
def projects(request: HttpRequest) -> HttpResponse:
    """The user's projects with their role and latest version."""
    user = signed_in_user(request)
    return render(request, "index/manage/projects.html", {
        "rows": queries.projects_of(user=user),
        "invitation_count": len(queries.invitations_for(user=user)),
    })


def _project_page(
    request: HttpRequest, project: Project, role: Role, *, error: str = "", status: int = 200,
    invite_form: InviteForm | None = None,
) -> HttpResponse:
    members = queries.members_of(project=project)
    is_owner = role.kind == Role.Kind.OWNER
    return render(request, "index/manage/project.html", {
        "project": project,
        "my_role": role,
        "is_owner": is_owner,
        # Leave is not offered to the last owner: leave_project would refuse it anyway.
        "is_last_owner": is_owner and sum(m.kind == Role.Kind.OWNER for m in members) == 1,
        "members": members,
        "invitations": queries.pending_invitations_to(project=project),
        "releases": queries.releases_of(project=project),
        "publishes": publish_history(project=project),
        "invite_form": invite_form or InviteForm(),
        "role_choices": Role.Kind.choices,
        "error": error,
    }, status=status)


@require_GET
@_second_factor_required
def project(request: HttpRequest, name: str) -> HttpResponse:
    """Members, pending invitations and releases of one project."""
    found, role = _membership(request, name)
    if name != found.normalized_name:
        return redirect("manage:project", name=found.normalized_name)
    return _project_page(request, found, role)


def _refused(request: HttpRequest, name: str, refusal: ManageError, **kw: Any) -> HttpResponse:
    """The project page with the refusal; a page the user can no longer see after the
    change (they left) falls back to "your projects"."""
    try:
        found, role = _membership(request, name)
    except Http404:
        messages.error(request, refusal.message)
        return redirect("manage:projects")
    return _project_page(request, found, role, error=refusal.message, status=refusal.status, **kw)


@_post_from_page
@_second_factor_required
@require_recent_auth
def invite(request: HttpRequest, name: str) -> HttpResponse:
    found, _ = _membership(request, name)
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _refused(request, name, ManageError("Check the invitation form."), invite_form=form)
    try:
        invitation = services.invite(
            request=request, inviter=signed_in_user(request), project=found,
            username=form.cleaned_data["username"], kind=form.cleaned_data["kind"],
        )
    except ManageError as refusal:
        return _refused(request, name, refusal, invite_form=form)
    messages.success(request, f"Invited {invitation.invitee.username} as "
                              f"{invitation.get_kind_display().lower()}.")
    return redirect("manage:project", name=found.normalized_name)


@_post_from_page
@_second_factor_required
def revoke_invitation(request: HttpRequest, name: str, invitation_id: int) -> HttpResponse:
    found, _ = _membership(request, name)
    try:
        invitation = services.revoke_invitation(
            request=request, owner=signed_in_user(request), project=found,
            invitation_id=invitation_id,
        )
    except ManageError as refusal:
        return _refused(request, name, refusal)
    messages.success(request, f"Revoked the invitation of {invitation.invitee.username}.")
    return redirect("manage:project", name=found.normalized_name)


@_post_from_page
@_second_factor_required
@require_recent_auth
def change_role(request: HttpRequest, name: str, role_id: int) -> HttpResponse:
    found, _ = _membership(request, name)
    form = RoleForm(request.POST)
    try:
        if not form.is_valid():
            raise ManageError("Choose the role: owner or maintainer.")
        role = services.change_role(
            request=request, owner=signed_in_user(request), project=found, role_id=role_id,
            kind=form.cleaned_data["kind"],
        )
    except ManageError as refusal:
        return _refused(request, name, refusal)
    messages.success(request, f"{role.user.username} is now {role.get_kind_display().lower()}.")
    return redirect("manage:project", name=found.normalized_name)


@_post_from_page
@_second_factor_required
@require_recent_auth
def remove_member(request: HttpRequest, name: str, role_id: int) -> HttpResponse:
    found, _ = _membership(request, name)
    try:
        role = services.remove_member(
            request=request, owner=signed_in_user(request), project=found, role_id=role_id
        )
    except ManageError as refusal:
        return _refused(request, name, refusal)
    messages.success(request, f"Removed {role.user.username} from {found.name}.")
    if role.user == signed_in_user(request):
        return redirect("manage:projects")
    return redirect("manage:project", name=found.normalized_name)


@_post_from_page
@_second_factor_required
def leave(request: HttpRequest, name: str) -> HttpResponse:
    found, _ = _membership(request, name)
    try:
        services.leave_project(request=request, user=signed_in_user(request), project=found)
    except ManageError as refusal:
        return _refused(request, name, refusal)
    messages.success(request, f"You left {found.name}.")
    return redirect("manage:projects")


@require_GET
@_second_factor_required
def invitations(request: HttpRequest) -> HttpResponse:
    """The user's pending invitations, to accept or decline."""
    rows = queries.invitations_for(user=signed_in_user(request))
    return render(request, "index/manage/invitations.html", {"rows": rows})


@require_POST
@_second_factor_required
def answer_invitation(request: HttpRequest, invitation_id: int, accept: bool) -> HttpResponse:
    user = signed_in_user(request)
    try:
        if accept:
            role = services.accept_invitation(
                request=request, user=user, invitation_id=invitation_id
            )
            messages.success(request, f"You are now {role.get_kind_display().lower()} of "
                                      f"{role.project.name}.")
        else:
            services.decline_invitation(request=request, user=user, invitation_id=invitation_id)
            messages.success(request, "You declined the invitation.")
    except ManageError as refusal:
        rows = queries.invitations_for(user=user)
        return render(request, "index/manage/invitations.html",
                      {"rows": rows, "error": refusal.message}, status=refusal.status)
    return redirect("manage:projects" if accept else "manage:invitations")


def _release_page(
    request: HttpRequest, name: str, version: str, template: str, form: Any, *, status: int = 200,
    error: str = "",
) -> HttpResponse:
    found, role = _membership(request, name)
    try:
        services.require_owner(user=signed_in_user(request), project=found, action="do that")
        release = releases.find_release(project=found, version=version)
    except ManageError as refusal:
        return _refused(request, name, refusal)
    return render(request, f"index/manage/{template}", {
        "project": found, "release": release, "form": form, "error": error,
    }, status=status)


@_second_factor_required
@require_recent_auth
def yank(request: HttpRequest, name: str, version: str) -> HttpResponse:
    """GET: the yank form; POST: yank the release, with an optional reason."""
    if request.method != "POST":
        return _release_page(request, name, version, "yank.html", YankForm())
    form = YankForm(request.POST)
    if not form.is_valid():
        return _release_page(request, name, version, "yank.html", form, status=400)
    return _release_action(request, name, version, releases.yank_release, "Yanked",
                           form, "yank.html", reason=form.cleaned_data["reason"])


@_second_factor_required
@require_recent_auth
def unyank(request: HttpRequest, name: str, version: str) -> HttpResponse:
    """GET: confirm; POST: make the release installable again."""
    if request.method != "POST":
        return _release_page(request, name, version, "unyank.html", None)
    return _release_action(request, name, version, releases.unyank_release, "Un-yanked",
                           None, "unyank.html")


@_second_factor_required
@require_recent_auth
def delete_release(request: HttpRequest, name: str, version: str) -> HttpResponse:
    """GET: ask for the version to be typed; POST: delete the release and its files."""
    if request.method != "POST":
        return _release_page(request, name, version, "delete.html", DeleteReleaseForm())
    form = DeleteReleaseForm(request.POST)
    if not form.is_valid():
        return _release_page(request, name, version, "delete.html", form, status=400)
    return _release_action(request, name, version, releases.delete_release, "Deleted",
                           form, "delete.html", confirmation=form.cleaned_data["confirmation"])


def _release_action(
    request: HttpRequest, name: str, version: str, action: Callable[..., Any], done: str,
    form: Any, template: str, **fields: str,
) -> HttpResponse:
    found, _ = _membership(request, name)
    try:
        release = action(request=request, owner=signed_in_user(request), project=found,
                         version=version, **fields)
    except ManageError as refusal:
        if refusal.status != 400:
            return _refused(request, name, refusal)
        return _release_page(request, name, version, template, form, status=400,
                             error=refusal.message)
    messages.success(request, f"{done} {found.name} {release.version}.")
    return redirect("manage:project", name=found.normalized_name)
