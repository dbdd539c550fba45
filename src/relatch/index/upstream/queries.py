"""Reads of stored upstream files, for the download view."""

from datetime import datetime
from typing import NamedTuple

from relatch.index.upstream.documents import UPSTREAM_PREFIX
from relatch.index.upstream.models import UpstreamFile
from relatch.index.upstream.services import METADATA_SUFFIX

_OCTETS = "application/octet-stream"
_METADATA_TYPE = "text/plain; charset=utf-8"


class StoredFile(NamedTuple):
    storage_name: str
    sha256: str
    content_type: str
    stored_at: datetime  # its Last-Modified: the bytes never change after they are stored


def content_type_of(path: str) -> str:
    return _METADATA_TYPE if path.endswith(METADATA_SUFFIX) else _OCTETS


def stored_file(path: str) -> StoredFile | None:
    """The upstream file stored for /files/<path>; None when ``path`` is no upstream path or
    the file was not fetched yet. No query for paths outside upstream/."""
    if not path.startswith(UPSTREAM_PREFIX):
        return None
    row = (UpstreamFile.objects.filter(url_path=path)
           .values_list("storage_name", "sha256", "stored_at").first())
    if row is None:
        return None
    return StoredFile(row[0], row[1], content_type_of(path), row[2])
