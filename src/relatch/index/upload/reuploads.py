"""A file name used before (issue 20 §4): the same bytes again are a skipped upload, anything
else under that name is refused.

CI jobs re-run: a second ``twine upload`` of the same files must succeed (PyPI and devpi answer
200 for the same bytes, and twine 7 refuses ``--skip-existing`` for other indexes). It changes
nothing and is recorded as UPLOAD_SKIPPED. It is answered only after every check of who is
uploading (the token, its scope, the account's second factor and freeze, the uploader's role
on the project) and of the form and file name, so someone without upload rights learns nothing
from it (they get the same 403 as for any other file), and after the file's digests are
computed from the bytes received (never from the form's word).

A name is still never reused for other bytes, nor after its file is deleted, even with the
same bytes (PyPI's rule): installers and caches may hold the old file under that name, and a
deleted file was usually deleted for a reason.
"""

from django.db import transaction
from django.db.models.functions import Lower
from django.http import HttpRequest

from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.index.models import File, Project, UsedFilename
from relatch.index.upload.publisher import Publisher
from relatch.index.upload.validation import UploadRefusedError

NEW_VERSION = "A file name can be used only once: upload a new version instead."


def identical_file(*, filename: str, sha256: str, project: Project | None) -> File | None:
    """The project's file of this name (compared without case, as names are reserved) if it
    holds exactly these bytes."""
    if project is None:
        return None
    found = (
        File.objects.select_related("release__project")
        .filter(release__project=project, filename__iexact=filename).first()
    )
    return found if found is not None and found.sha256_digest == sha256 else None


def refuse_used_name(*, filename: str, sha256: str) -> None:
    """Refuse (400 "File already exists", what twine's --skip-existing looks for) a name that
    was used before for other bytes, or whose file was deleted."""
    used = UsedFilename.objects.annotate(lower=Lower("filename")).filter(lower=filename.lower())
    if not used.exists():
        return
    held = File.objects.filter(filename__iexact=filename).first()
    if held is None:
        raise UploadRefusedError(
            f"File already exists: '{filename}' was uploaded before and has been deleted. A "
            "deleted file's name is never used again, not even for the same bytes: installers "
            f"may have cached the old file. {NEW_VERSION}"
        )
    raise UploadRefusedError(
        f"File already exists: '{filename}' is already in this index with other contents "
        f"(sha256 {held.sha256_digest[:16]}…, this upload's is {sha256[:16]}…). {NEW_VERSION}"
    )


def already_exists(filename: str) -> UploadRefusedError:
    """The refusal when another upload took the name between the checks and the commit."""
    return UploadRefusedError(
        f"File already exists: '{filename}' was uploaded by another upload just now. "
        f"{NEW_VERSION}"
    )


@transaction.atomic
def record_skip(*, request: HttpRequest | None, publisher: Publisher, file: File) -> None:
    """UPLOAD_SKIPPED on the uploader's account, and the token's use: nothing else changes."""
    publisher.note_use(request=request)
    release = file.release
    record_event(
        user=publisher.user, kind=EventKind.UPLOAD_SKIPPED, request=request,
        factor=publisher.factor,
        details={"filename": file.filename, "project": release.project.name,
                 "version": release.version, "sha256": file.sha256_digest,
                 **publisher.file_event_details()},
    )
