"""``/pypi/<project>/json`` in the shape PyPI's JSON API (Warehouse) gives it.

Fields Relatch has no data for are there with PyPI's own placeholder values (``downloads``
-1, ``bugtrack_url`` and ``docs_url`` null, ``vulnerabilities`` empty), so tools that index
into them do not fail. ``md5_digest`` and ``ownership`` are left out: no MD5 is kept, and
the owners are on the project page.

Each file says how it was published (``uploaded_via``, issue 21): by a trusted publisher
(which repository and workflow), with an API token (never which: a token's name is private to
its account), by the operator's import, or null for files uploaded before Relatch kept this.
"""

from typing import Any

from django.conf import settings

from relatch.index.models import File, Project, Release
from relatch.index.simple.documents import file_path, upload_time
from relatch.index.simple.queries import sort_versions
from relatch.index.trusted.describe import publisher_data

# Part of the documents' ETags and cache keys: a change of what a document says must not be
# answered with a body, or a 304, made before it (``relatch.index.simple.views``).
DOCUMENT_FORMAT = "2"
# What the JSON API says of a trusted publisher: no row id (it means nothing outside).
_PUBLIC_PUBLISHER_KEYS = ("kind", "issuer", "repository", "workflow", "environment", "url")


def _absolute(path: str) -> str:
    # Built from the configured base URL, never from the request's Host header. ``path`` is
    # below the site's path, which BASE_URL ends with (https://example.org/pypi).
    return settings.BASE_URL + path


def _file_dict(file: File, release: Release) -> dict[str, Any]:
    return {
        "comment_text": "",
        # PEP 658 / PEP 714, as PyPI's JSON gives it: the digest of the file's METADATA
        # served beside it, or false.
        "core-metadata": (
            {"sha256": file.metadata_sha256_digest} if file.metadata_sha256_digest else False
        ),
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
        "uploaded_via": uploaded_via(file),
        "url": _absolute(file_path(file.path)),
        "yanked": release.yanked,
        "yanked_reason": release.yanked_reason or None,
    }


def uploaded_via(file: File) -> dict[str, Any] | None:
    """How ``file`` was published, for anyone who may read the project: the trusted
    publisher's repository and workflow, or only the kind of way in."""
    if file.trusted_publisher is not None:
        data = publisher_data(file.trusted_publisher)
        return {"kind": "trusted_publisher",
                "publisher": {key: data[key] for key in _PUBLIC_PUBLISHER_KEYS}}
    if file.upload_token_id is not None or file.uploaded_via == File.Via.API_TOKEN:
        return {"kind": "api_token"}
    if file.uploaded_via == File.Via.OPERATOR_IMPORT:
        return {"kind": "operator_import"}
    return None


def _listed(extra: dict[str, Any], *keys: str) -> list[str] | None:
    """A repeated metadata field kept in extra_metadata (under the first of ``keys`` found:
    twine's form name or packaging's), as PyPI gives it: a list, or null when empty."""
    for key in keys:
        value = extra.get(key)
        if isinstance(value, list) and value:
            return [str(item) for item in value]
        if isinstance(value, str) and value:
            return [value]
    return None


def _text(extra: dict[str, Any], key: str) -> str | None:
    value = extra.get(key)
    return str(value) if value else None


def _info(project: Project, release: Release) -> dict[str, Any]:
    extra = release.extra_metadata if isinstance(release.extra_metadata, dict) else {}
    project_page = _absolute(f"/project/{project.normalized_name}/")
    platforms = _listed(extra, "platform", "platforms")
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
        # PEP 639
        "license_expression": _text(extra, "license_expression"),
        "license_files": _listed(extra, "license_file", "license_files"),
        "home_page": release.home_page or None,
        "download_url": _text(extra, "download_url"),
        "project_urls": release.project_urls or None,
        "keywords": extra.get("keywords") or "",
        "classifiers": _listed(extra, "classifiers") or [],
        "platform": ", ".join(platforms) if platforms else None,
        "requires_dist": _listed(extra, "requires_dist"),
        "provides_extra": _listed(extra, "provides_extra"),
        # PEP 643
        "dynamic": _listed(extra, "dynamic"),
        "yanked": release.yanked,
        "yanked_reason": release.yanked_reason or None,
        "package_url": project_page,
        "project_url": project_page,
        "release_url": _absolute(f"/project/{project.normalized_name}/{release.version}/"),
        # PyPI's placeholders: it keeps no download counts, and bugtrack_url is always null.
        "bugtrack_url": None,
        "docs_url": None,
        "downloads": {"last_day": -1, "last_month": -1, "last_week": -1},
    }


def _files_of(release: Release) -> list[dict[str, Any]]:
    return [_file_dict(file, release) for file in release.files.all()]


def project_document(project: Project, releases: list[Release], latest: Release) -> dict[str, Any]:
    """The whole project: info of ``latest``, every release's files, and ``latest``'s files."""
    by_version = {release.version: release for release in releases}
    return {
        "info": _info(project, latest),
        "last_serial": project.last_serial,
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
        "last_serial": project.last_serial,
        "urls": _files_of(release),
        "vulnerabilities": [],
    }
