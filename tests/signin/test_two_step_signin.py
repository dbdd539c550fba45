"""Two-step sign-in (issue 3 §4): password first, then a factor the user picks.

Factors are real: app codes computed with pyotp from the enrolled secret, security keys from
the software authenticator, recovery codes from the recovery-code services.
"""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from relatch.accounts.models import KnownDevice, UserSession
from relatch.accounts.sessions.services import session_digest
from relatch.audit.models import EventKind, SecurityEvent
from relatch.mfa.models import RecoveryCode, TotpDevice
from tests.conftest import PASSWORD, CommittingClient, sign_in
from tests.mfa.signin_flow import (
    APP,
    CODE,
    KEY,
    NEW_CODES,
    SECOND_STEP,
    app_code,
    enrol_app,
    events,
    key_answer,
    make_codes,
    page_text,
    password_step,
    register_key,
    signed_in_user_id,
    trust_browser,
    wrong_app_code,
)

pytestmark = pytest.mark.django_db


def expire_partial(client: Client, minutes: int = 11) -> None:
    session = client.session
    session["relatch_partial_signin"]["at"] -= minutes * 60
    session.save()


# --- accounts without a second factor ------------------------------------------------------


def test_account_without_a_second_factor_signs_in_with_the_password_alone(client, alice):
    """Recovery codes alone are not a second factor: the password signs in, as before."""
    make_codes(alice)
    response = password_step(client)
    assert response.status_code == 302
    assert response["Location"] == "/account/"
    assert signed_in_user_id(client) == str(alice.pk)
    [event] = events(alice, EventKind.SIGNIN_SUCCEEDED)
    assert event.factor == "password"


# --- the password step of an account with a second factor -----------------------------------


def test_the_password_alone_does_not_sign_in_an_account_with_a_second_factor(client, alice):
    """ASVS 6.3.3: a correct password leads to the second step and nothing more; the session
    id seen before the password is dead (ASVS 7.2.4)."""
    enrol_app(alice)
    session = client.session
    session["visited"] = True
    session.save()
    before = client.session.session_key
    response = password_step(client)
    assert response.status_code == 302
    assert response["Location"] == SECOND_STEP
    assert signed_in_user_id(client) is None
    assert client.session.session_key != before
    assert not UserSession.objects.filter(user=alice).exists()
    assert not events(alice, EventKind.SIGNIN_SUCCEEDED)
    assert client.get("/account/")["Location"].startswith("/account/login/")


def test_a_wrong_password_never_reaches_the_second_step(client, alice):
    enrol_app(alice)
    response = password_step(client, password="wrong password")
    assert response.status_code == 200
    assert "Username or password is wrong." in page_text(response)
    assert client.get(SECOND_STEP)["Location"].startswith("/account/login/")


FORMS = {
    "app": "Sign in with the app code",
    "key": "Use your security key",
    "code": "Sign in with a recovery code",
}
LINKS = {
    "app": "Use a code from your authenticator app",
    "key": "Use a security key",
    "code": "Use a recovery code (8 left)",
}


@pytest.mark.parametrize(
    ("factors", "form", "links"),
    [
        (("app",), "app", ["code"]),
        (("key",), "key", ["code"]),
        # No sign-in with a factor yet: the strongest first (a key answers only this site).
        (("app", "key"), "key", ["app", "code"]),
        (("app", "no codes"), "app", []),
    ],
)
def test_the_second_step_shows_one_factor_and_links_the_others(
    client, alice, factors, form, links
):
    """Issue 19: one method at a time, the account's others as "Use another method" links."""
    if "app" in factors:
        enrol_app(alice)
    if "key" in factors:
        register_key(alice)
    if "no codes" in factors:
        RecoveryCode.objects.filter(code_set__user=alice).update(used_at=timezone.now())
    password_step(client)
    response = client.get(SECOND_STEP)
    assert response.status_code == 200
    text = page_text(response)
    assert [name for name, button in FORMS.items() if button in text] == [form]
    assert [name for name, link in LINKS.items() if link in text] == links
    assert ("Use another method" in text) == bool(links)
    if form == "key":
        assert 'id="webauthn-options"' in text
        assert '<input type="hidden" name="credential"' in text
        assert "relatch/webauthn" in text and "<script>" not in text  # no inline script (CSP)
    else:
        # No security-key challenge is issued for a form that is not shown.
        assert "webauthn-options" not in text


def test_an_app_code_on_a_known_device_signs_in(client, alice):
    """ASVS 16.3.1: the success is an event with its factor; the session is listed."""
    secret = enrol_app(alice)
    trust_browser(client, alice)
    password_step(client, next="/account/sessions/")
    response = client.post(APP, {"code": app_code(alice, secret)})
    assert response.status_code == 302
    assert response["Location"] == "/account/sessions/"
    assert signed_in_user_id(client) == str(alice.pk)
    assert UserSession.objects.get(user=alice).session_digest == session_digest(
        client.session.session_key
    )
    [event] = events(alice, EventKind.SIGNIN_SUCCEEDED)
    assert event.factor == "totp"
    assert event.details["new_device"] is False
    assert "relatch_partial_signin" not in client.session


