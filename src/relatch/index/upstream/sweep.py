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

from collections.abc import Iterable
from datetime import timedelta

from relatch.index.upload.sweep import (
    DEFAULT_MIN_AGE,
    OnOrphan,
    StoredTree,
    SweepResult,
    sweep_tree,
)
from relatch.index.upstream.models import UpstreamFile

UPSTREAM_DIR = "upstream"
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
    tree = StoredTree(UPSTREAM_DIR, OWN_DIRECTORY_DEPTH, _referenced, "upstream orphan")
    return sweep_tree(tree, older_than=older_than, dry_run=dry_run, on_orphan=on_orphan)


def _referenced(names: Iterable[str]) -> set[str]:
    return set(UpstreamFile.objects.filter(storage_name__in=list(names))
               .values_list("storage_name", flat=True))
