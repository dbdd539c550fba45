"""Removing stored upstream copies that no UpstreamFile row references.

A first download saves its copy before its row commits; a kill -9 between the two, or a row
that lost the race for its unique ``url_path`` whose delete failed, leaves bytes under
``upstream/`` that are never served. This walks ``upstream/`` one directory at a time, looks
the names up in chunks by ``UpstreamFile.storage_name`` and removes the unreferenced ones
once they are older than the grace period (a large first download can take many minutes
between saving its copy and committing its row).

Counted in the same ``SweepResult`` as the ``packages/`` sweep
(``relatch.index.upload.sweep``), so the command and the task can add the two.
"""

import logging
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import batched

from django.core.files.storage import default_storage
from django.utils import timezone

from relatch.index.upload.sweep import DEFAULT_MIN_AGE, OnOrphan, SweepResult
from relatch.index.upstream.models import UpstreamFile

logger = logging.getLogger(__name__)

UPSTREAM_DIR = "upstream"
LOOKUP_CHUNK = 500
# upstream/ab/cd/<rest of digest>/<random>/<file>: the <random> directory is the copy's own
# (services._storage_name); the levels above are shared with other copies.
OWN_DIRECTORY_DEPTH = 5


def sweep_upstream_orphans(
    *, older_than: timedelta = DEFAULT_MIN_AGE, dry_run: bool = False,
    on_orphan: OnOrphan | None = None,
) -> SweepResult:
    """Remove files under ``upstream/`` that no UpstreamFile row's ``storage_name`` names and
    that were last modified more than ``older_than`` ago; each removal logged and passed to
    ``on_orphan``. A dry run only counts."""
    cutoff = timezone.now() - older_than
    result = SweepResult(dry_run=dry_run)
    for chunk in batched(_old_files(cutoff, result), LOOKUP_CHUNK):
        referenced = _referenced(chunk)
        for name in chunk:
            if name not in referenced:
                _remove(name, cutoff=cutoff, result=result, on_orphan=on_orphan)
    logger.info("Upstream orphan sweep%s: %s", " (dry run)" if dry_run else "", result)
    return result


def _walk(directory: str) -> Iterator[str]:
    try:
        subdirectories, files = default_storage.listdir(directory)
    except FileNotFoundError:
        return
    for name in sorted(files):
        yield f"{directory}/{name}"
    for name in sorted(subdirectories):
        yield from _walk(f"{directory}/{name}")


def _modified_before(name: str, cutoff: datetime) -> bool:
    try:
        return default_storage.get_modified_time(name) < cutoff
    except FileNotFoundError:
        return False


def _old_files(cutoff: datetime, result: SweepResult) -> Iterator[str]:
    for name in _walk(UPSTREAM_DIR):
        result.scanned += 1
        if _modified_before(name, cutoff):
            yield name
        else:
            result.too_recent += 1


def _referenced(names: tuple[str, ...] | list[str]) -> set[str]:
    return set(UpstreamFile.objects.filter(storage_name__in=names)
               .values_list("storage_name", flat=True))


def _remove(name: str, *, cutoff: datetime, result: SweepResult,
            on_orphan: OnOrphan | None) -> None:
    # Checked again right before removing: a row may have committed since the chunk's query.
    if not _modified_before(name, cutoff) or _referenced([name]):
        return
    size = default_storage.size(name)
    if not result.dry_run:
        default_storage.delete(name)
        result.directories_removed += _remove_own_directory(name)
    logger.info("%s upstream orphan %s (%d bytes)",
                "Would remove" if result.dry_run else "Removed", name, size)
    result.removed += 1
    result.removed_bytes += size
    if on_orphan is not None:
        on_orphan(name, size)


def _remove_own_directory(name: str) -> int:
    """The copy's own directory, once empty (file-system storages only)."""
    directory = os.path.dirname(name)  # noqa: PTH120 — a storage name, not a local path
    if directory.count("/") + 1 < OWN_DIRECTORY_DEPTH:
        return 0
    try:
        os.rmdir(default_storage.path(directory))  # noqa: PTH106 — fails unless empty
    except (NotImplementedError, OSError):
        return 0
    return 1
