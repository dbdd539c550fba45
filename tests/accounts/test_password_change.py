"""Changing the password (ASVS 6.2.2, 6.2.3, 7.4.3, 7.5.1, 6.3.7; NIST N30)."""

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from relatch.accounts.models import Email, User, UserSession
from relatch.accounts.sessions.services import session_digest
from relatch.audit.models import EventKind, SecurityEvent
from tests.conftest import PASSWORD, sign_in

CHANGE = "/account/password/"
NEW = "a completely different passphrase"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def change(client: Client, current: str = PASSWORD, new: str = NEW, again: str | None = None):
    return client.post(
        CHANGE,
        {"current_password": current, "new_password1": new, "new_password2": again or new},
    )


def password_is(user: User, password: str) -> bool:
    user.refresh_from_db()
    return user.check_password(password)


def test_change_page_shows_the_form(signed_in):
    response = signed_in.get(CHANGE)
    assert response.status_code == 200
    assert "Current password" in response.text
    assert "New password again" in response.text


def test_password_change_ends_the_other_sessions_and_tells_every_address(
    signed_in, user, make_client, mail
):
    """ASVS 7.4.3 / issue 2 §7: other sessions end; ASVS 6.3.7 / NIST N9: every verified address
    hears about it, an unverified one does not."""
    Email.objects.create(
        user=user, address="alice@work.example", verified=True, verified_at=timezone.now()
    )
    Email.objects.create(user=user, address="maybe@example.net")
    other = sign_in(make_client(), user)
    response = change(signed_in)
    assert response.status_code == 302
    assert response["Location"] == "/account/"
    assert password_is(user, NEW)
    # This browser stays signed in (with a new session key and its row following it).
    assert signed_in.get(CHANGE).status_code == 200
    [row] = UserSession.objects.filter(user=user)
    assert row.session_digest == session_digest(signed_in.session.session_key)
    # The other browser is signed out.
    assert other.get(CHANGE)["Location"].startswith("/account/login/")
    [event] = SecurityEvent.objects.filter(user=user, kind=EventKind.PASSWORD_CHANGED)
    assert event.details == {"sessions_ended": 1}
    for address in ("alice@example.org", "alice@work.example"):
        message = mail.last(address)
        assert message["Subject"] == "Your Relatch password was changed"
        assert "1 other session of the account was signed out" in mail.text(message)
        assert "If this wasn't you" in mail.text(message)
        assert "If this wasn't you" in mail.html(message)
    assert mail.to("maybe@example.net") == []


def test_success_message_is_shown(signed_in):
    response = change(signed_in)
    page = signed_in.get(response["Location"])
    assert "Password changed; your other sessions were signed out" in page.text


def test_new_password_signs_in_and_the_old_one_no_longer_does(signed_in, make_client):
    change(signed_in)
    assert make_client().post(
        "/account/login/", {"identifier": "alice", "password": PASSWORD}
    ).status_code == 200
    assert make_client().post(
        "/account/login/", {"identifier": "alice", "password": NEW}
    ).status_code == 302


def test_wrong_current_password_changes_nothing(signed_in, user, mail):
    """ASVS 6.2.3: a change needs the current password; the attempt is recorded and counted."""
    response = change(signed_in, current="not my password")
    assert response.status_code == 200
    assert "Your current password is wrong." in response.text
    assert password_is(user, PASSWORD)
    assert mail.messages == []
    failed = SecurityEvent.objects.get(user=user, kind=EventKind.REAUTH_FAILED)
    assert failed.details["during"] == "password_change"
    assert not SecurityEvent.objects.filter(kind=EventKind.PASSWORD_CHANGED).exists()
    user.refresh_from_db()
    assert user.failed_signins == 1


