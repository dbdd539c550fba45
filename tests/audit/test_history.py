"""The security history page (issue 2 §8, ASVS 16.3.1): the owner's events, newest first."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import RequestFactory
from django.urls import reverse

from relatch.accounts.models import User
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


def only_events(user: User, count: int) -> None:
    """Replace the user's history with ``count`` events, one minute apart, oldest first."""
    SecurityEvent.objects.filter(user=user).delete()
    for i in range(count):
        event_at(user, EventKind.SIGNIN_FAILED, START + timedelta(minutes=i), details={"n": i})


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


def test_history_is_paginated_newer_and_older(signed_in, user):
    only_events(user, 30)

    first = signed_in.get(HISTORY)
    second = signed_in.get(HISTORY, {"page": 2})

    assert len(first.context["events"]) == HISTORY_PAGE_SIZE == 25
    assert [e.created_at for e in first.context["events"]][0] == START + timedelta(minutes=29)
    assert "Older events" in first.content.decode()
    assert "Newer events" not in first.content.decode()
    assert "Page 1 of 2" in first.content.decode()
    assert len(second.context["events"]) == 5
    assert second.context["events"][-1].created_at == START
    assert "Newer events" in second.content.decode()
    assert "Older events" not in second.content.decode()


@pytest.mark.parametrize(
    ("page", "expected"),
    [("abc", 1), ("", 1), ("1.5", 1), ("0", 2), ("-1", 2), ("3", 2), ("9" * 40, 2), ("%00", 1)],
)
def test_a_bad_page_number_shows_the_first_or_last_page(signed_in, user, page, expected):
    only_events(user, 30)
    response = signed_in.get(HISTORY, {"page": page})
    assert response.status_code == 200
    assert response.context["page"].number == expected


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
