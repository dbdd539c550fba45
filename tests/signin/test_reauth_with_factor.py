"""Full re-authentication for an account with a second factor (ASVS 7.5.1, OWASP MFA6,
NIST N13): the password AND one of the sign-in's factors before a sensitive action.

Factors are real: app codes from pyotp on the enrolled secret, security keys from the software
authenticator, recovery codes from the recovery-code services.
"""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from relatch.accounts.models import UserSession
from relatch.accounts.sessions.services import session_digest
from relatch.audit.models import EventKind, SecurityEvent
from relatch.mfa import throttling
from relatch.mfa.models import RecoveryCode, RecoveryCodeSet, TotpDevice
from tests.conftest import PASSWORD, CommittingClient, sign_in
from tests.mfa import signin_flow
from tests.mfa.signin_flow import (
    app_code,
    enrol_app,
    events,
    make_codes,
    options_on,
    register_key,
    wrong_app_code,
)

pytestmark = pytest.mark.django_db

REAUTH = "/account/reauthenticate/"
FACTOR = "/account/reauthenticate/factor/"
FACTOR_APP = FACTOR + "app/"
FACTOR_KEY = FACTOR + "key/"
FACTOR_CODE = FACTOR + "recovery-code/"
TARGETS = ["totp:setup", "webauthn:add", "sessions:list"]
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture
def alice(alice):
    """Alice (two verified addresses) with an app."""
    alice.secret = enrol_app(alice)
    return alice


@pytest.fixture
def stale(client, alice):
    """Alice signed in long enough ago that sensitive pages ask to confirm it is her."""
    return sign_in(client, alice, reauthenticated=False)


def page_text(response) -> str:
    """The page as a reader sees it: entities decoded, line breaks as spaces."""
    return " ".join(signin_flow.page_text(response).split())


def go_stale(client: Client) -> None:
    session = client.session
    session.pop("relatch_reauth_at", None)
    session.save()


def confirm_password(client: Client, next_url: str = "", password: str = PASSWORD):
    return client.post(REAUTH, {"password": password, "next": next_url})


def asks_again(client: Client, target: str) -> bool:
    response = client.get(target)
    return response.status_code == 302 and response["Location"].startswith(REAUTH)


# --- the password alone is not enough ---------------------------------------------------------


@pytest.mark.parametrize("name", TARGETS)
def test_the_password_alone_does_not_reauthenticate_an_account_with_a_factor(stale, alice, name):
    """OWASP MFA6 / ASVS 7.5.1: a stolen session plus the password changes no factor."""
    target = reverse(name)
    page = stale.get(stale.get(target)["Location"])
    assert "Then use one of your second factors" in page_text(page)
    response = confirm_password(stale, target)
    assert response.status_code == 302
    assert response["Location"] == FACTOR
    assert asks_again(stale, target)
    assert not events(alice, EventKind.REAUTH_SUCCEEDED)
    factor_page = stale.get(FACTOR)
    assert factor_page.status_code == 200
    text = page_text(factor_page)
    # One method at a time (issue 19): the app, the codes behind a link; Alice has no key.
    assert "Confirm with the app code" in text and "Use a recovery code" in text
    assert "Confirm with a recovery code" not in text and "Security key" not in text


def test_a_wrong_password_never_reaches_the_factor_step(stale, alice):
    response = confirm_password(stale, "/account/sessions/", password="not my password")
    assert response.status_code == 200
    assert "That password is wrong." in page_text(response)
    assert stale.get(FACTOR)["Location"].startswith(REAUTH)
    [failed] = events(alice, EventKind.REAUTH_FAILED, "password")
    assert failed.details["during"] == "reauth"


# --- password and a factor --------------------------------------------------------------------


