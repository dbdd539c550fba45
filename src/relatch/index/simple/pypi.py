"""``/pypi/<project>/json`` in the shape PyPI's JSON API gives it."""

from typing import Any

from django.conf import settings

from relatch.index.models import File, Project, Release
from relatch.index.simple.documents import file_url, upload_time
from relatch.index.simple.queries import sort_versions


def _absolute(path: str) -> str:
    # Built from the configured base URL, never from the request's Host header.
    return settings.BASE_URL + path


def _file_dict(file: File, release: Release) -> dict[str, Any]:
    return {
        "comment_text": "",
        "digests": {"sha256": file.sha256_digest, "blake2b_256": file.blake2_256_digest},
        "downloads": -1,
        "filename": file.filename,
        "has_sig": False,
        "packagetype": file.packagetype,
        "python_version": file.python_version,
        "requires_python": file.requires_python or release.requires_python or None,
        "size": file.size,
        "upload_time": file.uploaded_at.strftime("%Y-%m-%dT%H:%M:%S"),
        "upload_time_iso_8601": upload_time(file.uploaded_at),
        "url": _absolute(file_url(file.path)),
        "yanked": release.yanked,
        "yanked_reason": release.yanked_reason or None,
    }


def _info(project: Project, release: Release) -> dict[str, Any]:
    extra = release.extra_metadata or {}
    project_page = _absolute(f"/project/{project.normalized_name}/")
    return {
        "name": project.name,
        "version": release.version,
        "summary": release.summary,
        "description": release.description,
        "description_content_type": release.description_content_type or None,
        "requires_python": release.requires_python or None,
        "author": release.author,
        "author_email": release.author_email,
        "maintainer": release.maintainer,
        "maintainer_email": release.maintainer_email,
        "license": release.license,
        "home_page": release.home_page or None,
        "project_urls": release.project_urls or None,
        "keywords": extra.get("keywords") or "",
        "classifiers": extra.get("classifiers") or [],
        "requires_dist": extra.get("requires_dist") or None,
        "yanked": release.yanked,
        "yanked_reason": release.yanked_reason or None,
        "package_url": project_page,
        "project_url": project_page,
        "release_url": _absolute(f"/project/{project.normalized_name}/{release.version}/"),
    }


def _files_of(release: Release) -> list[dict[str, Any]]:
    return [_file_dict(file, release) for file in release.files.all()]


def project_document(project: Project, releases: list[Release], latest: Release) -> dict[str, Any]:
    """The whole project: info of ``latest``, every release's files, and ``latest``'s files."""
    by_version = {release.version: release for release in releases}
    return {
        "info": _info(project, latest),
        "last_serial": project.pk,
        "releases": {
            version: _files_of(by_version[version])
            for version in sort_versions(list(by_version))
        },
        "urls": _files_of(latest),
        "vulnerabilities": [],
    }


def release_document(project: Project, release: Release) -> dict[str, Any]:
    """One version, as PyPI's /pypi/<project>/<version>/json (without "releases")."""
    return {
        "info": _info(project, release),
        "last_serial": project.pk,
        "urls": _files_of(release),
        "vulnerabilities": [],
    }