def test_a_security_key_signs_in_at_once_even_on_a_new_device(client, alice, mail):
    """A security key is phishing-resistant: no new-device mail (issue 3 §5)."""
    key = register_key(alice)
    password_step(client)
    mail.clear()
    response = client.post(KEY, {"credential": key_answer(client, key)})
    assert response.status_code == 302
    assert response["Location"] == "/account/"
    assert signed_in_user_id(client) == str(alice.pk)
    [event] = events(alice, EventKind.SIGNIN_SUCCEEDED)
    assert event.factor == "webauthn"
    assert event.details["new_device"] is True
    assert KnownDevice.objects.filter(user=alice).count() == 1
    assert mail.messages == []


def test_a_security_key_answer_to_another_session_is_refused(client, alice, make_client):
    """A challenge belongs to the session that asked for it."""
    key = register_key(alice)
    other = make_client()
    password_step(other)
    answer = key_answer(other, key)
    password_step(client)
    client.get(SECOND_STEP)
    response = client.post(KEY, {"credential": answer})
    assert response.status_code == 200
    assert signed_in_user_id(client) is None
    [failed] = events(alice, EventKind.SIGNIN_FAILED, "webauthn")
    assert failed.details["step"] == "second_factor"


def test_a_recovery_code_on_a_known_device_is_spent_and_leads_to_new_codes(client, alice, mail):
    """NIST N2: a used code is invalidated, announced, and a new set is asked for."""
    enrol_app(alice)
    codes = make_codes(alice)
    trust_browser(client, alice)
    password_step(client)
    mail.clear()
    response = client.post(CODE, {"code": codes[3].lower()})
    assert response.status_code == 302
    assert response["Location"] == NEW_CODES
    assert signed_in_user_id(client) == str(alice.pk)
    assert RecoveryCode.objects.filter(code_set__user=alice, used_at__isnull=False).count() == 1
    [event] = events(alice, EventKind.SIGNIN_SUCCEEDED)
    assert event.factor == "recovery_code"
    assert events(alice, EventKind.RECOVERY_CODE_USED)
    assert mail.to("alice@work.example")  # the use is announced to every address
    # The code is spent: it cannot sign in again.
    client.post("/account/logout/")
    password_step(client)
    response = client.post(CODE, {"code": codes[3]})
    assert signed_in_user_id(client) is None
    assert "not one of your unused recovery codes" in page_text(response)


def test_app_codes_are_accepted_once(client, alice):
    """NIST N26: the code that signed in cannot sign in again."""
    secret = enrol_app(alice)
    trust_browser(client, alice)
    password_step(client)
    code = app_code(alice, secret)
    client.post(APP, {"code": code})
    client.post("/account/logout/")
    password_step(client)
    response = client.post(APP, {"code": code})
    assert signed_in_user_id(client) is None
    assert "already used" in page_text(response)
    assert events(alice, EventKind.SIGNIN_FAILED, "totp")[0].details["reason"] == "replayed"


def test_signing_in_to_another_account_signs_the_first_out(client, alice, make_user):
    bob = make_user(username="bob")
    sign_in(client, bob)
    enrol_app(alice)
    password_step(client)
    assert signed_in_user_id(client) is None
    assert not UserSession.objects.filter(user=bob).exists()


# --- failures after a correct password -------------------------------------------------------


def test_a_wrong_factor_after_the_right_password_is_announced_at_most_every_15_minutes(
    client, alice, mail, make_client
):
    """OWASP MFA4 / ASVS 6.3.5: every verified address hears of it, with when and what
    browser; a second failure soon after sends no second mail (no flooding)."""
    secret = enrol_app(alice)
    mail.clear()
    password_step(client)
    response = client.post(APP, {"code": wrong_app_code(secret)})
    assert response.status_code == 200
    assert "That code is not right" in page_text(response)
    assert signed_in_user_id(client) is None
    for address in ("alice@example.org", "alice@work.example"):
        [message] = mail.to(address)
        text = mail.text(message)
        assert "correct password" in text and "authenticator app code" in text
        assert "Browser: Unknown browser" in text and "IP address: 127.0.0.1" in text
        assert "change it now" in text
    [failed] = events(alice, EventKind.SIGNIN_FAILED, "totp")
    assert failed.details["reason"] == "wrong"
    [noted] = events(alice, EventKind.SECOND_FACTOR_FAILED, "totp")
    assert noted.details == {"notified": True}

    # Another browser, another failure, minutes later: recorded, not mailed.
    other = make_client()
    password_step(other)
    other.post(APP, {"code": wrong_app_code(secret)})
    assert len(mail.to("alice@example.org")) == 1
    assert [e.details["notified"] for e in events(alice, EventKind.SECOND_FACTOR_FAILED)] == [
        True,
        False,
    ]
    # A third in the same partial sign-in writes no second SECOND_FACTOR_FAILED.
    other.post(APP, {"code": wrong_app_code(secret)})
    assert len(events(alice, EventKind.SECOND_FACTOR_FAILED)) == 2
    assert len(events(alice, EventKind.SIGNIN_FAILED, "totp")) == 3

    # Fifteen minutes on, the owner hears again.
    SecurityEvent.objects.filter(kind=EventKind.SECOND_FACTOR_FAILED).update(
        created_at=timezone.now() - timedelta(minutes=16)
    )
    third = make_client()
    password_step(third)
    third.post(APP, {"code": wrong_app_code(secret)})
    assert len(mail.to("alice@example.org")) == 2


