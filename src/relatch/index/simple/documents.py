"""The simple pages themselves: PEP 503 HTML and PEP 691/700 JSON, built as plain strings.

String assembly rather than templates: the project list can hold 200 000 names and is streamed,
and every value goes through ``escape`` (HTML) or ``json.dumps`` (JSON) on its way in.

``escape`` is the standard library's ``html.escape``: the same five characters as Django's
(``& < > " '``, quotes included, so a value can never leave its attribute), without the lazy-string
wrapper Django's adds, which cost a third of /simple/'s time. Every value here is a ``str`` from
the database; none is marked safe.
"""

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from html import escape
from typing import Any, NamedTuple

from django.conf import settings

from relatch.index.simple.queries import FileRow

# PEP 700 (1.1): versions, size and upload-time; PEP 792 (1.4): project-status. What 1.2
# and 1.3 add (PEP 708 tracks, PEP 740 provenance) is optional and left out.
API_VERSION = "1.4"


def site_path(path: str) -> str:
    """``path`` ("/files/...") under the path the site is served at (settings.BASE_PATH,
    relatch.web.path_prefix): from settings, never from the request, so a page kept in the
    cache is right for every request."""
    return settings.BASE_PATH + path


def file_path(path: str) -> str:
    """The download path of the file stored as ``path``, below the site's path."""
    return "/files/" + path


def file_url(path: str) -> str:
    """The download URL of the file stored as ``path`` (a path from the host's root)."""
    return site_path(file_path(path))


def upload_time(moment: datetime) -> str:
    """PEP 700: ISO 8601 in UTC with a "Z"."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ProjectStatus(NamedTuple):
    """PEP 792: the project's status ("active", "archived", "deprecated"; a quarantined
    project has no page) and the reason given, possibly empty."""

    status: str = "active"
    reason: str = ""


ACTIVE = ProjectStatus()


def _status_meta(status: ProjectStatus) -> str:
    meta = f'    <meta name="pypi:project-status" content="{escape(status.status)}">\n'
    if status.reason:
        meta += f'    <meta name="pypi:project-status-reason" content="{escape(status.reason)}">\n'
    return meta


def _html_head(title: str, status: ProjectStatus | None = None) -> str:
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        + (_status_meta(status) if status is not None else "")
        + f"    <title>{escape(title)}</title>\n  </head>\n  <body>\n"
        f"    <h1>{escape(title)}</h1>\n"
    )


HTML_TAIL = "  </body>\n</html>\n"


def index_html(projects: Iterable[tuple[str, str]]) -> Iterator[str]:
    """/simple/ as PEP 503 HTML, one chunk per project."""
    yield _html_head("Simple index")
    base = escape(site_path("/simple/"))
    for name, normalized in projects:
        yield f'    <a href="{base}{escape(normalized)}/">{escape(name)}</a><br>\n'
    yield HTML_TAIL


def index_json(projects: Iterable[tuple[str, str]]) -> Iterator[str]:
    """/simple/ as PEP 691 JSON, streamed: the list is written one entry at a time."""
    yield json.dumps({"meta": {"api-version": API_VERSION}})[:-1] + ', "projects": ['
    separator = ""
    for name, _normalized in projects:
        yield separator + json.dumps({"name": name})
        separator = ", "
    yield "]}\n"


def _file_attributes(file: FileRow) -> list[str]:
    attributes = [f'href="{escape(file_url(file.path))}#sha256={escape(file.sha256_digest)}"']
    if requires_python := file.requires_python:
        attributes.append(f'data-requires-python="{escape(requires_python)}"')
    if file.yanked:
        # PEP 592: present means yanked; the value is the reason, possibly empty.
        attributes.append(f'data-yanked="{escape(file.yanked_reason)}"')
    if file.metadata_sha256_digest:
        # PEP 714 renamed the attribute; pip before 23.2 only knows the old name.
        value = f"sha256={escape(file.metadata_sha256_digest)}"
        attributes += [f'data-dist-info-metadata="{value}"', f'data-core-metadata="{value}"']
    return attributes


def project_html(
    title_name: str, files: Iterable[FileRow], status: ProjectStatus = ACTIVE
) -> str:
    """/simple/<project>/ as PEP 503 HTML, with PEP 592, PEP 714 and PEP 792 attributes."""
    links = "".join(
        f"    <a {' '.join(_file_attributes(file))}>{escape(file.filename)}</a><br>\n"
        for file in files
    )
    return _html_head(f"Links for {title_name}", status) + links + HTML_TAIL


def _yanked_value(file: FileRow) -> bool | str:
    if not file.yanked:
        return False
    return file.yanked_reason or True


def file_json(file: FileRow) -> dict[str, Any]:
    """One file of a PEP 691 project page, with the PEP 700 and PEP 714 keys."""
    metadata: bool | dict[str, str] = (
        {"sha256": file.metadata_sha256_digest} if file.metadata_sha256_digest else False
    )
    entry: dict[str, Any] = {
        "filename": file.filename,
        "url": file_url(file.path),
        "hashes": {"sha256": file.sha256_digest},
        "yanked": _yanked_value(file),
        # PEP 714: JSON has only the new key. pip 22.3 to 23.1 crash on the old one's dict
        # value ("unhashable type: 'dict'"); the old name lives on in HTML only.
        "core-metadata": metadata,
        "size": file.size,
        "upload-time": upload_time(file.uploaded_at),
    }
    if requires_python := file.requires_python:
        entry["requires-python"] = requires_python  # PEP 691: a string when present
    return entry


def _status_json(status: ProjectStatus) -> dict[str, str]:
    return {"status": status.status, **({"reason": status.reason} if status.reason else {})}


def project_json(
    normalized_name: str, versions: list[str], files: Iterable[FileRow],
    status: ProjectStatus = ACTIVE,
) -> str:
    """/simple/<project>/ as PEP 691 JSON (api-version 1.4: PEP 700 and PEP 792 keys)."""
    return json.dumps({
        "meta": {"api-version": API_VERSION},
        "name": normalized_name,
        "project-status": _status_json(status),
        "versions": versions,
        "files": [file_json(file) for file in files],
    })
