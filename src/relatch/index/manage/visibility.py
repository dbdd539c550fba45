"""Owners make a project private (only its people read its pages and files) or public.

Whatever RELATCH_READ_ACCESS says, a private project's simple page, files and JSON are read
only by accounts with a role on it (relatch.index.simple.access). Making one public shows its
code to everyone who may read the index, so the view asks for a fresh password first, and the
change is an event on the owner's account and a mail to every owner.
"""

from django.db import transaction
from django.http import HttpRequest

from relatch.accounts.models import User
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.index.changes import mark_project_changed, mark_project_list_changed
from relatch.index.manage.services import (
    ManageError,
    lock_project,
    owners_of,
    require_not_frozen,
    require_owner,
    tell,
)
from relatch.index.models import Project


def visibility_word(private: bool) -> str:
    return "private" if private else "public"


@transaction.atomic
def set_visibility(
    *, request: HttpRequest | None, owner: User, project: Project, private: bool
) -> Project:
    """Make ``project`` private or public. ManageError when the owner's account is frozen
    (403), they are not an owner (403), or it already is (400). Nothing changes then.

    Bumps the project's generation (its pages' ETags, the response cache's marker) and the
    list's (/simple/ lists a private project only to its people), records
    PROJECT_VISIBILITY_CHANGED and mails the owners."""
    require_not_frozen(user=owner, action="Changing who can read a project")
    project = lock_project(project)
    require_owner(user=owner, project=project, action="change who can read it")
    word = visibility_word(private)
    if project.private == private:
        raise ManageError(f"{project.name} is already {word}. Nothing was changed.")
    project.private = private
    project.save(update_fields=["private"])
    details = {"project": project.name, "private": private}
    record_event(user=owner, kind=EventKind.PROJECT_VISIBILITY_CHANGED, request=request,
                 details=details)
    action = f"make {word}"
    mark_project_changed(project_id=project.pk, project_name=project.name, action=action)
    # Last: it locks the index's one row until the commit.
    mark_project_list_changed(project_name=project.name, action=action)
    tell(users=owners_of(project), template="project_visibility_changed", actor=owner,
         context={"project": project.name, "visibility": word})
    return project
