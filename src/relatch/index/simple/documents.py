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
from typing import Any

from relatch.index.simple.queries import FileRow

API_VERSION = "1.1"  # PEP 700: versions, size and upload-time are present
FILES_PREFIX = "/files/"


def file_url(path: str) -> str:
    """The download URL of the file stored as ``path``."""
    return FILES_PREFIX + path


def upload_time(moment: datetime) -> str:
    """PEP 700: ISO 8601 in UTC with a "Z"."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _html_head(title: str) -> str:
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        f"    <title>{escape(title)}</title>\n  </head>\n  <body>\n"
        f"    <h1>{escape(title)}</h1>\n"
    )


HTML_TAIL = "  </body>\n</html>\n"


def index_html(projects: Iterable[tuple[str, str]]) -> Iterator[str]:
    """/simple/ as PEP 503 HTML, one chunk per project."""
    yield _html_head("Simple index")
    for name, normalized in projects:
        yield f'    <a href="/simple/{escape(normalized)}/">{escape(name)}</a><br>\n'
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


def project_html(title_name: str, files: Iterable[FileRow]) -> str:
    """/simple/<project>/ as PEP 503 HTML, with PEP 592 and PEP 714 attributes."""
    links = "".join(
        f"    <a {' '.join(_file_attributes(file))}>{escape(file.filename)}</a><br>\n"
        for file in files
    )
    return _html_head(f"Links for {title_name}") + links + HTML_TAIL


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


def project_json(normalized_name: str, versions: list[str], files: Iterable[FileRow]) -> str:
    """/simple/<project>/ as PEP 691 JSON (api-version 1.1)."""
    return json.dumps({
        "meta": {"api-version": API_VERSION},
        "name": normalized_name,
        "versions": versions,
        "files": [file_json(file) for file in files],
    })