@pytest.mark.parametrize("name", TARGETS)
def test_password_and_app_code_reauthenticate_with_a_new_session_id(stale, alice, name):
    """ASVS 7.2.4: a new session id after the proof; the session's row follows it."""
    target = reverse(name)
    before = stale.session.session_key
    confirm_password(stale, target)
    response = stale.post(FACTOR_APP, {"code": app_code(alice, alice.secret)})
    assert response.status_code == 302
    assert response["Location"] == target
    after = stale.session.session_key
    assert after != before
    assert UserSession.objects.get(user=alice).session_digest == session_digest(after)
    assert stale.get(target).status_code == 200
    [event] = events(alice, EventKind.REAUTH_SUCCEEDED)
    assert event.factor == "totp" and event.details == {"password": True}
    assert stale.get(FACTOR)["Location"].startswith(REAUTH)  # the step is used up


def test_making_new_recovery_codes_waits_for_the_factor(stale, alice):
    """recovery_codes:generate (a POST) comes back to its page once the factor passed."""
    from tests.mfa.test_recovery_codes import NEW, PAGE, form_token

    before = RecoveryCodeSet.objects.get(user=alice).pk
    response = stale.post(NEW, {"form_token": form_token(stale)})
    assert response["Location"] == f"{REAUTH}?next=" + PAGE.replace("/", "%2F")
    confirm_password(stale, PAGE)
    assert stale.post(NEW, {"form_token": form_token(stale)})["Location"].startswith(REAUTH)
    stale.post(FACTOR_APP, {"code": app_code(alice, alice.secret)})
    response = stale.post(NEW, {"form_token": form_token(stale)})
    assert response.status_code == 302 and response["Location"] == PAGE + "show/"
    assert RecoveryCodeSet.objects.get(user=alice).pk != before


def test_a_security_key_reauthenticates(client, alice):
    """The soft authenticator answers the factor page's options, like webauthn.js does."""
    key = register_key(alice)
    stale = sign_in(client, alice, reauthenticated=False)
    confirm_password(stale, "/account/two-factor/keys/add/")
    page = stale.get(FACTOR)
    assert 'data-webauthn="authenticate"' in page.text
    answer = key.authenticate(options_on(page))
    response = stale.post(FACTOR_KEY, {"credential": answer})
    assert response.status_code == 302
    assert response["Location"] == "/account/two-factor/keys/add/"
    assert stale.get("/account/two-factor/keys/add/").status_code == 200
    [event] = events(alice, EventKind.REAUTH_SUCCEEDED)
    assert event.factor == "webauthn"

    # The same answer, replayed at the next re-authentication, is refused.
    go_stale(stale)
    confirm_password(stale, "/account/sessions/")
    stale.get(FACTOR)
    replay = stale.post(FACTOR_KEY, {"credential": answer})
    assert replay.status_code == 200 and "could not be verified" in page_text(replay)
    assert len(events(alice, EventKind.REAUTH_SUCCEEDED)) == 1
    assert asks_again(stale, "/account/sessions/")


def test_a_forged_or_replayed_key_answer_is_refused_and_counted(client, alice):
    key = register_key(alice)
    stale = sign_in(client, alice, reauthenticated=False)
    confirm_password(stale, "/account/sessions/")
    options = options_on(stale.get(FACTOR))
    response = stale.post(FACTOR_KEY, {"credential": key.authenticate(options, forge=True)})
    assert response.status_code == 200
    assert "could not be verified" in page_text(response)
    # The forged answer spent its challenge: the genuine answer to it is refused too.
    replay = stale.post(FACTOR_KEY, {"credential": key.authenticate(options)})
    assert "could not be verified" in page_text(replay)
    assert asks_again(stale, "/account/sessions/")
    reasons = [e.details["reason"] for e in events(alice, EventKind.REAUTH_FAILED, "webauthn")]
    assert reasons == ["invalid", "invalid"]
    assert not events(alice, EventKind.REAUTH_SUCCEEDED)


