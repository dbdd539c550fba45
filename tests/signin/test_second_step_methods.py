"""The second step shows one method at a time (issue 19): the one last used, focused, with the
others behind "Use another method" links that work without JavaScript; its expiry reads
"in 9 minutes", with the exact UTC time on hover."""

import re

import pytest

from relatch.audit.models import EventKind, Factor, SecurityEvent
from relatch.signin.factor.methods import last_used
from tests.mfa.signin_flow import (
    APP,
    CHECK_MAIL,
    CODE,
    KEY,
    SECOND_STEP,
    app_code,
    enrol_app,
    key_answer,
    make_codes,
    page_text,
    password_step,
    register_key,
    trust_browser,
    wrong_app_code,
)

pytestmark = pytest.mark.django_db

APP_FORM = "Sign in with the app code"
KEY_FORM = "Use your security key"
CODE_FORM = "Sign in with a recovery code"
TIME_RE = re.compile(
    r'<time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC">([^<]+)</time>'
)


def shown_forms(response) -> list[str]:
    text = page_text(response)
    return [form for form in (APP_FORM, KEY_FORM, CODE_FORM) if form in text]


def words(response) -> str:
    """The page's text as read: tags dropped, spaces collapsed."""
    text = " ".join(re.sub(r"<[^>]+>", " ", page_text(response)).split())
    return re.sub(r" ([.;,])", r"\1", text)


def code_input(response, name: str = "code") -> str:
    """The one text input named ``name`` on the page."""
    [tag] = re.findall(rf'<input type="text" name="{name}"[^>]*>', response.content.decode())
    return tag


@pytest.fixture
def alice_with_both(alice):
    """Alice with an app and a security key, signing in from a browser she used before."""
    alice.secret = enrol_app(alice)
    alice.key = register_key(alice)
    return alice


def test_the_app_form_is_focused_and_fills_in_one_time_codes(client, alice):
    enrol_app(alice)
    password_step(client)
    response = client.get(SECOND_STEP)
    assert shown_forms(response) == [APP_FORM]
    field = code_input(response)
    for attribute in ("autofocus", 'inputmode="numeric"', 'autocomplete="one-time-code"'):
        assert attribute in field
    assert response.content.decode().count("autofocus") == 1


def test_the_expiry_reads_relative_with_the_exact_time_on_hover(client, alice):
    enrol_app(alice)
    password_step(client)
    response = client.get(SECOND_STEP)
    assert "This page stops working in 9 minutes;" in words(response)
    assert TIME_RE.search(page_text(response)).group(1) == "in 9 minutes"
    assert " UTC" not in words(response)  # the exact time is on hover, not in the sentence


def test_the_method_last_used_comes_first(client, make_client, alice_with_both):
    """No sign-in with a factor yet: the key (phishing-resistant). After an app-code sign-in:
    the app, with the key one link away."""
    alice = alice_with_both
    password_step(client)
    assert shown_forms(client.get(SECOND_STEP)) == [KEY_FORM]
    trust_browser(client, alice)
    assert client.post(APP, {"code": app_code(alice, alice.secret)}).status_code == 302
    assert last_used(alice) == Factor.TOTP

    again = make_client()
    password_step(again)
    response = again.get(SECOND_STEP)
    assert shown_forms(response) == [APP_FORM]
    text = page_text(response)
    assert "Use another method" in text
    assert f'href="{SECOND_STEP}?method=webauthn">Use a security key' in text
    assert f'href="{SECOND_STEP}?method=recovery_code">Use a recovery code' in text
    assert "webauthn-options" not in text  # no key challenge for a form not shown


def test_a_recovery_code_is_never_remembered_as_the_method(client, alice_with_both):
    """A code is the way back after a loss: leading with it would spend the last ones."""
    alice = alice_with_both
    SecurityEvent.objects.create(user=alice, kind=EventKind.SIGNIN_SUCCEEDED, factor="totp")
    SecurityEvent.objects.create(
        user=alice, kind=EventKind.SIGNIN_SUCCEEDED, factor="recovery_code"
    )
    SecurityEvent.objects.create(user=alice, kind=EventKind.SIGNIN_FAILED, factor="webauthn")
    assert last_used(alice) == Factor.TOTP


@pytest.mark.parametrize(
    ("method", "form"),
    [
        ("totp", APP_FORM),
        ("webauthn", KEY_FORM),
        ("recovery_code", CODE_FORM),
        ("sms", KEY_FORM),  # not a method: the usual one
        ("", KEY_FORM),
    ],
)
def test_another_method_is_a_plain_link(client, alice_with_both, method, form):
    password_step(client)
    response = client.get(f"{SECOND_STEP}?method={method}")
    assert response.status_code == 200
    assert shown_forms(response) == [form]
    if form == CODE_FORM:
        assert "autofocus" in code_input(response)


def test_a_method_the_account_lacks_shows_the_usual_one(client, alice):
    enrol_app(alice)
    password_step(client)
    assert shown_forms(client.get(f"{SECOND_STEP}?method=webauthn")) == [APP_FORM]


def test_a_wrong_code_shows_its_own_form_again_with_the_error(client, alice_with_both):
    """The key is the default here, yet the refused app code comes back on the app's form."""
    alice = alice_with_both
    password_step(client)
    response = client.post(APP, {"code": wrong_app_code(alice.secret)})
    assert shown_forms(response) == [APP_FORM]
    assert "That code is not right" in page_text(response)
    response = client.post(CODE, {"code": "not a code"})
    assert response.status_code == 400
    assert shown_forms(response) == [CODE_FORM]


def test_a_refused_key_answer_shows_the_key_again(client, alice_with_both):
    alice = alice_with_both
    password_step(client)
    client.post(APP, {"code": app_code(alice, alice.secret)})  # held for the mailed link
    password_step(client)
    answer = key_answer(client, alice.key)
    response = client.post(KEY, {"credential": answer[:-8] + "AAAAAAAA"})
    assert shown_forms(response) == [KEY_FORM]


def test_the_check_mail_page_reads_relative_and_goes_on_to_the_page_asked_for(client, alice):
    alice.secret = enrol_app(alice)
    password_step(client, next="/account/sessions/")
    assert client.post(APP, {"code": app_code(alice, alice.secret)})["Location"] == CHECK_MAIL
    response = client.get(CHECK_MAIL)
    assert TIME_RE.search(page_text(response)).group(1).startswith("in ")
    assert "It works once and stops working in " in words(response)
    assert "Then you go on to the page you asked for." in words(response)


def test_a_recovery_code_on_a_new_device_does_not_promise_the_page_asked_for(client, alice):
    """A sign-in with a code ends on making new codes (NIST N2), not on ``next``."""
    enrol_app(alice)
    codes = make_codes(alice)
    password_step(client, next="/account/sessions/")
    assert client.post(CODE, {"code": codes[2]})["Location"] == CHECK_MAIL
    assert "Then you go on to the page" not in page_text(client.get(CHECK_MAIL))
