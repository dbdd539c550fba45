"""Re-authentication before sensitive actions (ASVS 7.5.1, 7.2.4, NIST N31)."""

import pytest
from django.test import Client

from relatch.accounts.models import User, UserSession
from relatch.accounts.sessions.services import session_digest
from relatch.audit.models import EventKind, SecurityEvent
from tests.conftest import PASSWORD, sign_in

REAUTH = "/account/reauthenticate/"
PROTECTED = "/account/password/"  # passwords:change needs a recent password
THROTTLED = "Too many failed attempts for this account from new devices."


@pytest.fixture
def stale(client, user):
    """Alice signed in long enough ago that sensitive pages ask for her password again."""
    return sign_in(client, user, reauthenticated=False)


def confirm(client: Client, password: str = PASSWORD, next_url: str = PROTECTED):
    return client.post(REAUTH, {"password": password, "next": next_url})


def test_sensitive_page_sends_a_stale_session_to_reauthenticate(stale):
    response = stale.get(PROTECTED)
    assert response.status_code == 302
    assert response["Location"] == "/account/reauthenticate/?next=%2Faccount%2Fpassword%2F"
    page = stale.get(response["Location"])
    assert page.status_code == 200
    assert "Confirm your password" in page.text
    assert 'name="next" value="/account/password/"' in page.text


def test_reauthentication_returns_to_the_page_with_a_new_session_id(stale, user):
    """ASVS 7.2.4: a new session id; the session's row follows it so it stays signed in."""
    before = stale.session.session_key
    response = confirm(stale)
    assert response.status_code == 302
    assert response["Location"] == PROTECTED
    after = stale.session.session_key
    assert after != before
    row = UserSession.objects.get(user=user)
    assert row.session_digest == session_digest(after)
    assert stale.get(PROTECTED).status_code == 200
    [event] = SecurityEvent.objects.filter(user=user, kind=EventKind.REAUTH_SUCCEEDED)
    assert event.factor == "password"


def test_wrong_password_is_refused_and_recorded(stale, user):
    response = confirm(stale, "not my password")
    assert response.status_code == 200
    assert "That password is wrong." in response.text
    assert stale.get(PROTECTED).status_code == 302  # still asks
    [event] = SecurityEvent.objects.filter(user=user, kind=EventKind.REAUTH_FAILED)
    assert event.factor == "password"
    assert event.details["during"] == "reauth"


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/", ""])
def test_unsafe_next_goes_to_the_account_page(stale, next_url):
    response = confirm(stale, next_url=next_url)
    assert response.status_code == 302
    assert response["Location"] == "/account/"


def test_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get(REAUTH)
    assert response.status_code == 302
    assert response["Location"].startswith("/account/login/")


def test_account_without_verified_address_can_reauthenticate(client, make_user):
    erin = make_user(username="erin", verified=False)
    sign_in(client, erin, reauthenticated=False)
    assert client.get(REAUTH).status_code == 200
    assert confirm(client, next_url="/account/emails/").status_code == 302


def test_reauthentication_failures_count_against_the_account(stale, user):
    """A stolen session cannot be used to guess the password without limit (NIST N20)."""
    for _ in range(5):
        assert "That password is wrong." in confirm(stale, "guess").text
    user.refresh_from_db()
    assert user.failed_signins == 5
    response = confirm(stale)  # even the right password waits now
    assert response.status_code == 429
    assert THROTTLED in response.text
    assert stale.get(PROTECTED).status_code == 302
    throttled = SecurityEvent.objects.get(user=user, kind=EventKind.SIGNIN_THROTTLED)
    assert throttled.details == {"reason": "account_wait", "during": "reauth"}


def test_reauthentication_from_a_known_device_uses_the_device_limit(client, user):
    client.post("/account/login/", {"identifier": "alice", "password": PASSWORD})
    session = client.session
    session.pop("relatch_reauth_at")
    session.save()
    for _ in range(10):
        confirm(client, "guess")
    user.refresh_from_db()
    assert user.failed_signins == 0
    response = confirm(client)
    assert response.status_code == 429
    assert "Too many failed attempts from this browser." in response.text


def test_reauthentication_resets_the_failure_counter(stale, user):
    User.objects.filter(pk=user.pk).update(failed_signins=3)
    confirm(stale)
    user.refresh_from_db()
    assert user.failed_signins == 0


def test_reauthentication_without_csrf_token_is_refused(user):
    browser = sign_in(Client(enforce_csrf_checks=True), user, reauthenticated=False)
    response = confirm(browser)
    assert response.status_code == 403
    assert not SecurityEvent.objects.filter(kind=EventKind.REAUTH_SUCCEEDED).exists()


def test_empty_password_is_a_form_error_not_an_attempt(stale, user):
    response = stale.post(REAUTH, {"password": ""})
    assert response.status_code == 200
    assert "This field is required." in response.text
    assert not SecurityEvent.objects.filter(kind=EventKind.REAUTH_FAILED).exists()


def test_reauthentication_expires(stale, settings):
    """NIST N31: the proof is good for REAUTH_MAX_AGE seconds only."""
    confirm(stale)
    assert stale.get(PROTECTED).status_code == 200
    settings.REAUTH_MAX_AGE = -1
    assert stale.get(PROTECTED).status_code == 302
