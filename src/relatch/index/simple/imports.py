"""Put an existing distribution file into the index from the operator's shell.

For operators moving packages in (and for end-to-end tests that need a populated server). No
account is involved, so no SecurityEvent: the upload API is the path for people.
"""

import hashlib
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.core.files import File as DjangoFile
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from packaging.metadata import parse_email
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_version,
    parse_sdist_filename,
    parse_wheel_filename,
)

from relatch.accounts.models import User
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.index.changes import mark_project_changed, mark_project_list_changed
from relatch.index.models import File, Project, Release, Role, UsedFilename
from relatch.index.names import normalize_project_name
from relatch.index.upload.storage import file_storage_path


class ImportRefusedError(Exception):
    """The file cannot be imported; ``str(error)`` says why."""


@dataclass(frozen=True)
class _Parsed:
    name: str
    version: str
    packagetype: str
    python_version: str
    metadata: bytes


def _wheel_metadata(source: Path) -> bytes:
    with zipfile.ZipFile(source) as archive:
        for member in archive.namelist():
            parts = member.split("/")
            if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
                return archive.read(member)
    raise ImportRefusedError(f"{source.name}: the wheel has no .dist-info/METADATA")


def _sdist_metadata(source: Path) -> bytes:
    with tarfile.open(source) as archive:
        for member in archive.getmembers():
            parts = member.name.split("/")
            if len(parts) == 2 and parts[1] == "PKG-INFO" and member.isfile():
                extracted = archive.extractfile(member)
                if extracted is not None:
                    return extracted.read()
    raise ImportRefusedError(f"{source.name}: the sdist has no PKG-INFO")


def _parse(source: Path) -> _Parsed:
    try:
        if source.name.endswith(".whl"):
            name, version, _build, tags = parse_wheel_filename(source.name)
            python = ".".join(sorted({tag.interpreter for tag in tags}))
            return _Parsed(name, str(version), "bdist_wheel", python, _wheel_metadata(source))
        name, version = parse_sdist_filename(source.name)
        return _Parsed(name, str(version), "sdist", "source", _sdist_metadata(source))
    except (InvalidWheelFilename, InvalidSdistFilename, zipfile.BadZipFile,
            tarfile.TarError) as error:
        raise ImportRefusedError(f"{source.name}: {error}") from error


def _release_fields(metadata: bytes) -> dict[str, object]:
    raw, _unparsed = parse_email(metadata)
    urls = dict(raw.get("project_urls", {}))
    return {
        "summary": raw.get("summary", "")[:512],
        "description": raw.get("description", ""),
        "description_content_type": raw.get("description_content_type", ""),
        "requires_python": raw.get("requires_python", ""),
        "author": raw.get("author", ""),
        "author_email": raw.get("author_email", ""),
        "maintainer": raw.get("maintainer", ""),
        "maintainer_email": raw.get("maintainer_email", ""),
        "license": raw.get("license", ""),
        "home_page": raw.get("home_page", ""),
        "project_urls": urls,
    }


def _digests(source: Path) -> tuple[str, str]:
    sha256, blake2 = hashlib.sha256(), hashlib.blake2b(digest_size=32)
    with source.open("rb") as stream:
        while block := stream.read(1024 * 1024):
            sha256.update(block)
            blake2.update(block)
    return sha256.hexdigest(), blake2.hexdigest()


def _store(name: str, content: DjangoFile) -> None:
    if default_storage.save(name, content) != name:
        raise ImportRefusedError(f"storage already holds {name}")


@transaction.atomic
def import_distribution(
    *, source: Path, project_name: str | None = None, owner: User | None = None
) -> File:
    """Add the wheel or sdist at ``source`` to the index (project and release made as needed).

    The project and version come from the file name; ``project_name`` sets the display name of
    a new project, and ``owner`` becomes an owner of it (an event on their account says so).
    A file name ever used before is refused, as for uploads.
    """
    parsed = _parse(source)
    normalized = normalize_project_name(parsed.name)
    if project_name and normalize_project_name(project_name) != normalized:
        raise ImportRefusedError(f"{source.name} is not a file of {project_name}")
    if UsedFilename.objects.filter(filename__iexact=source.name).exists():
        raise ImportRefusedError(f"{source.name} was uploaded before")
    project, new_project = Project.objects.get_or_create(
        normalized_name=normalized, defaults={"name": project_name or parsed.name}
    )
    fields = _release_fields(parsed.metadata)
    release, _ = Release.objects.get_or_create(
        project=project, canonical_version=canonicalize_version(parsed.version),
        defaults={"version": parsed.version, **fields},
    )
    sha256, blake2 = _digests(source)
    path = file_storage_path(sha256, source.name)
    with source.open("rb") as stream:
        _store(path, DjangoFile(stream))
    metadata_digest = ""
    if parsed.packagetype == "bdist_wheel":
        _store(path + ".metadata", ContentFile(parsed.metadata))
        metadata_digest = hashlib.sha256(parsed.metadata).hexdigest()
    file = File.objects.create(
        release=release, filename=source.name, packagetype=parsed.packagetype,
        python_version=parsed.python_version, requires_python=str(fields["requires_python"]),
        size=source.stat().st_size, sha256_digest=sha256, blake2_256_digest=blake2, path=path,
        metadata_sha256_digest=metadata_digest,
    )
    UsedFilename.objects.create(filename=source.name, project_name=project.name)
    if owner is not None:
        _make_owner(project, owner)
    mark_project_changed(project_id=project.pk)
    if new_project:
        mark_project_list_changed()
    return file


def _make_owner(project: Project, owner: User) -> None:
    role, created = Role.objects.get_or_create(
        project=project, user=owner, defaults={"kind": Role.Kind.OWNER}
    )
    if created:
        record_event(
            user=owner,
            kind=EventKind.ROLE_CHANGED,
            details={"project": project.name, "role": role.kind, "by": "operator import"},
        )
