"""Signing in with a passkey alone, without a password (issue 3 §2; NIST N32, ASVS 6.6.2,
7.2.4, 16.3.1).

The passkey is the software authenticator registered as a discoverable credential through the
security-key services: it keeps the account's userHandle and answers options that name no
credential, as a browser's passkey does.
"""

import re
from typing import Any

import pytest
from django.test import Client

from relatch.accounts.models import KnownDevice, User, UserSession
from relatch.accounts.sessions.services import session_digest
from relatch.audit.models import EventKind
from relatch.mfa import throttling
from relatch.mfa.models import NewDeviceConfirmation, SelfServiceRecovery, WebAuthnCredential
from tests.conftest import CommittingClient
from tests.mfa import signin_flow
from tests.mfa.signin_flow import (
    LOGIN,
    SECOND_STEP,
    enrol_app,
    events,
    options_on,
    password_step,
    register_key,
    signed_in_user_id,
)
from tests.mfa.soft_authenticator import SoftAuthenticator
from tests.mfa.test_factor_throttling import earlier_failures

pytestmark = pytest.mark.django_db

PASSKEY = "/account/login/passkey/"
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
UNKNOWN = "That passkey is not registered with Relatch."


@pytest.fixture
def passkey(alice) -> SoftAuthenticator:
    """Alice's passkey, registered through the services (recovery codes saved first)."""
    key = register_key(alice, discoverable=True, label="Phone")
    assert WebAuthnCredential.objects.get(user=alice).discoverable
    return key


def page_text(response: Any) -> str:
    return " ".join(signin_flow.page_text(response).split())


def answer_from_login_page(client: Client, key: SoftAuthenticator, **misbehave: Any) -> str:
    """What webauthn.js posts after the passkey answered the sign-in page's options."""
    return key.authenticate(options_on(client.get(PASSKEY)), **misbehave)


def refused(response: Any, message: str, status: int = 200) -> None:
    assert response.status_code == status, response.content[:300]
    assert message in page_text(response)
    assert 'action="/account/login/passkey/"' in response.text  # the form, to try again


# --- signing in ----------------------------------------------------------------------------


def test_the_sign_in_page_links_to_passkeys_without_making_a_session(client, settings):
    """A challenge is kept in the session: only visitors who choose a passkey get one, so bots
    fetching the sign-in page fill no session table."""
    page = client.get(LOGIN)
    assert page.status_code == 200
    assert "Sign in with a passkey instead" in page_text(page)
    assert f'href="{PASSKEY}"' in page.text
    assert "webauthn-options" not in page.text
    assert settings.SESSION_COOKIE_NAME not in page.cookies  # no session was started
    assert settings.SESSION_COOKIE_NAME in client.get(PASSKEY).cookies  # the passkey page's is


def test_the_passkey_page_offers_a_passkey_for_any_account(client, passkey):
    page = client.get(PASSKEY)
    assert page.status_code == 200
    assert 'data-webauthn="authenticate"' in page.text
    assert page.text.count('id="webauthn-options"') == 1  # one options element, one form
    options = options_on(page)
    assert options["allowCredentials"] == []  # the passkey names the account, not the page
    assert options["userVerification"] == "required"  # it must be two factors by itself


def test_a_passkey_signs_in_without_a_password(client, alice, passkey, mail):
    """No password, no new-device check (phishing-resistant), a new session id (ASVS 7.2.4),
    and a SIGNIN_SUCCEEDED event with its factor (ASVS 16.3.1)."""
    answer = answer_from_login_page(client, passkey)
    before = client.session.session_key
    mail.clear()
    response = client.post(PASSKEY, {"credential": answer})
    assert response.status_code == 302
    assert response["Location"] == "/account/"
    assert signed_in_user_id(client) == str(alice.pk)
    after = client.session.session_key
    assert after != before
    assert UserSession.objects.filter(user=alice, session_digest=session_digest(after)).exists()
    assert KnownDevice.objects.filter(user=alice).count() == 1  # this browser is remembered
    assert not NewDeviceConfirmation.objects.exists()
    assert client.get("/account/").status_code == 200
    [event] = events(alice, EventKind.SIGNIN_SUCCEEDED)
    assert event.factor == "webauthn"
    assert event.details == {"new_device": True, "passkey": True}
    assert WebAuthnCredential.objects.get(user=alice).sign_count == 1


