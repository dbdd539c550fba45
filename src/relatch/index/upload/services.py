"""Uploads: who may upload, and creating projects, releases and files (issue 4 §3).

The only place that creates projects, releases and files, for twine's uploads and for the
operator's imports alike (``publish_file``; they differ only in the Publisher, issue 16 §4).
Checks run first and change nothing; then the rows are written and the file stored in one
transaction. If storing fails the transaction rolls back; if the database fails the stored
files are deleted: no row without its file, no file without its row.
"""

import hashlib
from dataclasses import dataclass

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.http import HttpRequest, QueryDict
from django.utils import timezone
from packaging.metadata import parse_email
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from relatch.accounts.models import User
from relatch.audit.models import EventKind, Factor
from relatch.audit.services import record_event
from relatch.index.changes import mark_project_changed, mark_project_list_changed
from relatch.index.models import APIToken, File, Project, Release, Role, UsedFilename
from relatch.index.upload import storage
from relatch.index.upload.metadata import release_fields
from relatch.index.upload.publisher import Publisher
from relatch.index.upload.storage import Digests, file_storage_path
from relatch.index.upload.validation import (
    UploadForm,
    UploadRefusedError,
    check_action,
    check_filename,
    check_form,
)

__all__ = [
    "Publisher", "UploadRefusedError", "check_uploader", "file_storage_path", "publish_file",
    "record_refusal", "store_upload",
]


@dataclass(frozen=True)
class _Checked:
    form: UploadForm
    filename: str
    digests: Digests
    project: Project | None
    metadata: bytes | None


def check_uploader(*, token: APIToken) -> None:
    """Refuse (403) a token whose account has no second factor: a token is minted by someone
    who proved two factors, and stays usable only while the account keeps one. Refuse (403)
    a token of a frozen account too: a hijacker must not publish under the owner's name
    while staff review the account (DESIGN §5)."""
    Publisher.with_token(token).check()


def store_upload(
    *, request: HttpRequest | None, token: APIToken, fields: QueryDict, upload: UploadedFile
) -> File:
    """Check and store one uploaded distribution file; return its File row.

    Raises UploadRefusedError (.message, .status) and records UPLOAD_REFUSED on the token's
    account when any check fails; nothing else changes then. On success: the Project (with
    the uploader as owner, PROJECT_CREATED) on a first upload, the Release on its first file,
    the File and UsedFilename rows, the stored file and (for wheels) its METADATA, the
    project's generation (and the index's, for a new project), FILE_UPLOADED and the token's
    use.
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
) -> File:
    """Check and store one distribution file as ``publisher``; return its File row.

    The pipeline of every way in: twine's upload (``store_upload``, which also records a
    refusal on the token's account) and the operator's import
    (``relatch.index.upload.imports``). Raises UploadRefusedError when a check fails, with
    nothing changed; on success writes what ``store_upload`` says, the token's use only for a
    token.
    """
    checked = _check(publisher=publisher, fields=fields, upload=upload)
    return _store(request=request, publisher=publisher, checked=checked, upload=upload)


@transaction.atomic
def record_refusal(
    *, request: HttpRequest | None, token: APIToken, message: str, filename: str = "",
    project: str = "",
) -> None:
    """UPLOAD_REFUSED on the token's account: its owner sees what was tried with their token."""
    record_event(
        user=token.user, kind=EventKind.UPLOAD_REFUSED, request=request,
        factor=Factor.API_TOKEN,
        details={"message": message[:500], "filename": filename[:300], "project": project[:200],
                 "token_id": token.pk, "token_name": token.name},
    )


def _check(*, publisher: Publisher, fields: QueryDict, upload: UploadedFile) -> _Checked:
    publisher.check()
    check_action(fields)
    form = check_form(fields)
    project = _project_for(publisher=publisher, form=form)
    filename = upload.name or ""
    check_filename(filename, form)
    _check_filename_unused(filename)
    digests = _check_digests(form, upload)
    metadata = _check_archive(form, filename, upload)
    return _Checked(form, filename, digests, project, metadata)