@pytest.mark.parametrize(
    ("new", "again", "reason"),
    [
        ("short", None, "This password is too short. It must contain at least 8 characters."),
        ("password123", None, "This password is too common."),
        ("Relatch2026!", None, "built on a word attackers try first"),
        ("alice liddell", None, "too similar to the"),
        ("x" * 1025, None, "at most 1024 characters"),
        (NEW, NEW + "!", "The two passwords differ."),
    ],
)
def test_weak_or_mismatched_new_password_is_refused_with_the_reason(
    signed_in, user, new, again, reason
):
    """NIST N30: the blocklist reason is shown; nothing changes."""
    response = change(signed_in, new=new, again=again)
    assert response.status_code == 200
    assert reason in response.text
    assert password_is(user, PASSWORD)
    assert not SecurityEvent.objects.filter(kind=EventKind.PASSWORD_CHANGED).exists()


@pytest.mark.parametrize(
    "new",
    [
        "a passphrase with spaces and ünïcödé ✓",
        " leading and trailing spaces are kept ",
        "y" * 1024,
    ],
)
def test_long_passphrases_and_any_characters_are_accepted(signed_in, user, new):
    """NIST N30: no composition rules, at least 64 characters allowed, nothing truncated."""
    assert change(signed_in, new=new).status_code == 302
    assert password_is(user, new)


def test_change_needs_a_recent_password(client, user):
    """ASVS 7.5.1: a stale session is sent to confirm the password; a late POST changes nothing."""
    sign_in(client, user, reauthenticated=False)
    response = change(client)
    assert response.status_code == 302
    assert response["Location"] == "/account/reauthenticate/?next=%2Faccount%2Fpassword%2F"
    assert password_is(user, PASSWORD)


def test_anonymous_visitor_is_sent_to_sign_in(client, user):
    response = change(client)
    assert response.status_code == 302
    assert response["Location"].startswith("/account/login/")
    assert password_is(user, PASSWORD)


def test_change_without_csrf_token_is_refused(user):
    browser = sign_in(Client(enforce_csrf_checks=True), user)
    assert change(browser).status_code == 403
    assert password_is(user, PASSWORD)


def test_submitting_the_form_twice_changes_once(signed_in, user, mail):
    assert change(signed_in).status_code == 302
    second = change(signed_in)  # the old "current password" is no longer right
    assert second.status_code == 200
    assert "Your current password is wrong." in second.text
    assert password_is(user, NEW)
    assert SecurityEvent.objects.filter(kind=EventKind.PASSWORD_CHANGED).count() == 1
    assert len(mail.to("alice@example.org")) == 1


def test_a_sign_in_checked_against_the_old_password_is_not_listed_after_the_change(
    signed_in, user, make_client, monkeypatch
):
    """Issue 18 §10: a browser whose password was checked just before the change, and whose
    session was written just after the change ended the others, holds a session the change
    already ended (its auth hash is the old password's). The sessions page must not list it,
    nor count it among the sessions to end; its next request signs it out and drops its row."""
    from relatch.signin import views as signin_views

    real_check = signin_views.check_password_step

    def check_then_change_elsewhere(**kwargs):
        step = real_check(**kwargs)
        assert change(signed_in).status_code == 302  # the owner changes it in that moment
        return step

    monkeypatch.setattr(signin_views, "check_password_step", check_then_change_elsewhere)
    late = make_client()
    response = late.post("/account/login/", {"identifier": "alice", "password": PASSWORD})
    assert response.status_code == 302
    monkeypatch.undo()
    assert UserSession.objects.filter(user=user).count() == 2  # the late row was written

    page = signed_in.get("/account/sessions/")
    assert page.status_code == 200
    # The late browser completed its sign-in, so it is a trusted device, but not signed in.
    rows = page.context["devices"]
    assert [(row.is_current, row.sessions) for row in rows] == [(True, 1), (False, 0)]
    assert page.text.count("This device") == 1
    assert signed_in.get("/account/").context["session_count"] == 1
    # The late browser is signed out at its next request, and its row goes with it.
    assert late.get(CHANGE)["Location"].startswith("/account/login/")
    [row] = UserSession.objects.filter(user=user)
    assert row.session_digest == session_digest(signed_in.session.session_key)
