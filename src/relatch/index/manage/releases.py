"""Owners' actions on releases: yank (PEP 592), un-yank, and delete.

Each bumps the project's generation (its pages' ETags: ``relatch.index.changes``), writes an
event on the acting account and mails the project's owners. The views ask for a fresh
password first.
"""

from django.core.files.storage import default_storage
from django.db import transaction
from django.http import HttpRequest
from packaging.utils import canonicalize_version

from relatch.accounts.models import User
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.index.changes import mark_project_changed
from relatch.index.manage.services import (
    ManageError,
    lock_project,
    owners_of,
    require_not_frozen,
    require_owner,
    tell,
)
from relatch.index.models import Project, Release

MAX_YANK_REASON = 500


def find_release(*, project: Project, version: str) -> Release:
    """The release ``version`` names ("1.0" finds "1.0.0" too), or ManageError (404)."""
    release = project.releases.filter(canonical_version=canonicalize_version(version)).first()
    if release is None:
        raise ManageError(
            f"{project.name} has no release {version} (it may have been deleted already).",
            status=404,
        )
    return release


def _owned_release(*, owner: User, project: Project, version: str, action: str) -> Release:
    project = lock_project(project)
    require_owner(user=owner, project=project, action=action)
    return find_release(project=project, version=version)


def _changed(
    *, request: HttpRequest | None, owner: User, release: Release, kind: EventKind,
    template: str, extra: dict[str, str] | None = None,
) -> None:
    project = release.project
    mark_project_changed(project_id=project.pk)
    details = {"project": project.name, "version": release.version, **(extra or {})}
    record_event(user=owner, kind=kind, request=request, details=details)
    tell(users=owners_of(project), template=template, actor=owner, context=details)


@transaction.atomic
def yank_release(
    *, request: HttpRequest | None, owner: User, project: Project, version: str, reason: str
) -> Release:
    """Mark a release yanked: installers skip it unless pinned to exactly this version."""
    require_not_frozen(user=owner, action="Yanking a release")
    reason = reason.strip()
    if len(reason) > MAX_YANK_REASON:
        raise ManageError(f"The reason has at most {MAX_YANK_REASON} characters.")
    release = _owned_release(owner=owner, project=project, version=version, action="yank")
    if release.yanked:
        raise ManageError(f"{release.version} is already yanked.")
    release.yanked, release.yanked_reason = True, reason
    release.save(update_fields=["yanked", "yanked_reason"])
    _changed(request=request, owner=owner, release=release, kind=EventKind.RELEASE_YANKED,
             template="release_yanked", extra={"reason": reason})
    return release


@transaction.atomic
def unyank_release(
    *, request: HttpRequest | None, owner: User, project: Project, version: str
) -> Release:
    """Make a yanked release installable again."""
    require_not_frozen(user=owner, action="Un-yanking a release")
    release = _owned_release(owner=owner, project=project, version=version, action="un-yank")
    if not release.yanked:
        raise ManageError(f"{release.version} is not yanked.")
    release.yanked, release.yanked_reason = False, ""
    release.save(update_fields=["yanked", "yanked_reason"])
    _changed(request=request, owner=owner, release=release, kind=EventKind.RELEASE_UNYANKED,
             template="release_unyanked")
    return release


@transaction.atomic
def delete_release(
    *, request: HttpRequest | None, owner: User, project: Project, version: str,
    confirmation: str,
) -> Release:
    """Delete a release and its files. ``confirmation`` must be the version, typed out.

    UsedFilename rows stay: a deleted file's name can never be uploaded again, because
    installers may have cached the old bytes under it.
    """
    require_not_frozen(user=owner, action="Deleting a release")
    release = _owned_release(owner=owner, project=project, version=version, action="delete")
    if confirmation.strip() != release.version:
        raise ManageError(
            f"To delete, type the version exactly as shown: {release.version}. Nothing was deleted."
        )
    files = list(release.files.all())
    paths = [p for f in files for p in (f.path, f"{f.path}.metadata")]
    filenames = [f.filename for f in files]
    release.delete()  # its File rows go with it
    # Storage is not transactional: remove the bytes only once the rows are surely gone.
    transaction.on_commit(lambda: _remove_from_storage(paths))
    _changed(request=request, owner=owner, release=release, kind=EventKind.RELEASE_DELETED,
             template="release_deleted", extra={"files": ", ".join(filenames)})
    return release


def _remove_from_storage(paths: list[str]) -> None:
    for path in paths:
        if default_storage.exists(path):
            default_storage.delete(path)