# --- the partial sign-in -----------------------------------------------------------------


def test_the_second_step_expires_after_ten_minutes(client, alice):
    secret = enrol_app(alice)
    trust_browser(client, alice)
    password_step(client, next="/account/sessions/")
    expire_partial(client)
    page = client.get(SECOND_STEP)
    assert page.status_code == 302
    assert page["Location"] == "/account/login/?next=%2Faccount%2Fsessions%2F"
    password_step(client)
    expire_partial(client)
    response = client.post(APP, {"code": app_code(alice, secret)}, follow=True)
    assert "Your sign-in expired" in page_text(response)
    assert signed_in_user_id(client) is None
    assert not events(alice, EventKind.SIGNIN_SUCCEEDED)
    assert TotpDevice.objects.get(user=alice).last_used_step == 0  # the code was not even tried


def test_the_second_step_without_a_password_goes_back_to_the_password(client, alice):
    enrol_app(alice)
    for response in (client.get(SECOND_STEP), client.post(APP, {"code": "123456"})):
        assert response.status_code == 302
        assert response["Location"] == "/account/login/"
    assert not events(alice, EventKind.SIGNIN_FAILED)


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "data", "message"),
    [
        (APP, {"code": ""}, "Enter the 6-digit code"),
        (APP, {"code": "12345"}, "Enter the 6-digit code"),
        (APP, {"code": "abcdef"}, "Enter the 6-digit code"),
        (APP, {"code": "1" * 10_240}, "Enter the 6-digit code"),
        (APP, {}, "Enter the 6-digit code"),
        (CODE, {"code": ""}, "Enter one of your recovery codes."),
        (CODE, {"code": "ABCD-EFGH"}, "A recovery code has 20 letters and digits"),
        (CODE, {"code": "ABCD-EFGH-JKMN-PQRS-TVW!"}, "characters that are never in a code"),
        (CODE, {"code": "A" * 10_000}, "A recovery code has 20 letters and digits"),
        (KEY, {"credential": ""}, "Your browser sent no answer from a security key"),
        (KEY, {"credential": "x" * 20_000}, "too large to come from a security key"),
        (KEY, {"credential": "{not json"}, "security key"),
    ],
)
def test_malformed_input_is_refused_clearly_and_changes_nothing(client, alice, url, data, message):
    enrol_app(alice)
    register_key(alice)
    password_step(client)
    client.get(SECOND_STEP)
    response = client.post(url, data)
    assert response.status_code == 400
    assert message in page_text(response)
    assert signed_in_user_id(client) is None
    assert not events(alice, EventKind.SIGNIN_FAILED)
    assert not events(alice, EventKind.SECOND_FACTOR_FAILED)
    assert "1" * 100 not in page_text(response)  # the input is not echoed back


def test_a_factor_sent_without_a_csrf_token_is_refused(alice):
    secret = enrol_app(alice)
    browser = CommittingClient(enforce_csrf_checks=True)
    browser.get("/account/login/")
    token = browser.cookies["csrftoken"].value
    password_step(browser, csrfmiddlewaretoken=token)
    trust_browser(browser, alice)
    response = browser.post(APP, {"code": app_code(alice, secret)})
    assert response.status_code == 403
    assert signed_in_user_id(browser) is None
    assert not events(alice, EventKind.SIGNIN_SUCCEEDED)
    assert TotpDevice.objects.get(user=alice).last_used_step == 0


def test_the_login_form_keeps_working_for_the_username_in_any_case(client, alice):
    secret = enrol_app(alice)
    trust_browser(client, alice)
    password_step(client, identifier="ALICE@example.org", password=PASSWORD)
    client.post(APP, {"code": app_code(alice, secret)})
    assert signed_in_user_id(client) == str(alice.pk)
