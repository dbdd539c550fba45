"""/manage/reserve/: an owner reserves a name, so the upstream is never consulted for it.

Signed in (LoginRequiredMiddleware) with a second factor, like every owner's page: the name
becomes a project its owner uploads to, as an upload's first file would make it. The service
(``reserve.reserve_name``) decides; this page shows its refusal next to the name.
"""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from relatch.accounts.current import signed_in_user
from relatch.index.manage.views import _second_factor_required
from relatch.index.names import MAX_PROJECT_NAME
from relatch.index.upstream.reserve import ReserveRefusedError, reserve_name


class ReserveForm(forms.Form):
    name = forms.CharField(
        label="Project name", max_length=MAX_PROJECT_NAME,
        help_text="The name as you will publish it, e.g. acme-internal-tools.",
        error_messages={
            "required": "Enter the name to reserve.",
            "max_length": f"A project name has at most {MAX_PROJECT_NAME} characters.",
        },
    )


@require_http_methods(["GET", "POST"])
@_second_factor_required
def reserve(request: HttpRequest) -> HttpResponse:
    """GET: the form. POST: reserve the name, then the new project's page; a refusal (taken,
    invalid, frozen account) is the form again with the reason, and nothing changed."""
    form = ReserveForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            project = reserve_name(name=form.cleaned_data["name"],
                                   owner=signed_in_user(request), request=request)
        except ReserveRefusedError as refusal:
            form.add_error("name", refusal.message)
        else:
            messages.success(request, f"{project.name} is reserved: installers get only what "
                                      "you publish under it, never the upstream's files.")
            return redirect("manage:project", name=project.normalized_name)
    status = 400 if form.errors else 200
    return render(request, "index/manage/reserve.html", {"form": form}, status=status)
