"""The account page: name, addresses, password, sessions, history and the security check-up
(issue 2 §10)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from relatch.accounts.models import Email, User
from relatch.accounts.overview.checkup import (
    CheckupItem,
    failed_signins_check,
    password_check,
    primary_address_check,
    second_address_check,
    security_checkup,
    sessions_check,
)
from relatch.audit.models import EventKind, SecurityEvent
from tests.conftest import sign_in
from tests.mfa.factor_rows import add_codes, add_key

pytestmark = pytest.mark.django_db

OVERVIEW = reverse("account:overview")
NAME = reverse("account:name")


def add_address(user: User, address: str, *, verified: bool) -> Email:
    return Email.objects.create(
        user=user,
        address=address,
        verified=verified,
        verified_at=timezone.now() if verified else None,
    )


def name_events(user: User) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(user=user, kind=EventKind.NAME_CHANGED))


def test_page_shows_name_addresses_and_links(signed_in, user):
    add_address(user, "alice@work.example", verified=False)

    response = signed_in.get(OVERVIEW)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Alice Liddell" in page
    assert "alice@example.org" in page and "alice@work.example" in page
    assert "Primary" in page and "Not verified" in page
    for name in ["emails:manage", "passwords:change", "sessions:list", "account:history"]:
        assert f'href="{reverse(name)}"' in page
    assert "Account created" in page  # the latest events
    assert "1 browser signed in" in page


@pytest.mark.parametrize(
    ("submitted", "stored"),
    [
        ("Alice Pleasance Liddell", "Alice Pleasance Liddell"),
        ("  Alice P. Liddell  ", "Alice P. Liddell"),
        ("", ""),  # a name is optional
        ("A" * 100, "A" * 100),
        ("Zoë Ñúñez 李", "Zoë Ñúñez 李"),
    ],
)
def test_name_change_is_saved_and_recorded(signed_in, user, submitted, stored):
    response = signed_in.post(NAME, {"name": submitted}, follow=True)

    assert response.redirect_chain == [(OVERVIEW, 302)]
    assert "Your name was updated" in response.content.decode()
    user.refresh_from_db()
    assert user.name == stored
    [event] = name_events(user)
    assert event.details == {"old": "Alice Liddell", "new": stored}


@pytest.mark.parametrize(
    ("submitted", "reason"),
    [
        ("A" * 101, "at most 100 characters (this one has 101)"),
        ("Alice\nAdmin", "line breaks or control characters"),
        ("Alice\x1b[31m", "line breaks or control characters"),
        ("Alice\x00", "Null characters are not allowed"),
    ],
)
def test_a_bad_name_is_refused_with_the_reason(signed_in, user, submitted, reason):
    response = signed_in.post(NAME, {"name": submitted})

    assert response.status_code == 400
    assert reason in response.content.decode()
    user.refresh_from_db()
    assert user.name == "Alice Liddell"
    assert name_events(user) == []


def test_submitting_the_same_name_again_records_nothing(signed_in, user):
    signed_in.post(NAME, {"name": "Alice L."})
    again = signed_in.post(NAME, {"name": "Alice L."}, follow=True)
    assert "Your name is unchanged" in again.content.decode()
    assert len(name_events(user)) == 1


def test_name_is_changed_only_by_post_with_csrf_token(signed_in, user):
    assert signed_in.get(NAME, {"name": "Mallory"}).status_code == 405
    strict = sign_in(Client(enforce_csrf_checks=True), user)
    assert strict.post(NAME, {"name": "Mallory"}).status_code == 403
    user.refresh_from_db()
    assert user.name == "Alice Liddell"
    assert name_events(user) == []


def test_anonymous_visitors_are_sent_to_sign_in(client):
    for response in [client.get(OVERVIEW), client.post(NAME, {"name": "x"})]:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("signin:login"))


def test_an_account_without_a_verified_address_is_sent_to_verify_one(client, make_user):
    """Issue 2 §5: an unverified-only account can only verify or replace its address."""
    sign_in(client, make_user(username="typo", verified=False))
    response = client.get(OVERVIEW)
    assert response.status_code == 302
    assert response["Location"] == reverse("emails:manage")


# --- the security check-up ---------------------------------------------------------------


def failures_and_successes(user: User, kinds: list[EventKind]) -> None:
    start = timezone.now() - timedelta(hours=1)
    for i, kind in enumerate(kinds):
        SecurityEvent.objects.create(user=user, kind=kind, created_at=start + timedelta(minutes=i))


def test_primary_address_check(user):
    assert primary_address_check(user).ok
    assert "alice@example.org is verified" in primary_address_check(user).title
    add_address(user, "alice@work.example", verified=True)
    user.emails.filter(address="alice@example.org").update(verified=False, verified_at=None)
    item = primary_address_check(user)
    assert not item.ok and item.title == "Your primary address is not verified"


@pytest.mark.parametrize(
    ("second", "ok"), [(None, False), ("unverified", False), ("verified", True)]
)
def test_second_address_check(user, second, ok):
    """NIST N10: at least two notification addresses; the check-up recommends a second."""
    if second:
        add_address(user, "alice@work.example", verified=second == "verified")
    item = second_address_check(user)
    assert item.ok is ok
    assert item.title == ("You have 2 verified addresses" if ok else "Add a second email address")
    assert item.href == reverse("emails:manage")


def test_password_check(user):
    item = password_check(user)
    assert item.ok and item.href == reverse("passwords:change")
    user.set_unusable_password()
    user.save()
    item = password_check(user)
    assert not item.ok
    assert item.title == "Your account has no usable password"
    assert "password reset" in item.advice


def _plural(n: int) -> str:
    return f"{n} failed sign-in{'s' if n != 1 else ''}"


@pytest.mark.parametrize(
    ("history", "failed"),
    [
        ([], 0),
        # Failures just before the owner's own (latest) sign-in are still shown.
        ([EventKind.SIGNIN_FAILED, EventKind.SIGNIN_SUCCEEDED], 1),
        ([EventKind.SIGNIN_FAILED, EventKind.SIGNIN_SUCCEEDED, EventKind.SIGNIN_SUCCEEDED], 0),
        ([EventKind.SIGNIN_FAILED] * 2, 2),  # never signed in: all count
        (
            [
                EventKind.SIGNIN_FAILED,
                EventKind.SIGNIN_SUCCEEDED,
                EventKind.SIGNIN_FAILED,
                EventKind.REAUTH_FAILED,
                EventKind.SIGNIN_SUCCEEDED,
                EventKind.SIGNIN_FAILED,
                EventKind.SIGNIN_FAILED,
            ],
            3,
        ),
    ],
)
def test_failed_signins_since_the_previous_signin(user, make_user, history, failed):
    """ASVS 6.3.5: the owner hears about failed attempts since their previous sign-in."""
    failures_and_successes(user, history)
    failures_and_successes(make_user(username="bob"), [EventKind.SIGNIN_FAILED] * 4)
    item = failed_signins_check(user)
    assert item.ok is (failed == 0)
    if failed:
        assert item.title == f"{_plural(failed)} since your previous sign-in"
        assert "If that wasn't you" in item.advice and "change your password" in item.advice
        assert item.href == reverse("passwords:change")


def test_one_failed_signin_is_said_in_the_singular(user):
    failures_and_successes(user, [EventKind.SIGNIN_SUCCEEDED] * 2 + [EventKind.SIGNIN_FAILED])
    assert failed_signins_check(user).title == "1 failed sign-in since your previous sign-in"


def test_sessions_check(make_client, user):
    sign_in(make_client(), user)
    assert sessions_check(user).ok
    sign_in(make_client(), user)
    item = sessions_check(user)
    assert not item.ok
    assert item.title == "2 browsers are signed in to your account"
    assert "Review your sessions" in item.advice
    assert item.href == reverse("sessions:list")


def test_items_that_need_action_come_first(user):
    items = security_checkup(user=user)
    assert [item.ok for item in items] == sorted(item.ok for item in items)
    assert items[0].title == "Add a second email address"
    assert all(isinstance(item, CheckupItem) for item in items)


def test_page_check_up_follows_the_account_state(signed_in, user):
    # Issue 3's factor checks are satisfied, so this test follows the foundation's checks.
    add_key(user, "Desk key")
    add_codes(user)

    def sections() -> tuple[list[str], list[str]]:
        response = signed_in.get(OVERVIEW)
        page = response.content.decode()
        to_do = [item.title for item in response.context["to_do"]]
        protections = [item.title for item in response.context["protections"]]
        for title in to_do + protections:
            assert title in page
        assert ("What to do next" in page) is bool(to_do)
        assert ("Nothing needs your attention" in page) is not bool(to_do)
        return to_do, protections

    to_do, protections = sections()
    assert to_do == ["Add a second email address"]
    assert "Your account has a password" in protections

    add_address(user, "alice@work.example", verified=True)
    to_do, protections = sections()
    assert to_do == []
    assert "You have 2 verified addresses" in protections

    failures_and_successes(user, [EventKind.SIGNIN_SUCCEEDED] + [EventKind.SIGNIN_FAILED] * 3)
    to_do, _ = sections()
    assert to_do == ["3 failed sign-ins since your previous sign-in"]
