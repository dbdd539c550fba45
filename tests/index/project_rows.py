"""Project, role, release and file rows made directly, for the management pages' tests (the
upload that normally creates them has tests of its own)."""

import hashlib

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from packaging.utils import canonicalize_version

from relatch.accounts.models import User
from relatch.index.changes import mark_project_list_changed
from relatch.index.models import File, Project, Release, Role, UsedFilename
from relatch.index.names import normalize_project_name


def make_project(
    name: str, *, owners: tuple[User, ...] = (), maintainers: tuple[User, ...] = ()
) -> Project:
    project = Project.objects.create(name=name, normalized_name=normalize_project_name(name))
    mark_project_list_changed()
    for user in owners:
        Role.objects.create(project=project, user=user, kind=Role.Kind.OWNER)
    for user in maintainers:
        Role.objects.create(project=project, user=user, kind=Role.Kind.MAINTAINER)
    return project


def make_release(project: Project, version: str, **fields: object) -> Release:
    return Release.objects.create(
        project=project, version=version, canonical_version=canonicalize_version(version),
        **fields,
    )


def add_file(release: Release, filename: str, content: bytes = b"not a real wheel") -> File:
    """A File row whose bytes (and, for wheels, METADATA) are in default_storage."""
    sha256 = hashlib.sha256(content).hexdigest()
    path = f"packages/{sha256[:2]}/{sha256[2:4]}/{sha256[4:]}/{filename}"
    default_storage.save(path, ContentFile(content))
    wheel = filename.endswith(".whl")
    if wheel:
        default_storage.save(f"{path}.metadata", ContentFile(b"Metadata-Version: 2.1\n"))
    UsedFilename.objects.create(filename=filename, project_name=release.project.name)
    return File.objects.create(
        release=release, filename=filename, path=path, size=len(content),
        packagetype=File.PackageType.WHEEL if wheel else File.PackageType.SDIST,
        sha256_digest=sha256,
        blake2_256_digest=hashlib.blake2b(content, digest_size=32).hexdigest(),
    )