@pytest.mark.parametrize(
    ("next_url", "lands_on"),
    [("/account/sessions/", "/account/sessions/"), ("https://evil.example/", "/account/")],
)
def test_a_passkey_sign_in_goes_to_a_safe_next_only(client, passkey, next_url, lands_on):
    answer = answer_from_login_page(client, passkey)
    response = client.post(PASSKEY, {"credential": answer, "next": next_url})
    assert response.status_code == 302 and response["Location"] == lands_on


def test_a_passkey_sign_in_ends_a_half_done_password_sign_in(client, alice, passkey):
    assert password_step(client)["Location"] == SECOND_STEP
    client.post(PASSKEY, {"credential": answer_from_login_page(client, passkey)})
    assert signed_in_user_id(client) == str(alice.pk)
    assert "relatch_partial_signin" not in client.session


def test_a_passkey_sign_in_cancels_a_waiting_self_service_recovery(
    make_client, alice, passkey, mail
):
    """Issue 3 §5: a security-key sign-in shows the owner still holds a factor."""
    from tests.mfa.test_self_recovery import start

    alice.secret = enrol_app(alice)
    recovery = start(make_client(), alice, mail)
    laptop = make_client()
    mail.clear()
    assert laptop.post(PASSKEY, {"credential": answer_from_login_page(laptop, passkey)})[
        "Location"
    ] == "/account/"
    recovery.refresh_from_db()
    assert (recovery.state, recovery.closed_by) == ("cancelled", "security_key_signin")
    assert [e.details["closed_by"] for e in events(alice, EventKind.SELF_RECOVERY_CANCELLED)] == [
        "security_key_signin"
    ]
    assert "cancelled" in mail.text(mail.last("alice@example.org")).lower()
    assert not SelfServiceRecovery.objects.filter(user=alice, state="waiting").exists()


# --- refusals --------------------------------------------------------------------------------


def test_an_unknown_passkey_is_refused_and_counted_per_ip(client, passkey, monkeypatch):
    """A failure with no account to count against is counted per client IP."""
    monkeypatch.setattr(throttling, "IP_LIMIT", "2/15 minutes")
    stranger = SoftAuthenticator()
    stranger.user_handle = b"someone else"
    for _ in range(2):
        response = client.post(PASSKEY, {"credential": answer_from_login_page(client, stranger)})
        refused(response, UNKNOWN)
        assert signed_in_user_id(client) is None
    # The limit now holds even for a genuine passkey from that address: unchecked, refused.
    response = client.post(PASSKEY, {"credential": answer_from_login_page(client, passkey)})
    refused(response, "Too many wrong passkey attempts from your network.", status=429)
    assert signed_in_user_id(client) is None
    assert WebAuthnCredential.objects.get().sign_count == 0


def test_a_passkey_without_user_verification_is_refused_and_counted_on_the_account(
    client, alice, passkey
):
    """Without a password first, the key must verify its user (PIN or biometric)."""
    answer = answer_from_login_page(client, passkey, user_verified=False)
    refused(client.post(PASSKEY, {"credential": answer}), "could not be verified")
    assert signed_in_user_id(client) is None
    [failed] = events(alice, EventKind.SIGNIN_FAILED, "webauthn")
    assert failed.details == {"passkey": True, "reason": "invalid"}
    assert throttling.consecutive_failures(user=alice, factor="webauthn")[0] == 1
    assert not events(alice, EventKind.SIGNIN_SUCCEEDED)


@pytest.mark.parametrize("handle", [None, b"someone else"])
def test_a_passkey_must_name_its_own_account(client, alice, passkey, handle):
    """WebAuthn §7.2 step 6: the userHandle must be that of the credential's account."""
    passkey.user_handle = handle
    refused(
        client.post(PASSKEY, {"credential": answer_from_login_page(client, passkey)}),
        "did not say which account it belongs to",
    )
    assert signed_in_user_id(client) is None
    assert len(events(alice, EventKind.SIGNIN_FAILED, "webauthn")) == 1


