"""Removing stored files that no File row references (issue 7's orphans).

An upload saves its file before its transaction commits; a kill -9 between the two leaves the
bytes in storage with no row. They are never served (downloads go through File rows), but they
take disk space for ever. The sweep walks ``packages/`` one directory at a time, looks the
files up in chunks by the unique ``File.path`` (never one set of every row), and removes the
unreferenced ones, with their PEP 658 ``.metadata`` siblings, once they are old enough that no
upload can still be about to commit them.
"""

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import batched

from django.core.files.storage import default_storage
from django.utils import timezone

from relatch.index.models import File
from relatch.index.upload.storage import metadata_path

logger = logging.getLogger(__name__)

PACKAGES_DIR = "packages"
# An upload in flight has saved its file but not yet committed its row; a large one takes
# minutes. A day is far beyond any upload, and an orphan costs nothing but space meanwhile.
DEFAULT_MIN_AGE = timedelta(days=1)
# Paths looked up per query: a few hundred keeps each IN (...) small and the queries few.
LOOKUP_CHUNK = 500
METADATA_SUFFIX = metadata_path("")
# packages/ab/cd/<digest>/<file>: only the <digest> directory is the file's own; the two fan-out
# levels above it are shared with other uploads, which may be creating files in them right now.
OWN_DIRECTORY_DEPTH = 4

type OnOrphan = Callable[[str, int], None]


@dataclass
class SweepResult:
    """What a sweep found. In a dry run, ``removed`` and ``removed_bytes`` say what it would
    have removed; nothing was."""

    dry_run: bool
    scanned: int = 0
    too_recent: int = 0
    removed: int = 0
    removed_bytes: int = 0
    directories_removed: int = 0


def added(first: SweepResult, second: SweepResult) -> SweepResult:
    """The counts of two sweeps of one run (``packages/`` and ``upstream/``) together."""
    return SweepResult(
        dry_run=first.dry_run, scanned=first.scanned + second.scanned,
        too_recent=first.too_recent + second.too_recent, removed=first.removed + second.removed,
        removed_bytes=first.removed_bytes + second.removed_bytes,
        directories_removed=first.directories_removed + second.directories_removed,
    )


def sweep_orphan_files(
    *, older_than: timedelta = DEFAULT_MIN_AGE, dry_run: bool = False,
    on_orphan: OnOrphan | None = None,
) -> SweepResult:
    """Remove files under ``packages/`` that no File row references (a ``.metadata`` file
    counts as referenced when its distribution is) and that were last modified more than
    ``older_than`` ago. Each removal is logged (path and size) and passed to ``on_orphan``."""
    tree = StoredTree(PACKAGES_DIR, OWN_DIRECTORY_DEPTH, _referenced, "orphan file")
    return sweep_tree(tree, older_than=older_than, dry_run=dry_run, on_orphan=on_orphan)


@dataclass(frozen=True)
class StoredTree:
    """A part of storage whose files each belong to a row: where it is, how deep a file's own
    directory is (the levels above are shared with other writers), and which names rows
    reference (a name counts as referenced when it or its ``_owner`` is in the answer)."""

    directory: str
    own_directory_depth: int
    referenced: Callable[[Iterable[str]], set[str]]
    label: str


def sweep_tree(
    tree: StoredTree, *, older_than: timedelta, dry_run: bool, on_orphan: OnOrphan | None
) -> SweepResult:
    """Remove ``tree``'s unreferenced files older than ``older_than``, looked up in chunks
    (never one set of every row); the sweep of ``packages/`` and of ``upstream/``."""
    cutoff = timezone.now() - older_than
    result = SweepResult(dry_run=dry_run)
    for chunk in batched(_old_files(tree.directory, cutoff, result), LOOKUP_CHUNK):
        referenced = tree.referenced(chunk)
        for name in chunk:
            if _owner(name) not in referenced and name not in referenced:
                _remove_orphan(name, tree=tree, cutoff=cutoff, result=result,
                               on_orphan=on_orphan)
    logger.info("Sweep of %s/%s: %s", tree.directory, " (dry run)" if dry_run else "", result)
    return result


def _walk(directory: str) -> Iterator[str]:
    """Every file under ``directory``, one listing at a time (depth first, sorted)."""
    flat = getattr(default_storage, "walk", None)
    if flat is not None:  # a bucket lists every key under a prefix, a thousand a request
        yield from flat(directory)
        return
    try:
        subdirectories, files = default_storage.listdir(directory)
    except FileNotFoundError:
        return
    for name in sorted(files):
        yield f"{directory}/{name}"
    for name in sorted(subdirectories):
        yield from _walk(f"{directory}/{name}")


def _old_files(directory: str, cutoff: datetime, result: SweepResult) -> Iterator[str]:
    """Files modified before ``cutoff``; younger ones are counted and left alone unread."""
    for name in _walk(directory):
        result.scanned += 1
        if _modified_before(name, cutoff):
            yield name
        else:
            result.too_recent += 1


def _modified_before(name: str, cutoff: datetime) -> bool:
    try:
        return default_storage.get_modified_time(name) < cutoff
    except FileNotFoundError:  # removed meanwhile (a release deleted, a sibling swept)
        return False


def _owner(name: str) -> str:
    """The distribution a stored file belongs to: itself, or the wheel of its METADATA."""
    return name.removesuffix(METADATA_SUFFIX)


def _referenced(names: Iterable[str]) -> set[str]:
    """Which of ``names`` (or their owners) are some File row's path; one indexed query."""
    wanted = {candidate for name in names for candidate in (name, _owner(name))}
    return set(File.objects.filter(path__in=wanted).values_list("path", flat=True))


def _remove_orphan(
    name: str, *, tree: StoredTree, cutoff: datetime, result: SweepResult,
    on_orphan: OnOrphan | None,
) -> None:
    # Checked again right before the removal: the same bytes may have been uploaded (and the
    # old file replaced by a fresh one) since the chunk was looked up.
    if not _modified_before(name, cutoff) or tree.referenced([name]):
        return
    size = default_storage.size(name)
    if not result.dry_run:
        default_storage.delete(name)
        result.directories_removed += _remove_empty_directory(name, tree.own_directory_depth)
    logger.info("%s %s %s (%d bytes)", "Would remove" if result.dry_run else "Removed",
                tree.label, name, size)
    result.removed += 1
    result.removed_bytes += size
    if on_orphan is not None:
        on_orphan(name, size)


def _remove_empty_directory(name: str, own_depth: int) -> int:
    """Remove the file's own directory once it is empty (file-system storages only: object
    stores have no directories); 1 if it was removed."""
    directory = os.path.dirname(name)  # noqa: PTH120 — a storage name, not a local path
    if directory.count("/") + 1 < own_depth:
        return 0
    try:
        os.rmdir(default_storage.path(directory))  # noqa: PTH106 — fails unless empty
    except (NotImplementedError, OSError):
        return 0
    return 1
