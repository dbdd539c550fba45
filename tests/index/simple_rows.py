"""Rows and stored bytes for the installer-facing tests, made directly (not through the upload
API, which has tests of its own): a project, its releases, files in a private storage."""

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from packaging.utils import canonicalize_version

from relatch.accounts.models import User
from relatch.index.changes import mark_project_changed, mark_project_list_changed
from relatch.index.models import File, Project, Release, Role
from relatch.index.names import normalize_project_name
from tests.index.dists import Dist, build_wheel


def use_tmp_storage(settings: Any, directory: Path) -> None:
    """Keep this test's files in ``directory`` (Django resets default_storage on the change)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(directory), "base_url": "/files/"},
        },
    }


def publish(
    dist: Dist,
    *,
    yanked_reason: str | None = None,
    with_metadata: bool | None = None,
    uploaded_at: datetime | None = None,
) -> File:
    """Store ``dist`` and add its rows; wheels get PEP 658 metadata unless told otherwise."""
    name, version = str(dist.fields["name"]), str(dist.fields["version"])
    project, new_project = Project.objects.get_or_create(
        normalized_name=normalize_project_name(name), defaults={"name": name}
    )
    release, _ = Release.objects.get_or_create(
        project=project, canonical_version=canonicalize_version(version),
        defaults={"version": version, "summary": str(dist.fields["summary"]),
                  "requires_python": str(dist.fields["requires_python"]),
                  "description": str(dist.fields["description"]),
                  "description_content_type": "text/markdown",
                  "author_email": str(dist.fields["author_email"]),
                  "project_urls": {"Source": f"https://git.example.org/{name}"}},
    )
    if yanked_reason is not None:
        Release.objects.filter(pk=release.pk).update(yanked=True, yanked_reason=yanked_reason)
    path = f"packages/{dist.sha256}/{dist.filename}"
    default_storage.save(path, ContentFile(dist.content))
    is_wheel = dist.filename.endswith(".whl")
    metadata_digest = ""
    if with_metadata if with_metadata is not None else is_wheel:
        default_storage.save(path + ".metadata", ContentFile(dist.metadata.encode()))
        metadata_digest = hashlib.sha256(dist.metadata.encode()).hexdigest()
    file = File.objects.create(
        release=release, filename=dist.filename,
        packagetype="bdist_wheel" if is_wheel else "sdist",
        python_version="py3" if is_wheel else "source",
        requires_python=str(dist.fields["requires_python"]), size=len(dist.content),
        sha256_digest=dist.sha256, blake2_256_digest=dist.blake2_256, path=path,
        metadata_sha256_digest=metadata_digest, uploaded_at=uploaded_at or timezone.now(),
    )
    mark_project_changed(project_id=project.pk)
    if new_project:
        mark_project_list_changed()
    return file


def own_sample_pkg(user: User) -> User:
    """``user`` as owner of sample-pkg 1.0 and 1.1 (published directly, one wheel each)."""
    publish(build_wheel(version="1.0"))
    publish(build_wheel(version="1.1"))
    Role.objects.create(project=Project.objects.get(), user=user, kind=Role.Kind.OWNER)
    return user