def test_a_replayed_answer_is_refused(client, make_client, alice, passkey):
    """ASVS 6.6.2: a challenge works once, in the session that asked for it."""
    answer = answer_from_login_page(client, passkey)
    assert client.post(PASSKEY, {"credential": answer}).status_code == 302
    client.post("/account/logout/")
    refused(client.post(PASSKEY, {"credential": answer}), "already used")
    attacker = make_client()
    attacker.get(PASSKEY)  # a challenge of its own, which the stolen answer did not sign
    refused(attacker.post(PASSKEY, {"credential": answer}), "could not be verified")
    assert signed_in_user_id(client) is None and signed_in_user_id(attacker) is None
    assert len(events(alice, EventKind.SIGNIN_SUCCEEDED)) == 1
    reasons = [e.details["reason"] for e in events(alice, EventKind.SIGNIN_FAILED, "webauthn")]
    assert reasons == ["no_challenge", "invalid"]


def test_a_passkey_of_a_disabled_account_is_refused(client, alice, passkey):
    User.objects.filter(pk=alice.pk).update(is_active=False)
    refused(client.post(PASSKEY, {"credential": answer_from_login_page(client, passkey)}), UNKNOWN)
    assert signed_in_user_id(client) is None
    assert not events(alice, EventKind.SIGNIN_SUCCEEDED)


def test_a_stopped_security_key_factor_stops_its_passkey_too(client, alice, passkey):
    """NIST N20: the account's security-key limit holds without a password as well."""
    earlier_failures(alice, "webauthn", throttling.HARD_STOP["webauthn"])
    response = client.post(PASSKEY, {"credential": answer_from_login_page(client, passkey)})
    refused(response, "stopped for this account", status=429)
    assert signed_in_user_id(client) is None
    [throttled] = events(alice, EventKind.SIGNIN_THROTTLED, "webauthn")
    assert throttled.details == {"passkey": True, "reason": "stopped", "during": "passkey"}


@pytest.mark.parametrize(
    ("credential", "shown"),
    [
        ("x" * 20_000, "too large to come from a security key"),
        ("", "sent no answer"),
        ("{not json", "could not be read"),
        ("[]", "could not be read"),
        ('{"id": ""}', "could not be read"),
        ("[" * 15_000, "could not be read"),
    ],
)
def test_malformed_or_oversized_answers_are_a_400(client, alice, passkey, credential, shown):
    client.get(PASSKEY)
    response = client.post(PASSKEY, {"credential": credential})
    refused(response, shown, status=400)
    assert signed_in_user_id(client) is None
    assert not events(alice, EventKind.SIGNIN_FAILED)


def test_a_parsable_answer_naming_no_key_is_refused_not_a_500(client, passkey):
    client.get(PASSKEY)
    strange = '{"id": "abc", "rawId": "abc", "type": "public-key", "response": {"signature": 7}}'
    refused(client.post(PASSKEY, {"credential": strange}), UNKNOWN)


def test_a_passkey_sign_in_needs_a_csrf_token(alice, passkey):
    browser = CommittingClient(enforce_csrf_checks=True)
    page = browser.get(PASSKEY)
    answer = passkey.authenticate(options_on(page))
    assert browser.post(PASSKEY, {"credential": answer}).status_code == 403
    assert signed_in_user_id(browser) is None
    token = CSRF_FIELD.search(page.text)
    assert token
    sent = {"credential": answer, "csrfmiddlewaretoken": token.group(1)}
    assert browser.post(PASSKEY, sent).status_code == 302  # the same answer, with the token
    assert signed_in_user_id(browser) == str(alice.pk)


def test_get_on_the_passkey_page_signs_nobody_in(client, alice, passkey):
    assert client.get(PASSKEY).status_code == 200
    assert signed_in_user_id(client) is None
    assert not events(alice, EventKind.SIGNIN_SUCCEEDED)


def test_a_site_reached_by_ip_address_offers_no_passkey(client, settings):
    """Browsers refuse WebAuthn when the RP id is an IP address: no button that cannot work."""
    settings.BASE_URL = "http://127.0.0.1:8000"
    page = client.get(LOGIN)
    assert page.status_code == 200
    assert "Sign in with a passkey" not in page.text
    assert "webauthn-options" not in page.text
    assert client.get(PASSKEY)["Location"] == LOGIN
