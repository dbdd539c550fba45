"""Uploads: who may upload, and creating projects, releases and files (issue 4 §3).

The only place that creates projects, releases and files, for twine's uploads and for the
operator's imports alike (``publish_file``; they differ only in the Publisher, issue 16 §4).
Checks run first and change nothing; then the rows are written and the file stored in one
transaction. If storing fails the transaction rolls back; if the database fails the stored
files are deleted: no row without its file, no file without its row.
"""

import hashlib
import logging
from dataclasses import dataclass

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, QueryDict
from django.utils import timezone

from relatch.accounts.models import User
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.index.changes import mark_project_changed, mark_project_list_changed
from relatch.index.manage.status import upload_refusal
from relatch.index.models import APIToken, File, Project, Release, Role, UsedFilename
from relatch.index.trusted.name_taken import drop_pending_for
from relatch.index.upload import reuploads, storage
from relatch.index.upload.metadata import check_wheel_metadata, release_fields
from relatch.index.upload.publisher import Publisher
from relatch.index.upload.storage import Digests, file_storage_path
from relatch.index.upload.uniqueness import refuse_a_second_of_its_kind
from relatch.index.upload.validation import (
    UploadForm,
    UploadRefusedError,
    check_action,
    check_filename,
    check_form,
    split_filename,
)

