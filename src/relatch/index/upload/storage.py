"""Where uploaded files go, and reading them without holding them in memory.

Django's upload handlers spill a request body above FILE_UPLOAD_MAX_MEMORY_SIZE to a temporary
file; everything here reads it in chunks, so a 300 MB upload costs the server a few chunks of
memory, not 300 MB.
"""

import hashlib
import logging
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

from relatch.index.upload import archives, wheels
from relatch.index.upload.validation import UploadRefusedError

logger = logging.getLogger(__name__)


def file_storage_path(sha256: str, filename: str) -> str:
    """The storage name of a file: its digest spreads files over directories, and a file name
    can never be uploaded twice, so the path is unique for ever."""
    return f"packages/{sha256[:2]}/{sha256[2:4]}/{sha256[4:]}/{filename}"


def metadata_path(path: str) -> str:
    """PEP 658: the wheel's METADATA lives beside the file, under the file's URL + ".metadata"."""
    return path + ".metadata"


class SizeLimitHandler(FileUploadHandler):
    """Stops reading a file field once it passes MAX_UPLOAD_SIZE, before it fills the disk.

    The rest of the body is still read and dropped (connection_reset=False), so the client
    gets the 413 and its message instead of a broken connection.
    """

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.received = 0
        self.exceeded = False

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > settings.MAX_UPLOAD_SIZE:
            self.exceeded = True
            raise StopUpload(connection_reset=False)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


@dataclass(frozen=True)
class Digests:
    sha256: str
    blake2_256: str
    size: int


def compute_digests(upload: UploadedFile) -> Digests:
    """SHA-256 and BLAKE2b-256 of the file, read chunk by chunk."""
    sha256 = hashlib.sha256()
    blake2 = hashlib.blake2b(digest_size=32)
    size = 0
    for chunk in upload.chunks():
        sha256.update(chunk)
        blake2.update(chunk)
        size += len(chunk)
    return Digests(sha256.hexdigest(), blake2.hexdigest(), size)


def wheel_metadata(upload: UploadedFile, filename: str) -> bytes:
    """The bytes of the wheel's ``<name>-<version>.dist-info/METADATA`` (only that member),
    read within the limits of ``relatch.index.upload.archives``."""
    dist_info = "-".join(filename.split("-")[:2]) + ".dist-info/METADATA"
    try:
        return archives.wheel_member(_stream(upload), dist_info)
    except archives.ArchiveError as error:
        raise UploadRefusedError(f"This file is not a valid wheel: {error.reason}") from None


def checked_wheel_metadata(upload: UploadedFile, filename: str) -> bytes:
    """The bytes of the wheel's METADATA, once the whole wheel is found sound (its framing,
    its one .dist-info directory, its RECORD: ``relatch.index.upload.wheels``)."""
    try:
        return wheels.checked_wheel_metadata(_stream(upload), filename)
    except archives.ArchiveError as error:
        raise UploadRefusedError(f"This file is not a valid wheel: {error.reason}") from None


def sdist_metadata(upload: UploadedFile, filename: str) -> bytes:
    """The bytes of the sdist's ``<name>-<version>/PKG-INFO``, the whole archive read within
    the limits of ``relatch.index.upload.archives``."""
    try:
        return archives.sdist_metadata(_stream(upload), filename)
    except archives.ArchiveError as error:
        raise UploadRefusedError(f"This file is not a valid sdist: {error.reason}") from None


def _stream(upload: UploadedFile) -> IO[bytes]:
    stream = upload.file
    assert stream is not None  # an upload always has its file  # noqa: S101
    return stream


def save_file(path: str, upload: UploadedFile) -> None:
    """Store the upload under ``path`` (the storage copies or moves it in chunks)."""
    _save(path, upload)


def save_metadata(path: str, data: bytes) -> None:
    _save(metadata_path(path), ContentFile(data))


def _save(name: str, content: Any) -> None:
    # The name holds the file's digest and a name never reused: a file already there is a
    # leftover of an earlier failed attempt with the same bytes, so it is replaced.
    if default_storage.exists(name):
        default_storage.delete(name)
    upload_pos = getattr(content, "seek", None)
    if upload_pos is not None:
        content.seek(0)
    saved = default_storage.save(name, content)
    if saved != name:
        default_storage.delete(saved)
        raise OSError(f"storage saved {name!r} as {saved!r}")


def delete_stored(names: list[str]) -> None:
    """Remove stored files after the database refused the rows (no orphan files). A store
    that fails now (it may be why the upload failed) leaves them to the orphan sweep, which
    removes files without rows; the upload's own refusal is what the client must see."""
    for name in names:
        try:
            default_storage.delete(name)
        except OSError as error:
            logger.warning("could not remove %s after a failed upload (the orphan sweep "
                           "will): %s", name, error)
