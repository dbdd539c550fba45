"""Change markers: what the installer pages' ETags and page-cache keys are derived from.

Counters, not clocks. A project's ``generation`` and the index's ``IndexState.generation``
only ever grow, one step per change, in the transaction of the change: a clock stepped back
(NTP) or two changes within one clock tick can never give a changed page the ETag of an older
one, so neither a client's 304 nor a cached body survives a change.

Each marker is an UPDATE, which holds its row locked until the commit: callers mark as late
in their transaction as they can, and only the list's changes touch the index's one row.
Once the change commits, the index's change stamp (``relatch.index.change_stamp``) is
rewritten, which sends every web process of the host back to these counters.
"""

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from relatch.index.change_stamp import index_change_stamp
from relatch.index.models import IndexState, Project, new_epoch


def _announce_after_commit() -> None:
    # After, not before: a process that saw the new stamp before the commit could read the
    # old counters and then trust them under the new stamp.
    transaction.on_commit(index_change_stamp().bump)


def mark_project_changed(*, project_id: int) -> None:
    """The project's pages (simple, PyPI JSON) changed: upload, yank, un-yank, delete, import.

    Call in the change's transaction. ``last_changed_at`` follows for people to read."""
    Project.objects.filter(pk=project_id).update(
        generation=F("generation") + 1, last_changed_at=timezone.now()
    )
    _announce_after_commit()


def mark_project_list_changed() -> None:
    """A project was made or deleted: /simple/ lists other names. Call in the change's
    transaction, as its last write (the index's row stays locked until the commit)."""
    bumped = IndexState.objects.filter(pk=IndexState.ROW_ID).update(
        generation=F("generation") + 1
    )
    _announce_after_commit()
    if not bumped:
        # The row was lost (a restore, a hand-made database): a new one, with a new epoch,
        # changes every ETag, which is what this change needs anyway.
        ensure_index_state()


def ensure_index_state() -> IndexState:
    """The index's row, made anew (with a new epoch) when it is missing. Two requests racing
    to make it are fine: get_or_create reads the winner's row on the loser's IntegrityError."""
    state, _ = IndexState.objects.get_or_create(
        pk=IndexState.ROW_ID, defaults={"epoch": new_epoch()}
    )
    return state
