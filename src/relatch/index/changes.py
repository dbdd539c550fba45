"""Change markers: what the installer pages' ETags and page-cache keys are derived from.

Counters, not clocks. A project's ``generation`` and the index's ``IndexState.generation``
only ever grow, one step per change, in the transaction of the change: a clock stepped back
(NTP) or two changes within one clock tick can never give a changed page the ETag of an older
one, so neither a client's 304 nor a cached body survives a change.

Each marker is an UPDATE, which holds its row locked until the commit: callers mark as late
in their transaction as they can, and only the list's changes touch the index's one row.
Once the change commits, the index's change stamp (``relatch.index.change_stamp``) is
rewritten, which sends every web process of the host back to these counters, and on
PostgreSQL a notification sent in the transaction does the same on every other host
(``relatch.index.change_listener``).

Every change also inserts a JournalEntry, whose id is the index's global serial (PyPI's
``last_serial`` and ``X-PyPI-Last-Serial``, which mirrors poll): an insert, never an update of
one shared row, so uploads to different projects never wait for each other. A changed
project's ``last_serial`` is its entry's id, set in the same UPDATE as its generation.
"""

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from relatch.index.change_listener import notify_other_hosts
from relatch.index.change_stamp import index_change_stamp
from relatch.index.models import IndexState, JournalEntry, Project, new_epoch


def _announce_after_commit() -> None:
    # After, not before: a process that saw the new stamp before the commit could read the
    # old counters and then trust them under the new stamp.
    transaction.on_commit(index_change_stamp().bump)
    # Other hosts sharing a PostgreSQL database hear of it when it commits, not before
    # (relatch.index.change_listener); part of the transaction, so a rollback sends nothing.
    notify_other_hosts()


def _journal(*, project_name: str, action: str) -> int:
    """A new global serial: the id of a new JournalEntry."""
    entry = JournalEntry.objects.create(project_name=project_name[:200], action=action[:100])
    return entry.pk


def mark_project_changed(
    *, project_id: int, project_name: str | None = None, action: str = "change"
) -> int:
    """The project's pages (simple, PyPI JSON) changed: upload, yank, un-yank, delete, import,
    a status change. Returns the change's serial.

    Call in the change's transaction. ``last_changed_at`` follows for people to read.
    ``project_name`` saves a lookup when the caller has it; ``action`` is what the journal
    says happened (PyPI's words: "new release", "add file", "yank release", …)."""
    if project_name is None:
        project_name = _name_of(project_id)
    serial = _journal(project_name=project_name, action=action)
    Project.objects.filter(pk=project_id).update(
        generation=F("generation") + 1, last_changed_at=timezone.now(), last_serial=serial
    )
    _announce_after_commit()
    return serial


def _name_of(project_id: int) -> str:
    name = Project.objects.filter(pk=project_id).values_list("name", flat=True).first()
    return name or ""


def mark_project_list_changed(*, project_name: str = "", action: str = "list change") -> int:
    """A project was made, deleted or hidden: /simple/ lists other names. Call in the change's
    transaction, as its last write (the index's row stays locked until the commit). Returns
    the change's serial (its journal entry; a project's own ``last_serial`` moves with
    mark_project_changed, which such a change also calls)."""
    serial = _journal(project_name=project_name, action=action)
    bumped = IndexState.objects.filter(pk=IndexState.ROW_ID).update(
        generation=F("generation") + 1
    )
    _announce_after_commit()
    if not bumped:
        # The row was lost (a restore, a hand-made database): a new one, with a new epoch,
        # changes every ETag, which is what this change needs anyway.
        ensure_index_state()
    return serial


def ensure_index_state() -> IndexState:
    """The index's row, made anew (with a new epoch) when it is missing. Two requests racing
    to make it are fine: get_or_create reads the winner's row on the loser's IntegrityError."""
    state, _ = IndexState.objects.get_or_create(
        pk=IndexState.ROW_ID, defaults={"epoch": new_epoch()}
    )
    return state
