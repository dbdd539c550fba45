"""The pages that change a project's PEP 792 status (relatch.index.manage.status).

Owners: /manage/project/<name>/status/ (members see it; only owners may send it), with a
second factor and a fresh password, as for releases. Staff: /manage/project/<name>/quarantine/,
a 404 for everyone else (people without the role must not learn the page exists), with a
second factor and a fresh password too: hiding a project from every installer is drastic.
"""

from collections.abc import Callable
from functools import wraps

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from relatch.accounts.current import signed_in_user
from relatch.accounts.models import User
from relatch.accounts.reauth import require_recent_auth
from relatch.index.manage import status as services
from relatch.index.manage.services import ManageError
from relatch.index.manage.views import _membership, _second_factor_required
from relatch.index.models import Project, Role
from relatch.index.queries import find_project_by_typed_name

View = Callable[..., HttpResponse]
_REASON_ERRORS = {"max_length": f"The reason has at most {services.MAX_STATUS_REASON} characters."}


class StatusForm(forms.Form):
    status = forms.ChoiceField(
        label="Status",
        choices=[(s.value, s.label) for s in services.OWNER_STATUSES],
        help_text="Archived: no new uploads, installs go on. Deprecated: installable, marked "
                  "as not for new work. Active: neither.",
    )
    reason = forms.CharField(
        label="Reason (optional)", required=False, max_length=services.MAX_STATUS_REASON,
        widget=forms.Textarea(attrs={"rows": 3}), error_messages=_REASON_ERRORS,
        help_text="Installers may show it (PEP 792), e.g. the project to use instead.",
    )


class QuarantineForm(forms.Form):
    reason = forms.CharField(
        label="Reason", max_length=services.MAX_STATUS_REASON,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Write the reason.", **_REASON_ERRORS},
        help_text="The owners read it; the staff record keeps it.",
    )


def _status_page(request: HttpRequest, project: Project, *, form: forms.Form | None = None,
                 error: str = "", status: int = 200, staff: bool = False) -> HttpResponse:
    return render(request, "index/manage/status.html", {
        "project": project, "form": form, "error": error, "staff_page": staff,
        "is_quarantined": project.status == Project.Status.QUARANTINED,
    }, status=status)


@_second_factor_required
@require_recent_auth
def project_status(request: HttpRequest, name: str) -> HttpResponse:
    """GET: the status and, for owners, the form; POST: an owner sets the status."""
    found, role = _membership(request, name)
    if request.method != "POST":
        form = StatusForm(initial={"status": found.status, "reason": found.status_reason})
        return _status_page(request, found, form=form if role.kind == Role.Kind.OWNER else None)
    form = StatusForm(request.POST)
    if not form.is_valid():
        return _status_page(request, found, form=form, status=400)
    try:
        services.set_status(request=request, owner=signed_in_user(request), project=found,
                            status=form.cleaned_data["status"],
                            reason=form.cleaned_data["reason"])
    except ManageError as refusal:
        return _status_page(request, found, form=form, error=refusal.message,
                            status=refusal.status)
    messages.success(request, f"{found.name} is now {form.cleaned_data['status']}.")
    return redirect("manage:project", name=found.normalized_name)


def _staff_only(view: View) -> View:
    """Staff with a second factor; everyone else, signed in or not, gets a 404 (as at the
    recovery desk: people without the role must not learn that the page exists)."""

    @login_not_required
    @wraps(view)
    def wrapper(request: HttpRequest, name: str) -> HttpResponse:
        user = request.user
        if not (isinstance(user, User) and services.is_staff(user)):
            raise Http404("No such page.")
        return view(request, name)

    return wrapper


@_staff_only
@require_recent_auth
def quarantine(request: HttpRequest, name: str) -> HttpResponse:
    """Staff: GET the form; POST ``action`` "quarantine" or "lift" with a reason."""
    project = find_project_by_typed_name(name)
    if project is None:
        raise Http404("No such project.")
    if request.method != "POST":
        return _status_page(request, project, form=QuarantineForm(), staff=True)
    form = QuarantineForm(request.POST)
    if not form.is_valid():
        return _status_page(request, project, form=form, status=400, staff=True)
    act = services.lift_quarantine if request.POST.get("action") == "lift" else services.quarantine
    try:
        changed = act(request=request, staff=signed_in_user(request), project=project,
                      reason=form.cleaned_data["reason"])
    except ManageError as refusal:
        return _status_page(request, project, form=form, error=refusal.message,
                            status=refusal.status, staff=True)
    messages.success(request, f"{changed.name} is now {changed.status}.")
    return redirect("pages:project", name=project.normalized_name)
