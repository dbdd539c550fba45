"""The security history page (issue 2 §8, ASVS 16.3.1): the owner's events, newest first."""

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from relatch.accounts.models import User
from relatch.audit import cursors
from relatch.audit.cursors import history_cursor
from relatch.audit.models import EventKind, Factor, SecurityEvent
from relatch.audit.queries import HISTORY_PAGE_SIZE
from relatch.audit.services import record_event
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db

HISTORY = reverse("account:history")
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
START = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)


def event_at(user: User, kind: EventKind, at: datetime, **kwargs) -> SecurityEvent:
    event = record_event(user=user, kind=kind, **kwargs)
    SecurityEvent.objects.filter(pk=event.pk).update(created_at=at)
    return event


def shown(response) -> list[str]:
    return [f"{e.label}@{e.created_at:%H:%M}" for e in response.context["events"]]


def test_events_are_shown_newest_first_with_their_facts(signed_in, user):
    """ASVS 16.3.1: each event with its factor, precise UTC time, IP and browser."""
    SecurityEvent.objects.filter(user=user).delete()
    request = RequestFactory().get("/", HTTP_USER_AGENT=FIREFOX_LINUX, REMOTE_ADDR="203.0.113.7")
    event_at(user, EventKind.SIGNIN_SUCCEEDED, START, request=request, factor=Factor.PASSWORD)
    event_at(
        user,
        EventKind.EMAIL_ADDED,
        START + timedelta(hours=1),
        details={"address": "alice@work.example"},
    )
    event_at(user, EventKind.PASSWORD_CHANGED, START - timedelta(days=1))

    response = signed_in.get(HISTORY)

    assert response.status_code == 200
    assert shown(response) == [
        "Email address added@06:06",
        "Signed in@05:06",
        "Password changed@05:06",
    ]
    page = response.content.decode()
    assert (
        page.index("Email address added") < page.index("Signed in") < page.index("Password changed")
    )
    assert "2026-03-04 05:06:07 UTC" in page
    assert "203.0.113.7" in page
    assert "Firefox 140 on Linux" in page
    assert ">Password<" in page  # the factor column
    assert "alice@work.example" in page


# --- paging by cursor (issue 7 §1): no total count, no OFFSET ---------------------------------


def addresses_at(user: User, times: list[datetime]) -> list[str]:
    """Replace the user's history with one event per time (never decreasing), recorded in this
    order; each shows its own address. Returns the addresses newest first: by time, then (for
    equal times) the later recorded first."""
    SecurityEvent.objects.filter(user=user).delete()
    for i, at in enumerate(times):
        event_at(user, EventKind.EMAIL_ADDED, at, details={"address": f"e{i}@example.org"})
    return [f"e{i}@example.org" for i in reversed(range(len(times)))]


def addresses_shown(response) -> list[str]:
    assert response.status_code == 200
    return [e.detail for e in response.context["events"]]


def follow(client, response, rel: str):
    """Click the page's ``rel`` link ("next": older events, "prev": newer), or None."""
    link = re.search(rf'<a rel="{rel}" href="([^"]+)"', response.content.decode())
    return client.get(HISTORY + html.unescape(link[1])) if link else None


def walk(client, response, rel: str) -> tuple[list[list[str]], object]:
    """Every page from ``response`` on, following ``rel`` links until there is none; and the
    response of the page where the links end."""
    pages = [addresses_shown(response)]
    while (following := follow(client, response, rel)) is not None:
        response = following
        pages.append(addresses_shown(response))
        assert len(pages) < 10, "the links go round in circles"
    return pages, response


