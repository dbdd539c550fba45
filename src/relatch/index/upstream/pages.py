"""Reading an upstream project page (PEP 691 JSON or PEP 503 HTML) into kept page data.

The kept data is a plain dict (``UpstreamPage.data``)::

    {"name": "Sample-Pkg", "versions": ["1.0"], "files": [
        {"filename": ..., "url": ..., "sha256": ..., "requires_python": "", "yanked": False,
         "core_metadata": "<sha256 or empty>", "size": 123 or None, "upload_time": str or None}]}

Only what can be checked is kept: a file without a SHA-256 is left out (Relatch checks every
fetched file against it), so is a PEP 658 metadata file without one (``core_metadata`` empty:
installers then read the wheel itself), a URL that is not http(s) and a file name with a
path in it.
"""

import json
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)

from relatch.index.upstream.client import without_credentials

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Wheel and sdist names (PEP 427, PEP 625, and older sdists' local versions).
_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!~-]{0,298}", re.ASCII)
_MAX_TEXT = 500  # requires-python, yank reasons: longer values are cut


class PageFormatError(ValueError):
    """The upstream's answer is not a project page Relatch can read."""


def is_sha256(value: str) -> bool:
    """A SHA-256 as pages and Relatch's URLs write it: 64 lowercase hex digits."""
    return bool(_SHA256.fullmatch(value))


def _sha256(value: object) -> str:
    text = str(value).lower() if isinstance(value, str) else ""
    return text if _SHA256.fullmatch(text) else ""


def plain_filename(name: object) -> str:
    """The name if it is one a distribution file can have (no path, no URL or HTML syntax,
    safe as a storage name); '' otherwise."""
    if not isinstance(name, str):
        return ""
    name = name.strip()
    return name if _FILENAME.fullmatch(name) and ".." not in name else ""


def _file_url(base: str, href: str) -> str:
    """The absolute http(s) URL of a link, without fragment or credentials ('' if none)."""
    url = urldefrag(urljoin(base, href)).url
    return without_credentials(url) if urlsplit(url).scheme in {"http", "https"} else ""


def _yanked(value: object) -> bool | str:
    """PEP 592/691: False, True, or the reason."""
    if isinstance(value, str):
        return value[:_MAX_TEXT] or True
    return bool(value)


def _entry(filename: object, url: str, sha256: str, **fields: Any) -> dict[str, Any] | None:
    name = plain_filename(filename)
    if not name or not url or not sha256:
        return None
    return {"filename": name, "url": url, "sha256": sha256, **fields}


def _version(filename: str) -> str | None:
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def _page(name: str, files: list[dict[str, Any]], versions: list[str] | None) -> dict[str, Any]:
    if versions is None:
        versions = sorted({v for f in files if (v := _version(f["filename"])) is not None})
    return {"name": name, "versions": versions, "files": files}


def parse_page(body: bytes, content_type: str, url: str, fallback_name: str) -> dict[str, Any]:
    """The kept data of an upstream page, from its body and Content-Type."""
    if content_type.split(";")[0].strip().lower() == JSON_TYPE:
        return parse_json(body, url, fallback_name)
    return parse_html(body, url, fallback_name)


def parse_json(body: bytes, url: str, fallback_name: str) -> dict[str, Any]:
    """PEP 691 JSON (with PEP 700's versions, size and upload-time when present)."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise PageFormatError(f"not JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("files"), list):
        raise PageFormatError("a JSON page without a list of files")
    files = [e for item in document["files"] if (e := _json_entry(item, url)) is not None]
    versions = document.get("versions")
    if not (isinstance(versions, list) and all(isinstance(v, str) for v in versions)):
        versions = None
    name = document.get("name")
    return _page(name if isinstance(name, str) else fallback_name, files, versions)


def _json_entry(item: object, base: str) -> dict[str, Any] | None:
    if not isinstance(item, dict) or not isinstance(item.get("url"), str):
        return None
    hashes = item.get("hashes")
    metadata = item.get("core-metadata", item.get("dist-info-metadata"))
    size = item.get("size")
    upload_time = item.get("upload-time")
    requires_python = item.get("requires-python")
    return _entry(
        item.get("filename"), _file_url(base, item["url"]),
        _sha256(hashes.get("sha256")) if isinstance(hashes, dict) else "",
        requires_python=requires_python[:_MAX_TEXT] if isinstance(requires_python, str) else "",
        yanked=_yanked(item.get("yanked", False)),
        core_metadata=_sha256(metadata.get("sha256")) if isinstance(metadata, dict) else "",
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        upload_time=upload_time[:40] if isinstance(upload_time, str) else None,
    )


class _Links(HTMLParser):
    """The <a> elements of a PEP 503 page: (attributes, text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open, self._text = dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.links.append((self._open, "".join(self._text)))
            self._open = None


def _hash_value(value: str | None) -> str:
    """``sha256=<hex>`` (a fragment, or a PEP 658/714 attribute) → the hex digest."""
    name, _, digest = (value or "").partition("=")
    return _sha256(digest) if name.strip().lower() == "sha256" else ""


def parse_html(body: bytes, url: str, fallback_name: str) -> dict[str, Any]:
    """PEP 503 HTML, with PEP 592 (yanked), PEP 345 requires-python and PEP 658/714."""
    parser = _Links()
    try:
        parser.feed(body.decode("utf-8"))
        parser.close()
    except UnicodeDecodeError as error:
        raise PageFormatError(f"not UTF-8: {error}") from None
    files = [e for attrs, text in parser.links if (e := _html_entry(attrs, text, url))]
    return _page(fallback_name, files, None)


def _html_entry(attrs: dict[str, str | None], text: str, base: str) -> dict[str, Any] | None:
    href = attrs.get("href") or ""
    metadata = attrs.get("data-core-metadata", attrs.get("data-dist-info-metadata"))
    yanked: bool | str = False
    if "data-yanked" in attrs:
        yanked = (attrs["data-yanked"] or "")[:_MAX_TEXT] or True
    # PEP 503: the text is the file's name; the URL's last part when a page leaves it out.
    filename = text.strip() or unquote(urlsplit(href).path.rsplit("/", 1)[-1])
    return _entry(
        filename, _file_url(base, href), _hash_value(urlsplit(href).fragment),
        requires_python=(attrs.get("data-requires-python") or "")[:_MAX_TEXT],
        yanked=yanked, core_metadata=_hash_value(metadata), size=None, upload_time=None,
    )


def find_file(data: dict[str, Any], filename: str, sha256: str) -> dict[str, Any] | None:
    """The kept page's entry for ``filename`` with that digest, if the page lists it."""
    return next(
        (f for f in data.get("files", []) if f["filename"] == filename and f["sha256"] == sha256),
        None,
    )
