"""Reserving a name: an empty local project, so the upstream is never consulted for it.

A name the team means to publish under, or one its code imports but never published, is
what an attacker registers upstream (dependency confusion). Reserving it makes a local
project (owned by the account that reserves it, with no releases): the rule that a local
name never mixes with the upstream then applies to it, and its owner uploads to it as to any
project of theirs.
"""

from django.db import transaction
from django.http import HttpRequest

from relatch.accounts.freeze import AccountFrozenError, refuse_if_frozen
from relatch.accounts.models import User
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.index.changes import mark_project_changed, mark_project_list_changed
from relatch.index.models import Project, Role
from relatch.index.names import MAX_PROJECT_NAME, is_valid_project_name, normalize_project_name
from relatch.index.trusted.name_taken import drop_pending_for
from relatch.index.upstream.models import UpstreamPage

RESERVE_ACTION = "Reserving a project name"


class ReserveRefusedError(Exception):
    """The name cannot be reserved; ``message`` says why. Nothing changed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_name(name: str) -> str:
    """The normalized name, or ReserveRefusedError for a name that is not a valid one."""
    if not is_valid_project_name(name):
        raise ReserveRefusedError(
            f"'{name}' is not a valid project name: ASCII letters, digits and '.', '_', '-' "
            f"inside, at most {MAX_PROJECT_NAME} characters."
        )
    return normalize_project_name(name)


@transaction.atomic
def reserve_name(*, name: str, owner: User, request: HttpRequest | None = None,
                 by_operator: bool = False) -> Project:
    """Make ``name`` an empty local project owned by ``owner`` (UPSTREAM_NAME_RESERVED on
    the owner's history). Refuses a name that is invalid or already a local project, and a
    frozen account. Any page kept from the upstream for the name is forgotten."""
    check_name(name)
    try:
        refuse_if_frozen(user=owner, action=RESERVE_ACTION)
    except AccountFrozenError as error:
        raise ReserveRefusedError(error.message) from None
    project = create_local_project(name=name, owner=owner)
    drop_pending_for(request=request, project=project)
    details = {"project": project.name, **({"by": "operator"} if by_operator else {})}
    record_event(user=owner, kind=EventKind.UPSTREAM_NAME_RESERVED, request=request,
                 details=details)
    return project


def create_local_project(*, name: str, owner: User) -> Project:
    """The core of reserving, shared with a pending trusted publisher's first exchange
    (``relatch.index.trusted.exchange``): make ``name`` an empty local project owned by
    ``owner`` and forget any page kept from the upstream for it. Call inside the caller's
    transaction, which records its own event; ReserveRefusedError for an invalid name or one
    that is already a local project (nothing changed)."""
    normalized = check_name(name)
    project, created = Project.objects.get_or_create(
        normalized_name=normalized, defaults={"name": name}
    )
    if not created:
        raise ReserveRefusedError(
            # The name as typed, not the project's own spelling: a private project's
            # name is not shown to someone who only guessed it.
            f"'{name}' is already a project here: the upstream is never consulted "
            "for it."
        )
    Role.objects.create(project=project, user=owner, kind=Role.Kind.OWNER)
    UpstreamPage.objects.filter(normalized_name=normalized).delete()
    mark_project_changed(project_id=project.pk, project_name=project.name, action="create")
    mark_project_list_changed(project_name=project.name, action="create")
    return project