def test_a_recovery_code_is_spent_announced_and_asks_for_a_new_set(stale, alice, mail):
    """NIST N2 / N22: a code used to confirm works once, is announced, and a new set is asked
    for; the user still goes on to what they came to do."""
    codes = make_codes(alice)
    mail.clear()
    confirm_password(stale, "/account/sessions/")
    response = stale.post(FACTOR_CODE, {"code": codes[3]})
    assert response.status_code == 302 and response["Location"] == "/account/sessions/"
    page = stale.get("/account/sessions/")
    assert "You used a recovery code: it no longer works, and 7 are left." in page_text(page)
    assert "Make a new set now" in page_text(page)
    assert RecoveryCode.objects.filter(code_set__user=alice, used_at__isnull=False).count() == 1
    [used] = events(alice, EventKind.RECOVERY_CODE_USED)
    assert used.details["codes_left"] == 7
    for address in ("alice@example.org", "alice@work.example"):
        assert "recovery code" in mail.text(mail.last(address)).lower()
    [event] = events(alice, EventKind.REAUTH_SUCCEEDED)
    assert event.factor == "recovery_code"

    # The same code never works again.
    go_stale(stale)
    confirm_password(stale, "/account/sessions/")
    again = stale.post(FACTOR_CODE, {"code": codes[3]})
    assert again.status_code == 200
    assert "That is not one of your unused recovery codes." in page_text(again)


# --- refusals ---------------------------------------------------------------------------------


def test_a_wrong_app_code_is_refused_counted_and_announced(stale, alice, mail):
    """OWASP MFA4 / ASVS 6.3.5: the right password then a wrong factor is told to the owner;
    the failure counts toward the factor's limit like a failed sign-in step."""
    mail.clear()
    confirm_password(stale, "/account/sessions/")
    response = stale.post(FACTOR_APP, {"code": wrong_app_code(alice.secret)})
    assert response.status_code == 200
    assert "That code is not right" in page_text(response)
    assert asks_again(stale, "/account/sessions/")
    [failed] = events(alice, EventKind.REAUTH_FAILED, "totp")
    assert failed.details == {"during": "reauth", "reason": "wrong"}
    [noted] = events(alice, EventKind.SECOND_FACTOR_FAILED, "totp")
    assert noted.details == {"notified": True, "during": "reauth"}
    text = mail.text(mail.last("alice@work.example"))
    assert "confirmed its correct password before a sensitive change" in text
    assert "sign out your other sessions" in text
    assert throttling.consecutive_failures(user=alice, factor="totp")[0] == 1
    # A second wrong code in the same step: counted, not announced again.
    stale.post(FACTOR_APP, {"code": wrong_app_code(alice.secret)})
    assert len(events(alice, EventKind.SECOND_FACTOR_FAILED)) == 1
    assert len(events(alice, EventKind.REAUTH_FAILED, "totp")) == 2


def test_app_codes_stop_at_the_hard_limit_but_recovery_codes_still_work(stale, alice):
    """NIST N20: a stolen session cannot guess app codes here beyond the sign-in's limit; the
    recovery-code path is counted apart, so it stays open for the owner."""
    codes = make_codes(alice)
    long_ago = timezone.now() - timedelta(hours=30)
    SecurityEvent.objects.bulk_create(
        SecurityEvent(user=alice, kind=EventKind.REAUTH_FAILED, factor="totp", created_at=long_ago)
        for _ in range(throttling.HARD_STOP["totp"])
    )
    confirm_password(stale, "/account/sessions/")
    right_code = app_code(alice, alice.secret)  # (resets the replay record to step 0)
    response = stale.post(FACTOR_APP, {"code": right_code})
    assert response.status_code == 429
    assert "stopped for this account" in page_text(response)
    assert TotpDevice.objects.get(user=alice).last_used_step == 0  # never checked
    [throttled] = events(alice, EventKind.SIGNIN_THROTTLED, "totp")
    assert throttled.details == {"reason": "stopped", "during": "reauth"}
    response = stale.post(FACTOR_CODE, {"code": codes[0]})
    assert response.status_code == 302 and response["Location"] == "/account/sessions/"
    # A full re-authentication is a success: the app's earlier failures no longer count.
    assert throttling.consecutive_failures(user=alice, factor="totp")[0] == 0


