"""Passkeys offered in the first sign-in page's username suggestions (WebAuthn conditional
mediation; issue 19). The page's script (passkey-autofill.js) asks for request options, and
posts the chosen passkey's answer to the passkey page, which checks it as always
(test_passkey_signin.py). NIST N32; ASVS 6.6.2 (single-use challenge bound to the session).
"""

import re
from typing import Any

import pytest
from django.test import Client

from relatch.audit.models import EventKind
from tests.conftest import CommittingClient
from tests.mfa.signin_flow import LOGIN, events, register_key, signed_in_user_id
from tests.mfa.soft_authenticator import SoftAuthenticator
from tests.signin.test_passkey_signin import CSRF_FIELD, PASSKEY, page_text, refused

pytestmark = pytest.mark.django_db

OPTIONS = "/account/login/passkey/options/"
CHALLENGE_KEY = "relatch_webauthn_authenticate"  # relatch.mfa.webauthn.challenges


@pytest.fixture
def passkey(alice) -> SoftAuthenticator:
    return register_key(alice, discoverable=True, label="Laptop")


def autofill_options(client: Client) -> dict[str, Any]:
    """What the sign-in page's script gets: the page, then its POST for options."""
    assert client.get(LOGIN).status_code == 200
    response = client.post(OPTIONS)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "application/json"
    return dict(response.json())


def choose_passkey(client: Client, key: SoftAuthenticator, **data: str) -> Any:
    """The person picks the passkey from the suggestions: its answer goes to the passkey page."""
    answer = key.authenticate(autofill_options(client))
    return client.post(PASSKEY, {"credential": answer, **data})


def test_the_sign_in_page_lets_the_browser_offer_passkeys_in_the_username_field(client):
    page = client.get(LOGIN + "?next=/account/sessions/")
    assert 'autocomplete="username webauthn"' in page.text
    autofill = re.search(r'<form id="passkey-autofill"[^>]*>', page.text)
    assert autofill, "no form for the passkey's answer"
    assert f'action="{PASSKEY}"' in autofill.group(0)
    assert f'data-options-url="{OPTIONS}"' in autofill.group(0)
    assert autofill.group(0).endswith(" hidden>")  # nothing to see without JavaScript
    assert page.text.count('name="next" value="/account/sessions/"') == 2  # both forms keep it
    scripts = re.findall(r"<script[^>]*>", page.text)
    assert '<script src="/static/relatch/passkey-autofill.js" defer>' in scripts
    assert scripts.index('<script src="/static/relatch/webauthn.js" defer>') < scripts.index(
        '<script src="/static/relatch/passkey-autofill.js" defer>'
    )
    assert "Sign in with a passkey instead" in page_text(page)  # the fallback stays


def test_the_autofill_asks_for_a_challenge_kept_in_this_browsers_session(client, settings):
    """Options for any of the site's passkeys, which must verify their user; the challenge
    stays server side, in the session the request starts."""
    options = autofill_options(client)
    assert options["allowCredentials"] == []
    assert options["userVerification"] == "required"
    assert options["rpId"] == "testserver"  # the site's own name (BASE_URL)
    assert client.session[CHALLENGE_KEY]["challenge"] == options["challenge"]
    assert client.session[CHALLENGE_KEY]["user"] is None
    assert settings.SESSION_COOKIE_NAME in client.cookies
    assert "no-store" in client.post(OPTIONS)["Cache-Control"]


def test_a_passkey_chosen_in_the_autofill_signs_in_as_on_the_passkey_page(client, alice, passkey):
    response = choose_passkey(client, passkey, next="/account/sessions/")
    assert response.status_code == 302 and response["Location"] == "/account/sessions/"
    assert signed_in_user_id(client) == str(alice.pk)
    [event] = events(alice, EventKind.SIGNIN_SUCCEEDED)
    assert (event.factor, event.details) == ("webauthn", {"new_device": True, "passkey": True})


def test_a_passkey_without_user_verification_is_refused_from_the_autofill_too(
    client, alice, passkey
):
    answer = passkey.authenticate(autofill_options(client), user_verified=False)
    refused(client.post(PASSKEY, {"credential": answer}), "could not be verified")
    assert signed_in_user_id(client) is None
    assert [e.details["reason"] for e in events(alice, EventKind.SIGNIN_FAILED, "webauthn")] == [
        "invalid"
    ]


def test_an_autofill_challenge_works_once_in_the_browser_that_asked(
    client, make_client, alice, passkey
):
    answer = passkey.authenticate(autofill_options(client))
    assert client.post(PASSKEY, {"credential": answer}).status_code == 302
    client.post("/account/logout/")
    refused(client.post(PASSKEY, {"credential": answer}), "already used")
    attacker = make_client()
    autofill_options(attacker)  # a challenge of its own, which the stolen answer did not sign
    refused(attacker.post(PASSKEY, {"credential": answer}), "could not be verified")
    assert signed_in_user_id(client) is None and signed_in_user_id(attacker) is None
    assert len(events(alice, EventKind.SIGNIN_SUCCEEDED)) == 1


def test_new_options_replace_the_earlier_challenge(client, passkey):
    """The script renews its request before the challenge expires: the old one is gone."""
    stale = passkey.authenticate(autofill_options(client))
    client.post(OPTIONS)
    refused(client.post(PASSKEY, {"credential": stale}), "could not be verified")
    assert signed_in_user_id(client) is None


def test_asking_for_options_needs_the_pages_csrf_token_and_a_post(alice, passkey):
    """Another site cannot replace this browser's challenge, nor a crawler make sessions."""
    browser = CommittingClient(enforce_csrf_checks=True)
    page = browser.get(LOGIN)
    assert browser.post(OPTIONS).status_code == 403
    assert browser.get(OPTIONS).status_code == 405
    token = CSRF_FIELD.search(page.text)
    assert token
    response = browser.post(OPTIONS, HTTP_X_CSRFTOKEN=token.group(1))
    assert response.status_code == 200
    answer = passkey.authenticate(response.json())
    sent = {"credential": answer, "csrfmiddlewaretoken": token.group(1)}
    assert browser.post(PASSKEY, sent).status_code == 302
    assert signed_in_user_id(browser) == str(alice.pk)


def test_a_site_reached_by_ip_address_offers_no_autofill(client, settings):
    settings.BASE_URL = "http://127.0.0.1:8000"
    page = client.get(LOGIN)
    assert "passkey-autofill" not in page.text
    assert client.post(OPTIONS).status_code == 404
    assert settings.SESSION_COOKIE_NAME not in client.cookies