def _project_for(*, publisher: Publisher, form: UploadForm) -> Project | None:
    """The existing project the upload goes to (None: a new one), if the uploader may."""
    if not publisher.may_reach(form.normalized_name):
        raise UploadRefusedError(
            f"This API token is limited to another project and cannot upload to "
            f"'{form.name}'. Use a token for this project or for all your projects.", status=403,
        )
    project = Project.objects.filter(normalized_name=form.normalized_name).first()
    if project is not None and not _may_upload(publisher.user, project):
        raise _not_allowed(project)
    return project


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


def _check_filename_unused(filename: str) -> None:
    # Never twice, even after deletion: installers may have cached the old bytes by name.
    if UsedFilename.objects.annotate(lower=Lower("filename")).filter(
        lower=filename.lower()
    ).exists():
        raise _already_exists(filename)


def _already_exists(filename: str) -> UploadRefusedError:
    # "already exists" with 400 is what twine's --skip-existing looks for.
    return UploadRefusedError(
        f"File already exists: '{filename}' was uploaded before, and a file name can be "
        "used only once, even after the file is deleted. Upload a new version instead."
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


def _check_archive(form: UploadForm, filename: str, upload: UploadedFile) -> bytes | None:
    if form.filetype == File.PackageType.SDIST:
        storage.sdist_metadata(upload, filename)  # read (bounded) to know it is an sdist
        return None
    data = storage.wheel_metadata(upload, filename)
    _check_wheel_metadata(data, form)
    return data


def _check_wheel_metadata(data: bytes, form: UploadForm) -> None:
    """The METADATA inside the wheel names the same project and version as the form: pip
    reads it (PEP 658), so a mismatch would install something other than what was shown."""
    raw, _unparsed = parse_email(data)
    name, version = str(raw.get("name", "")), str(raw.get("version", ""))
    try:
        same = canonicalize_name(name) == canonicalize_name(form.name) and (
            Version(version) == Version(form.version)
        )
    except InvalidVersion:
        same = False
    if not same:
        raise UploadRefusedError(
            f"The wheel's METADATA is for {name or '?'} {version or '?'}, not for "
            f"{form.name} {form.version}."
        )


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
            # Last: the markers' rows stay locked until the commit, and saving a large file
            # takes a while; the index's row is touched only when the project is new.
            mark_project_changed(project_id=row.release.project_id)
            if project_created:
                mark_project_list_changed()
    except IntegrityError:
        storage.delete_stored(stored)
        # The project and release are made or found race-free (_write_rows): the file name
        # is what another upload took between the check and this commit.
        raise _already_exists(checked.filename) from None
    except OSError:
        storage.delete_stored(stored)
        # The storage failed (disk full, object store down): nothing was written.
        raise UploadRefusedError(
            "The file could not be stored right now; nothing was published. Try again later.",
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
    release = _release_for(project=project, user=user, form=form)
    now = timezone.now()
    row = File.objects.create(
        release=release, filename=checked.filename, packagetype=form.filetype,
        python_version=form.pyversion, requires_python=form.single.get("requires_python", ""),
        size=checked.digests.size, sha256_digest=checked.digests.sha256,
        blake2_256_digest=checked.digests.blake2_256,
        path=file_storage_path(checked.digests.sha256, checked.filename),
        metadata_sha256_digest=_sha256(checked.metadata), uploader=user, uploaded_at=now,
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


def _release_for(*, project: Project, user: User, form: UploadForm) -> Release:
    """The release of ``form``'s version, made by the first of parallel uploads to reach it
    (the others wait for its commit and read it)."""
    release, _created = Release.objects.get_or_create(
        project=project, canonical_version=form.canonical_version,
        defaults={"version": form.version, "uploader": user, **release_fields(form)},
    )
    return release


def _sha256(data: bytes | None) -> str:
    return hashlib.sha256(data).hexdigest() if data is not None else ""