@pytest.mark.parametrize(
    ("url", "data", "shown"),
    [
        (FACTOR_APP, {"code": "12ab"}, "Enter the 6-digit code"),
        (FACTOR_APP, {"code": "1" * 500}, "Enter the 6-digit code"),
        (FACTOR_CODE, {"code": "not a code"}, ""),
        (FACTOR_KEY, {"credential": "x" * 20_000}, "too large"),
        (FACTOR_KEY, {"credential": "{not json"}, "could not be read"),
        (FACTOR_KEY, {}, "no answer from a security key"),
    ],
)
def test_malformed_factor_input_is_a_400_and_not_counted(client, alice, url, data, shown):
    register_key(alice)
    stale = sign_in(client, alice, reauthenticated=False)
    confirm_password(stale, "/account/sessions/")
    stale.get(FACTOR)
    response = stale.post(url, data)
    assert response.status_code == 400
    assert shown in page_text(response)
    assert not events(alice, EventKind.REAUTH_FAILED)
    assert asks_again(stale, "/account/sessions/")


def test_the_factor_step_needs_the_password_first(stale, alice):
    """Posting a right code without the password step changes nothing (not even the code's
    replay record) and leads back to the password."""
    right_code = app_code(alice, alice.secret)  # (resets the replay record to step 0)
    response = stale.post(FACTOR_APP, {"code": right_code})
    assert response.status_code == 302 and response["Location"].startswith(REAUTH)
    assert stale.get(FACTOR)["Location"].startswith(REAUTH)
    assert TotpDevice.objects.get(user=alice).last_used_step == 0
    assert not events(alice, EventKind.REAUTH_SUCCEEDED)
    assert asks_again(stale, "/account/sessions/")


def test_the_factor_step_expires_and_keeps_where_it_was_going(stale, alice):
    confirm_password(stale, "/account/sessions/")
    session = stale.session
    session["relatch_reauth_factor_step"]["at"] -= 11 * 60
    session.save()
    response = stale.post(FACTOR_APP, {"code": app_code(alice, alice.secret)})
    assert response.status_code == 302
    assert response["Location"] == f"{REAUTH}?next=%2Faccount%2Fsessions%2F"
    assert not events(alice, EventKind.REAUTH_SUCCEEDED)


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/", ""])
def test_an_unsafe_next_goes_to_the_account_page(stale, alice, next_url):
    confirm_password(stale, next_url)
    response = stale.post(FACTOR_APP, {"code": app_code(alice, alice.secret)})
    assert response.status_code == 302 and response["Location"] == "/account/"


def test_the_factor_forms_need_a_csrf_token(alice):
    browser = sign_in(CommittingClient(enforce_csrf_checks=True), alice, reauthenticated=False)
    token = CSRF_FIELD.search(browser.get(REAUTH).text)
    assert token
    sent = {"password": PASSWORD, "csrfmiddlewaretoken": token.group(1)}
    assert browser.post(REAUTH, sent)["Location"] == FACTOR
    response = browser.post(FACTOR_APP, {"code": app_code(alice, alice.secret)})
    assert response.status_code == 403
    assert not events(alice, EventKind.REAUTH_SUCCEEDED)


# --- accounts without a second factor ------------------------------------------------------


def test_an_account_without_a_second_factor_confirms_with_the_password_alone(client, make_user):
    """Recovery codes alone are not a factor: the password page works as before."""
    bob = make_user(username="bob")
    make_codes(bob)
    stale = sign_in(client, bob, reauthenticated=False)
    page = stale.get(REAUTH)
    assert "Then use one of your second factors" not in page_text(page)
    before = stale.session.session_key
    response = confirm_password(stale, "/account/sessions/")
    assert response.status_code == 302 and response["Location"] == "/account/sessions/"
    assert stale.session.session_key != before
    [event] = events(bob, EventKind.REAUTH_SUCCEEDED)
    assert event.factor == "password"


def test_a_factor_removed_meanwhile_sends_back_to_the_password(stale, alice):
    confirm_password(stale, "/account/sessions/")
    TotpDevice.objects.filter(user=alice).delete()
    response = stale.get(FACTOR)
    assert response.status_code == 302 and response["Location"].startswith(REAUTH)
    assert confirm_password(stale, "/account/sessions/")["Location"] == "/account/sessions/"