@pytest.mark.parametrize(
    ("count", "apart"),
    [
        (60, lambda i: START + timedelta(minutes=i)),
        # The classic keyset bug: events sharing a timestamp across a page boundary.
        (30, lambda i: START),
        (60, lambda i: START + timedelta(minutes=i // 7)),
    ],
    ids=["a minute apart", "one shared timestamp", "in groups of seven"],
)
def test_walking_older_and_back_newer_shows_every_event_once_in_order(
    signed_in, user, count, apart
):
    history = addresses_at(user, [apart(i) for i in range(count)])

    older_wards, oldest = walk(signed_in, signed_in.get(HISTORY), "next")
    newer_wards, newest = walk(signed_in, oldest, "prev")

    assert [e for page in older_wards for e in page] == history
    assert all(len(page) == HISTORY_PAGE_SIZE for page in older_wards[:-1])
    assert newer_wards == older_wards[::-1]
    assert addresses_shown(newest) == history[:HISTORY_PAGE_SIZE]


def nav(response) -> str:
    page = response.content.decode()
    start = page.index('<nav class="pagination"')
    return page[start : page.index("</nav>", start)]


def test_only_the_pages_in_between_link_both_ways(signed_in, user):
    addresses_at(user, [START + timedelta(minutes=i) for i in range(60)])

    first, middle, last = (
        signed_in.get(HISTORY),
        follow(signed_in, signed_in.get(HISTORY), "next"),
        follow(signed_in, follow(signed_in, signed_in.get(HISTORY), "next"), "next"),
    )

    assert "Older events" in nav(first)
    assert "Newer events" not in nav(first) and "Newest" not in nav(first)
    assert all(word in nav(middle) for word in ("Newest", "Newer events", "Older events"))
    assert "Newest" in nav(last) and "Newer events" in nav(last)
    assert "Older events" not in nav(last)
    assert 'aria-label="History pages"' in first.content.decode()
    # There is no total to tell: no "Page x of y", nor a page number.
    assert not any("Page" in nav(r) for r in (first, middle, last))


@pytest.mark.parametrize(("count", "paged"), [(0, False), (1, False), (25, False), (26, True)])
def test_history_links_to_older_events_only_when_there_are_any(signed_in, user, count, paged):
    addresses_at(user, [START + timedelta(minutes=i) for i in range(count)])
    page = signed_in.get(HISTORY).content.decode()
    assert ('rel="next"' in page) is paged
    assert ('class="pagination"' in page) is paged
    assert 'rel="prev"' not in page


def signed(user: User, value: str) -> str:
    return cursors._signer(user).sign(value)


BAD_CURSORS = {
    "garbage": lambda user, bob: "garbage",
    "empty": lambda user, bob: "",
    "a NUL": lambda user, bob: "\x00",
    "unsigned": lambda user, bob: "1772600767123456.5",
    "negative": lambda user, bob: "-5.-3",
    "huge numbers": lambda user, bob: "9" * 40 + "." + "9" * 40 + ":" + "A" * 43,
    "tampered": lambda user, bob: mid_history_cursor(user).replace(".", "1.", 1),
    "another account's": lambda user, bob: history_cursor(
        user=bob, event=SecurityEvent.objects.get(user=bob)
    ),
    # Signed (as if the key had leaked): still no error page.
    "signed, past year 9999": lambda user, bob: signed(user, "9" * 19 + ".1"),
    "signed, id past bigint": lambda user, bob: signed(user, "1." + "9" * 19),
    "signed nonsense": lambda user, bob: signed(user, "nonsense"),
}


def mid_history_cursor(user: User) -> str:
    event = SecurityEvent.objects.get(user=user, details__address="e10@example.org")
    return history_cursor(user=user, event=event)


@pytest.mark.parametrize("param", ["before", "after"])
@pytest.mark.parametrize("make_cursor", BAD_CURSORS.values(), ids=BAD_CURSORS.keys())
def test_a_bad_cursor_shows_your_own_newest_page(signed_in, user, make_user, param, make_cursor):
    history = addresses_at(user, [START + timedelta(minutes=i) for i in range(30)])
    bob = make_user(username="bob")
    SecurityEvent.objects.filter(user=bob).delete()
    # Mid-way through Alice's history: taken as a position, it would show another page.
    event_at(bob, EventKind.EMAIL_ADDED, START + timedelta(minutes=10, seconds=30))

    response = signed_in.get(HISTORY, {param: make_cursor(user, bob)})

    assert addresses_shown(response) == history[:HISTORY_PAGE_SIZE]
    assert "Newer events" not in response.content.decode()


def test_a_good_cursor_in_both_directions_at_once_shows_the_newest_page(signed_in, user):
    history = addresses_at(user, [START + timedelta(minutes=i) for i in range(30)])
    cursor = mid_history_cursor(user)
    assert addresses_shown(signed_in.get(HISTORY, {"before": cursor})) == history[20:]

    response = signed_in.get(HISTORY, {"before": cursor, "after": cursor})

    assert addresses_shown(response) == history[:HISTORY_PAGE_SIZE]


@pytest.mark.parametrize("page", ["1", "2", "1000", "abc", "-1"])
def test_an_old_page_number_bookmark_shows_the_newest_page(signed_in, user, page):
    history = addresses_at(user, [START + timedelta(minutes=i) for i in range(60)])
    assert addresses_shown(signed_in.get(HISTORY, {"page": page})) == history[:HISTORY_PAGE_SIZE]


def test_a_deep_page_costs_the_queries_of_the_first(signed_in, user):
    """No COUNT(*), no OFFSET, one read of the events: the sixth page reads what the first reads."""
    addresses_at(user, [START + timedelta(seconds=i) for i in range(HISTORY_PAGE_SIZE * 5 + 1)])
    _, oldest = walk(signed_in, signed_in.get(HISTORY), "next")
    deep = HISTORY + "?" + oldest.request["QUERY_STRING"]
    signed_in.get(HISTORY)  # once, so that the per-session bookkeeping is done

    with CaptureQueriesContext(connection) as first:
        assert len(addresses_shown(signed_in.get(HISTORY))) == HISTORY_PAGE_SIZE
    with CaptureQueriesContext(connection) as deepest:
        assert addresses_shown(signed_in.get(deep)) == ["e0@example.org"]

    assert len(first) == len(deepest)
    for queries in (first, deepest):
        reads = [q["sql"] for q in queries if "audit_securityevent" in q["sql"]]
        assert len(reads) == 1
        assert "COUNT(" not in reads[0].upper() and "OFFSET" not in reads[0].upper()


def test_other_accounts_events_are_not_shown(signed_in, user, make_user):
    bob = make_user(username="bob")
    record_event(user=bob, kind=EventKind.EMAIL_ADDED, details={"address": "bob@secret.example"})
    record_event(user=user, kind=EventKind.SIGNED_OUT)

    response = signed_in.get(HISTORY)

    assert "bob@secret.example" not in response.content.decode()
    assert len(response.context["events"]) == SecurityEvent.objects.filter(user=user).count()


def test_an_account_without_events_sees_an_empty_history(signed_in, user):
    SecurityEvent.objects.filter(user=user).delete()
    response = signed_in.get(HISTORY)
    assert response.status_code == 200
    assert "No events yet" in response.content.decode()


def test_the_owner_needs_no_fresh_password_to_read_it(client, user):
    sign_in(client, user, reauthenticated=False)
    assert client.get(HISTORY).status_code == 200


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(HISTORY)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("signin:login"))


def test_an_account_without_a_verified_address_is_sent_to_verify_one(client, make_user):
    sign_in(client, make_user(username="typo", verified=False))
    response = client.get(HISTORY)
    assert response.status_code == 302
    assert response["Location"] == reverse("emails:manage")
