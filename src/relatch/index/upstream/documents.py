"""The pages Relatch serves for an upstream project, from its kept data: the same forms as
local pages (``relatch.index.simple.documents``), every file linked to Relatch's own
/files/upstream/<project>/<sha256>/<filename>, never to the upstream."""

import json
from html import escape
from typing import Any

from relatch.index.simple.documents import API_VERSION, HTML_TAIL, file_url

UPSTREAM_PREFIX = "upstream/"


def upstream_path(project: str, sha256: str, filename: str) -> str:
    """What follows /files/ in the URL of an upstream file (names are checked when the page
    is read: relatch.index.upstream.pages)."""
    return f"{UPSTREAM_PREFIX}{project}/{sha256}/{filename}"


def _href(project: str, entry: dict[str, Any]) -> str:
    return file_url(upstream_path(project, entry["sha256"], entry["filename"]))


def _attributes(project: str, entry: dict[str, Any]) -> list[str]:
    attributes = [f'href="{escape(_href(project, entry))}#sha256={escape(entry["sha256"])}"']
    if entry["requires_python"]:
        attributes.append(f'data-requires-python="{escape(entry["requires_python"])}"')
    if entry["yanked"] is not False:
        reason = entry["yanked"] if isinstance(entry["yanked"], str) else ""
        attributes.append(f'data-yanked="{escape(reason)}"')
    if entry["core_metadata"]:
        value = f"sha256={escape(entry['core_metadata'])}"
        attributes += [f'data-dist-info-metadata="{value}"', f'data-core-metadata="{value}"']
    return attributes


def project_html(project: str, data: dict[str, Any]) -> str:
    """PEP 503 HTML with PEP 592 and PEP 714 attributes, as local pages have."""
    title = f"Links for {data.get('name') or project}"
    head = (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        f"    <title>{escape(title)}</title>\n  </head>\n  <body>\n"
        f"    <h1>{escape(title)}</h1>\n"
    )
    links = "".join(
        f"    <a {' '.join(_attributes(project, entry))}>{escape(entry['filename'])}</a><br>\n"
        for entry in data["files"]
    )
    return head + links + HTML_TAIL


def _file_json(project: str, entry: dict[str, Any]) -> dict[str, Any]:
    metadata = {"sha256": entry["core_metadata"]} if entry["core_metadata"] else False
    item: dict[str, Any] = {
        "filename": entry["filename"],
        "url": _href(project, entry),
        "hashes": {"sha256": entry["sha256"]},
        "yanked": entry["yanked"],
        "core-metadata": metadata,  # PEP 714: the new key only in JSON
    }
    if entry["size"] is not None:
        item["size"] = entry["size"]
    if entry["upload_time"] is not None:
        item["upload-time"] = entry["upload_time"]
    if entry["requires_python"]:
        item["requires-python"] = entry["requires_python"]
    return item


def project_json(project: str, data: dict[str, Any]) -> str:
    """PEP 691 JSON; api-version 1.1 (PEP 700) only when the upstream gave every file's size
    and upload time (an HTML upstream gives neither)."""
    files = [_file_json(project, entry) for entry in data["files"]]
    complete = all("size" in f and "upload-time" in f for f in files)
    return json.dumps({
        "meta": {"api-version": API_VERSION if complete else "1.0"},
        "name": project,
        "versions": data["versions"],
        "files": files,
    })