__all__ = [
    "Published", "Publisher", "UploadRefusedError", "check_uploader", "file_storage_path",
    "publish_file", "record_refusal", "store_upload",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Published:
    """What an upload did: its File row, and whether that file was already there with the
    same bytes (``skipped``: nothing changed, UPLOAD_SKIPPED was recorded)."""

    file: File
    skipped: bool = False


@dataclass(frozen=True)
class _Checked:
    form: UploadForm
    filename: str
    digests: Digests
    project: Project | None
    metadata: bytes | None = None


def check_uploader(*, token: APIToken) -> None:
    """Refuse (403) a token whose account has no second factor: a token is minted by someone
    who proved two factors, and stays usable only while the account keeps one. Refuse (403)
    a token of a frozen account too: a hijacker must not publish under the owner's name
    while staff review the account (DESIGN §5)."""
    Publisher.with_token(token).check()


def store_upload(
    *, request: HttpRequest | None, token: APIToken, fields: QueryDict, upload: UploadedFile
) -> Published:
    """Check and store one uploaded distribution file; return its File row.

    Raises UploadRefusedError (.message, .status) and records UPLOAD_REFUSED on the token's
    account when any check fails; nothing else changes then. On success: the Project (with
    the uploader as owner, PROJECT_CREATED) on a first upload, the Release on its first file,
    the File and UsedFilename rows, the stored file and (for wheels) its METADATA, the
    project's generation (and the index's, for a new project), FILE_UPLOADED and the token's
    use. The same bytes under a name already used are a skipped upload
    (``relatch.index.upload.reuploads``): nothing changes but UPLOAD_SKIPPED and the token's use.
    """
    try:
        return publish_file(request=request, publisher=Publisher.with_token(token),
                            fields=fields, upload=upload)
    except UploadRefusedError as refusal:
        record_refusal(request=request, token=token, message=refusal.message,
                       filename=upload.name or "", project=fields.get("name", ""))
        raise


def publish_file(
    *, request: HttpRequest | None, publisher: Publisher, fields: QueryDict, upload: UploadedFile
) -> Published:
    """Check and store one distribution file as ``publisher``; return its File row.

    The pipeline of every way in: twine's upload (``store_upload``, which also records a
    refusal on the token's account) and the operator's import
    (``relatch.index.upload.imports``). Raises UploadRefusedError when a check fails, with
    nothing changed; on success writes what ``store_upload`` says, the token's use only for a
    token.
    """
    checked = _check(publisher=publisher, fields=fields, upload=upload)
    if (same := _identical(checked)) is not None:
        reuploads.record_skip(request=request, publisher=publisher, file=same)
        return Published(same, skipped=True)
    try:
        reuploads.refuse_used_name(filename=checked.filename, sha256=checked.digests.sha256)
    except UploadRefusedError:
        # A twin (a CI job re-run at the same moment) may have committed these very bytes
        # since _identical looked: a skip, not "other contents" (seen in CI on PostgreSQL).
        if (same := _identical(checked)) is None:
            raise
        reuploads.record_skip(request=request, publisher=publisher, file=same)
        return Published(same, skipped=True)
    checked = _check_contents(checked, upload)
    try:
        return Published(
            _store(request=request, publisher=publisher, checked=checked, upload=upload)
        )
    except _NameTakenError:
        # A parallel upload (a CI job re-run twice at once) stored the name first: the same
        # bytes are a skip for this one too.
        if (same := _identical_after_race(publisher, checked)) is None:
            raise
        reuploads.record_skip(request=request, publisher=publisher, file=same)
        return Published(same, skipped=True)


@transaction.atomic
def record_refusal(
    *, request: HttpRequest | None, token: APIToken, message: str, filename: str = "",
    project: str = "",
) -> None:
    """UPLOAD_REFUSED on the token's account: its owner sees what was tried with their token
    (or with the token their trusted publisher's job was given)."""
    via = Publisher.with_token(token)
    record_event(
        user=token.user, kind=EventKind.UPLOAD_REFUSED, request=request, factor=via.factor,
        details={"message": message[:500], "filename": filename[:300], "project": project[:200],
                 **via.file_event_details()},
    )


class _NameTakenError(UploadRefusedError):
    """The file's name was taken by another upload between the checks and the commit."""


def _check(*, publisher: Publisher, fields: QueryDict, upload: UploadedFile) -> _Checked:
    """Who uploads, the form, the file name and the digests: all a re-upload needs."""
    publisher.check()
    check_action(fields)
    form = check_form(fields)
    project = _project_for(publisher=publisher, form=form)
    filename = upload.name or ""
    check_filename(filename, form, legacy_spelling=publisher.keeps_legacy_spellings)
    digests = _check_digests(form, upload)
    return _Checked(form, filename, digests, project)


def _identical(checked: _Checked) -> File | None:
    return reuploads.identical_file(filename=checked.filename, sha256=checked.digests.sha256,
                                    project=checked.project)


def _identical_after_race(publisher: Publisher, checked: _Checked) -> File | None:
    """The same file, stored by the upload that won the race, when this uploader may upload
    to its project (which that upload may have just made)."""
    project = Project.objects.filter(normalized_name=checked.form.normalized_name).first()
    if project is None or not _may_upload(publisher.user, project):
        return None
    return reuploads.identical_file(filename=checked.filename, sha256=checked.digests.sha256,
                                    project=project)


def _check_contents(checked: _Checked, upload: UploadedFile) -> _Checked:
    """The archive; for a wheel, the form as its METADATA says it (what is stored)."""
    form, filename = checked.form, checked.filename
    if form.filetype == File.PackageType.SDIST:
        storage.sdist_metadata(upload, filename)  # read (bounded) to know it is an sdist
        return checked
    metadata = storage.checked_wheel_metadata(upload, filename)
    form = check_wheel_metadata(metadata, form)
    return _Checked(form, filename, checked.digests, checked.project, metadata)


def _project_for(*, publisher: Publisher, form: UploadForm) -> Project | None:
    """The existing project the upload goes to (None: a new one), if the uploader may."""
    if not publisher.may_reach(form.normalized_name):
        raise publisher.out_of_scope(form.name)
    project = Project.objects.filter(normalized_name=form.normalized_name).first()
    if project is not None and not _may_upload(publisher.user, project):
        raise _not_allowed(project)
    if project is not None:
        _refuse_by_status(project)
    return project


def _refuse_by_status(project: Project) -> None:
    """PEP 792: an archived or quarantined project takes no new files (not even the same
    bytes again: a re-run job should learn the project is closed)."""
    if (why := upload_refusal(project)) is not None:
        raise UploadRefusedError(why, status=403)


def _may_upload(user: User, project: Project) -> bool:
    return _upload_roles(user, project).exists()


def _upload_roles(user: User, project: Project) -> QuerySet[Role]:
    kinds = {Role.Kind.OWNER, Role.Kind.MAINTAINER}
    return Role.objects.filter(project=project, user=user, kind__in=kinds)


def _not_allowed(project: Project) -> UploadRefusedError:
    return UploadRefusedError(
        f"You are not allowed to upload to project '{project.name}': ask one of its owners "
        "for the maintainer role.", status=403,
    )


def _check_digests(form: UploadForm, upload: UploadedFile) -> Digests:
    if not form.sha256_digest and not form.blake2_256_digest:
        raise UploadRefusedError("The upload has no digest: send sha256_digest (twine does).")
    digests = storage.compute_digests(upload)
    if digests.size == 0:
        raise UploadRefusedError(f"'{upload.name}' is empty.")
    if form.sha256_digest and form.sha256_digest != digests.sha256:
        raise UploadRefusedError(
            "The file's SHA-256 digest does not match the sha256_digest sent: the file was "
            "changed or cut short on the way. Upload it again."
        )
    if form.blake2_256_digest and form.blake2_256_digest != digests.blake2_256:
        raise UploadRefusedError(
            "The file's BLAKE2b-256 digest does not match the blake2_256_digest sent: the file "
            "was changed or cut short on the way. Upload it again."
        )
    return digests


def _store(
    *, request: HttpRequest | None, publisher: Publisher, checked: _Checked, upload: UploadedFile
) -> File:
    stored: list[str] = []
    try:
        with transaction.atomic():
            row, project_created = _write_rows(
                request=request, publisher=publisher, checked=checked
            )
            _save_files(row, checked, upload, stored)
            # The token's use is an UPDATE of its row: from here to the commit this upload
            # holds the lock a revocation takes. Checked again under it (and under the
            # account's and the role's locks): a token revoked, an account frozen or a role
            # removed while the file was read and stored publishes nothing.
            publisher.note_use(request=request)
            publisher.confirm()
            if not project_created:
                _confirm_role(publisher.user, row.release.project)
            # After the file is saved: the release's row stays locked from here to the commit,
            # and parallel uploads of one release's wheels should not wait for each other's
            # storage. A refusal here deletes what was saved (below).
            refuse_a_second_of_its_kind(release=row.release, filename=checked.filename,
                                        filetype=checked.form.filetype, stored=row)
            # Last: the markers' rows stay locked until the commit, and saving a large file
            # takes a while; the index's row is touched only when the project is new.
            mark_project_changed(project_id=row.release.project_id)
            if project_created:
                mark_project_list_changed()
    except IntegrityError:
        storage.delete_stored(stored)
        # The project and release are made or found race-free (_write_rows): the file name
        # is what another upload took between the check and this commit.
        raise _NameTakenError(reuploads.already_exists(checked.filename).message) from None
    except OSError as error:
        # The storage failed (disk full, object store down): nothing was written. Its
        # address and error go to the log; the client learns which part failed.
        logger.warning("upload of %s refused: the file store failed: %s",
                       checked.filename, error)
        storage.delete_stored(stored)
        raise UploadRefusedError(
            "The file store could not keep the file right now; nothing was published. "
            "Try again later.",
            status=503,
        ) from None
    except BaseException:
        storage.delete_stored(stored)
        raise
    return row


def _save_files(row: File, checked: _Checked, upload: UploadedFile, stored: list[str]) -> None:
    if checked.metadata is not None:
        storage.save_metadata(row.path, checked.metadata)
        stored.append(storage.metadata_path(row.path))
    stored.append(row.path)
    storage.save_file(row.path, upload)


def _write_rows(
    *, request: HttpRequest | None, publisher: Publisher, checked: _Checked
) -> tuple[File, bool]:
    """The rows of the upload; the File and whether this upload made the project."""
    user, form = publisher.user, checked.form
    project, project_created = _project_in_transaction(
        request=request, publisher=publisher, form=form, checked_project=checked.project
    )
    # Read again in the transaction: a status set since the checks above still counts.
    project.refresh_from_db(fields=["status"])
    _refuse_by_status(project)
    release = _release_for(project=project, publisher=publisher, form=form)
    if not publisher.keeps_legacy_spellings:
        _check_version_spelling(release, checked)
    now = timezone.now()
    row = File.objects.create(
        release=release, filename=checked.filename, packagetype=form.filetype,
        python_version=form.pyversion, requires_python=form.single.get("requires_python", ""),
        size=checked.digests.size, sha256_digest=checked.digests.sha256,
        blake2_256_digest=checked.digests.blake2_256,
        path=file_storage_path(checked.digests.sha256, checked.filename),
        metadata_sha256_digest=_sha256(checked.metadata), uploader=user, uploaded_at=now,
        # How it was published, for the JSON API and the project's history (issue 21).
        upload_token=publisher.token, trusted_publisher=publisher.trusted_publisher,
        uploaded_via=publisher.via,
    )
    UsedFilename.objects.create(filename=checked.filename, project_name=project.normalized_name,
                                first_uploaded_at=now)
    record_event(
        user=user, kind=EventKind.FILE_UPLOADED, request=request, factor=publisher.factor,
        details={"filename": checked.filename, "project": project.name,
                 "version": release.version, "sha256": checked.digests.sha256,
                 **publisher.file_event_details()},
    )
    return row, project_created


def _project_in_transaction(
    *, request: HttpRequest | None, publisher: Publisher, form: UploadForm,
    checked_project: Project | None,
) -> tuple[Project, bool]:
    """The upload's project, made if it is new; True if this upload made it.

    Parallel uploads of one new project's files all saw no project when they were checked:
    the first to get here makes it, and the others (get_or_create waits for its commit, then
    reads its row) upload to it like to any existing project, when they may.
    """
    if checked_project is not None:
        return checked_project, False
    project, created = Project.objects.get_or_create(
        normalized_name=form.normalized_name, defaults={"name": form.name}
    )
    if created:
        Role.objects.create(project=project, user=publisher.user, kind=Role.Kind.OWNER)
        drop_pending_for(request=request, project=project)
        record_event(
            user=publisher.user, kind=EventKind.PROJECT_CREATED, request=request,
            factor=publisher.factor,
            details={"project": project.name, **publisher.project_event_details()},
        )
    return project, created


def _confirm_role(user: User, project: Project) -> None:
    """The uploader still has a role on ``project``: read under the role row's lock, which
    removing the role takes too (a project another upload has just made is refused here to
    anyone it did not make an owner)."""
    held = _upload_roles(user, project).select_for_update(no_key=True)
    if not list(held.values_list("pk", flat=True)):
        raise _not_allowed(project)


def _release_for(*, project: Project, publisher: Publisher, form: UploadForm) -> Release:
    """The release of ``form``'s version, made by the first of parallel uploads to reach it
    (the others wait for its commit and read it). Its metadata is the first file's: when a
    trusted publisher sent that, the release says so (whoever can run the CI job wrote it,
    not the uploader's own hand)."""
    release, _created = Release.objects.get_or_create(
        project=project, canonical_version=form.canonical_version,
        defaults={"version": form.version, "uploader": publisher.user,
                  "trusted_publisher": publisher.trusted_publisher, **release_fields(form)},
    )
    return release


def _check_version_spelling(release: Release, checked: _Checked) -> None:
    """The file spells the version as its release does: ``sample_pkg-1.0.0-py3-none-any.whl``
    beside ``sample_pkg-1.0-py3-none-any.whl`` would be a second file with the same tags for
    one release. Read here, under the transaction, so parallel first uploads agree too. New
    uploads only: the operator's import keeps older spellings, and ``uniqueness`` keeps a
    release to one sdist and one wheel per tags either way."""
    prefix, version, rest = split_filename(checked.filename, checked.form.filetype)
    if version.lower() != release.version.lower():
        raise UploadRefusedError(
            f"Release {release.version} of {release.project.name} spells its version "
            f"'{release.version}', and so must its files: name the file "
            f"'{prefix}-{release.version}{rest}'."
        )


def _sha256(data: bytes | None) -> str:
    return hashlib.sha256(data).hexdigest() if data is not None else ""
