"""Where an upload's body waits while it is checked, and what a killed upload leaves there
(issue 18 §10).

Django writes a file field larger than FILE_UPLOAD_MAX_MEMORY_SIZE to a temporary file, and
deletes it when the request ends. A web process killed in between (kill -9, the OOM killer,
gunicorn's timeout) deletes nothing: with the system's /tmp shared by everyone, those files
stayed for ever (~300 MB after 7 kills) and nobody could tell them from other programs' files.
Here they go to a directory of Relatch's own (settings.FILE_UPLOAD_TEMP_DIR, under the data
directory), made when first needed, where everything is an upload's and where
``remove_upload_leftovers`` clears what dead processes left.

A full disk while the body is written (ENOSPC, or EDQUOT: the account's quota) is the server's
state, not the upload's fault: the view answers 503 with Retry-After (``is_no_room``), and the
handler removes its partial file at once so the space comes back.
"""

import errno
import logging
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler

logger = logging.getLogger(__name__)

# The errors of a full disk or an exhausted quota: the server has no room now.
NO_ROOM_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# The daily sweep removes files older than this. Nothing in flight is that old: a request's
# body must arrive within the body timeouts and gunicorn kills a request after 120 s, so an
# older file belongs to a process that is gone.
LEFTOVER_AGE = timedelta(hours=6)


def upload_temp_dir() -> Path:
    """The directory upload bodies are written to (settings.FILE_UPLOAD_TEMP_DIR)."""
    return Path(settings.FILE_UPLOAD_TEMP_DIR)


def is_no_room(error: OSError) -> bool:
    """Whether ``error`` says the disk (or the quota) is full."""
    return error.errno in NO_ROOM_ERRNOS


class UploadTempFileHandler(TemporaryFileUploadHandler):
    """Django's handler for large file fields, writing to Relatch's own directory (made when
    missing, readable by this account only: an upload is unpublished code) and removing its
    partial file as soon as a write fails (a full disk gets the space back at once; Django
    would keep the file open until the request object is collected)."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        upload_temp_dir().mkdir(mode=0o700, parents=True, exist_ok=True)
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        try:
            super().receive_data_chunk(raw_data, start)
        except OSError:
            self.upload_interrupted()
            raise
        return None

    def file_complete(self, file_size: int) -> UploadedFile | None:
        try:
            return super().file_complete(file_size)  # the seek flushes the last bytes
        except OSError:
            self.upload_interrupted()
            raise


@dataclass(frozen=True)
class LeftoversRemoved:
    """What ``remove_upload_leftovers`` removed."""

    files: int = 0
    bytes: int = 0


def remove_upload_leftovers(*, older_than: timedelta = timedelta(0)) -> LeftoversRemoved:
    """Remove the files in the upload directory last modified more than ``older_than`` ago.

    At ``relatch serve`` start no request is in flight, so everything there is left by a
    process that died (the default, 0, removes it all). While serving, only files older than
    ``LEFTOVER_AGE`` may go (the daily sweep): a younger one may be a live upload's, which the
    storage moves into place when it is published. Each removal is logged; a missing directory
    is nothing to do.
    """
    cutoff = time.time() - older_than.total_seconds()
    removed, removed_bytes = 0, 0
    try:
        entries = list(os.scandir(upload_temp_dir()))
    except FileNotFoundError:
        return LeftoversRemoved()
    for entry in entries:
        size = _leftover_size(entry, cutoff)
        if size is None:
            continue
        try:
            Path(entry.path).unlink()
        except FileNotFoundError:
            continue  # its upload finished (or another sweep took it) meanwhile
        logger.info("Removed an upload's leftover temporary file %s (%d bytes)", entry.path, size)
        removed, removed_bytes = removed + 1, removed_bytes + size
    return LeftoversRemoved(removed, removed_bytes)


def _leftover_size(entry: os.DirEntry[str], cutoff: float) -> int | None:
    """The size of ``entry`` if it is a leftover to remove: a file (or a link, never followed)
    last modified before ``cutoff``; None otherwise (directories are not Django's)."""
    try:
        if not (entry.is_file(follow_symlinks=False) or entry.is_symlink()):
            return None
        status = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None
    return status.st_size if status.st_mtime <= cutoff else None
