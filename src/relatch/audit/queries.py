"""Reads of the security history for pages."""

from dataclasses import dataclass

# Any user model's base, not relatch.accounts' User: audit sits below accounts (the apps
# import one way, tests/test_import_order.py), so rows are written by the user's id.
from django.contrib.auth.base_user import AbstractBaseUser as User
from django.db.models import Q, QuerySet

from relatch.audit.cursors import Position, history_cursor, history_position
from relatch.audit.models import SecurityEvent

HISTORY_PAGE_SIZE = 25


@dataclass(frozen=True)
class HistoryPage:
    """Some of an account's events, newest first, with cursors for the pages either side
    (None when there is no such page)."""

    events: list[SecurityEvent]
    newer_cursor: str | None
    older_cursor: str | None


def security_history_page(
    *, user: User, before: str | None = None, after: str | None = None
) -> HistoryPage:
    """One page of the user's security events, newest first: those just older than the
    ``before`` cursor, just newer than the ``after`` one, or the newest. A bad cursor, or both,
    gives the newest page.

    Keyset paging: each page is one index range scan of ``event_user_time_id`` from the
    cursor, LIMIT 26 (the 26th only tells whether another page exists). No COUNT(*) and no
    OFFSET, so page 1000 of a 100 k-event history costs what the first page costs.
    """
    events = SecurityEvent.objects.filter(user_id=user.pk)
    page = _page_at_cursor(user, events, before=before, after=after)
    # Only a hand-edited link leads past either end (events are never deleted): the newest.
    if page is None or not page.events:
        shown, more = _up_to_a_page(events.order_by("-created_at", "-id"))
        page = _page(user, shown, has_newer=False, has_older=more)
    return page


def _page_at_cursor(
    user: User, events: QuerySet[SecurityEvent], *, before: str | None, after: str | None
) -> HistoryPage | None:
    cursor = before if after is None else after if before is None else None
    position = history_position(user=user, cursor=cursor) if cursor else None
    if position is None:
        return None
    if before is not None:
        return _older_than(user, events, position)
    return _newer_than(user, events, position)


def _older_than(user: User, events: QuerySet[SecurityEvent], at: Position) -> HistoryPage:
    # The plain bound on created_at lets the scan start at the cursor; ties on it go by id,
    # so events sharing a timestamp are neither skipped nor repeated at a page boundary.
    older = events.filter(created_at__lte=at.created_at).filter(
        Q(created_at__lt=at.created_at) | Q(id__lt=at.id)
    )
    shown, more = _up_to_a_page(older.order_by("-created_at", "-id"))
    return _page(user, shown, has_newer=True, has_older=more)


def _newer_than(user: User, events: QuerySet[SecurityEvent], at: Position) -> HistoryPage:
    newer = events.filter(created_at__gte=at.created_at).filter(
        Q(created_at__gt=at.created_at) | Q(id__gt=at.id)
    )
    # Read oldest first from the cursor (the same index, backwards), shown newest first.
    shown, more = _up_to_a_page(newer.order_by("created_at", "id"))
    return _page(user, shown[::-1], has_newer=more, has_older=True)


def _up_to_a_page(ordered: QuerySet[SecurityEvent]) -> tuple[list[SecurityEvent], bool]:
    """A page of events, and whether more follow (one more row read, never counted)."""
    rows = list(ordered[: HISTORY_PAGE_SIZE + 1])
    return rows[:HISTORY_PAGE_SIZE], len(rows) > HISTORY_PAGE_SIZE


def _page(
    user: User, shown: list[SecurityEvent], *, has_newer: bool, has_older: bool
) -> HistoryPage:
    return HistoryPage(
        events=shown,
        newer_cursor=history_cursor(user=user, event=shown[0]) if has_newer and shown else None,
        older_cursor=history_cursor(user=user, event=shown[-1]) if has_older and shown else None,
    )
