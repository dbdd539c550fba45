"""The owner's form on a project's manage page that makes it private or public."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from relatch.accounts.current import signed_in_user
from relatch.accounts.reauth import require_recent_auth
from relatch.index.manage.services import ManageError
from relatch.index.manage.views import (
    _membership,
    _post_from_page,
    _refused,
    _second_factor_required,
)
from relatch.index.manage.visibility import set_visibility, visibility_word

_CHOICES = {"private": True, "public": False}


@_post_from_page
@_second_factor_required
@require_recent_auth
def change_visibility(request: HttpRequest, name: str) -> HttpResponse:
    """POST ``visibility`` = private or public (fresh password first: making a project public
    shows its code to everyone who may read the index)."""
    found, _ = _membership(request, name)
    private = _CHOICES.get(request.POST.get("visibility", ""))
    try:
        if private is None:
            raise ManageError("Choose private or public.")
        set_visibility(request=request, owner=signed_in_user(request), project=found,
                       private=private)
    except ManageError as refusal:
        return _refused(request, name, refusal)
    messages.success(request, f"{found.name} is now {visibility_word(private)}.")
    return redirect("manage:project", name=found.normalized_name)
