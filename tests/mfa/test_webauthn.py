"""Security keys (issue 3 §2): register through the pages, sign in through the services, rename
and remove; forged, replayed, foreign and oversized answers refused without a server error.

The browser and the key are played by tests/mfa/soft_authenticator.py, written from the
WebAuthn spec, independent of py_webauthn (which the server uses). The real-browser check, with
Chromium's virtual authenticator, belongs to the end-to-end tests.
"""

import html
import json
import re
import time
from datetime import UTC, timedelta
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core.cache import cache
from django.http import HttpRequest
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from relatch.accounts.models import User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.mfa.models import RecoveryCode, RecoveryCodeSet, TotpDevice, WebAuthnCredential
from relatch.mfa.webauthn import challenges, services
from relatch.mfa.webauthn.services import WebAuthnError
from tests.conftest import CommittingClient, sign_in
from tests.index.project_rows import make_project
from tests.mfa.soft_authenticator import AuthenticatorRefused, SoftAuthenticator

pytestmark = pytest.mark.django_db

LIST = reverse("webauthn:list")
ADD = reverse("webauthn:add")
OPTIONS_RE = re.compile(
    r'<script id="webauthn-options" type="application/json">(.*?)</script>', re.S
)


# --- helpers ----------------------------------------------------------------------------------


def save_codes(user: User) -> None:
    """A confirmed set of recovery codes: the gate before a first factor is passed."""
    code_set = RecoveryCodeSet.objects.create(user=user, confirmed_at=timezone.now())
    RecoveryCode.objects.create(code_set=code_set, identifier="abcd", code_hash="unused here")


def options_on(response: Any) -> dict[str, Any]:
    """The options a page hands to webauthn.js (its json_script element)."""
    found = OPTIONS_RE.search(response.content.decode())
    assert found, "no webauthn-options on the page"
    return json.loads(found.group(1))


def page_text(response: Any) -> str:
    return html.unescape(response.content.decode())


def add_key_through_pages(
    client: Client, key: SoftAuthenticator, label: str = "Blue key", **answer: Any
) -> Any:
    options = options_on(client.get(ADD))
    return client.post(ADD, {"label": label, "credential": key.register(options, **answer)})


def events(user: User, kind: EventKind) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(user=user, kind=kind))


def subjects(mail: Any, address: str) -> list[str]:
    return [str(m["Subject"]) for m in mail.to(address)]


class Browser:
    """One browser's session, for calling the sign-in services as a view would: each request
    loads the session from the database and saves it afterwards."""

    def __init__(self) -> None:
        session = SessionStore()
        session.create()
        self.key = session.session_key

    def request(self) -> HttpRequest:
        request = RequestFactory().post("/", REMOTE_ADDR="192.0.2.7")
        request.session = SessionStore(session_key=self.key)  # type: ignore[attr-defined]
        return request

    def options(self, user: User | None) -> dict[str, Any]:
        request = self.request()
        options = services.authentication_options(request=request, user=user)
        request.session.save()  # type: ignore[attr-defined]
        return options

    def verify(self, user: User | None, answer: str) -> WebAuthnCredential:
        request = self.request()
        try:
            return services.verify_authentication(
                request=request, user=user, credential_json=answer
            )
        finally:
            request.session.save()  # type: ignore[attr-defined]


def register_directly(user: User, key: SoftAuthenticator, label: str = "Blue key") -> Any:
    """A key registered through the registration services (the pages have their own tests)."""
    browser = Browser()
    request = browser.request()
    options = services.registration_options(request=request, user=user)
    request.session.save()  # type: ignore[attr-defined]
    request = browser.request()
    row = services.register_key(
        request=request, user=user, label=label, credential_json=key.register(options)
    )
    request.session.save()  # type: ignore[attr-defined]
    return row


@pytest.fixture
def ready(signed_in: CommittingClient, user: User) -> CommittingClient:
    """Alice, signed in and freshly re-authenticated, with her recovery codes saved."""
    save_codes(user)
    return signed_in


@pytest.fixture
def key() -> SoftAuthenticator:
    return SoftAuthenticator()


# --- registering through the pages ------------------------------------------------------------


def test_a_key_is_registered_through_the_pages_and_every_address_is_told(
    ready, user, key, mail
):
    """NIST N13 (fresh re-authentication), N14 (notice to every verified address), N15 (the
    event with its source); the options ask for no attestation and prefer a passkey."""
    user.emails.create(address="alice@work.example", verified=True, verified_at=timezone.now())
    page = ready.get(ADD)
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-webauthn="register"' in body and 'id="webauthn-error"' in body
    assert '<script src="/static/relatch/webauthn.js" defer></script>' in body
    options = options_on(page)
    assert options["rp"] == {"name": "Relatch", "id": "testserver"}
    assert options["attestation"] == "none"
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["extensions"] == {"credProps": True}
    assert options["user"]["name"] == "alice" and options["excludeCredentials"] == []

    response = ready.post(ADD, {"label": "Blue key", "credential": key.register(options)})
    assert response.status_code == 302 and response["Location"] == LIST

    row = WebAuthnCredential.objects.get(user=user)
    assert (row.label, row.credential_id, row.sign_count) == ("Blue key", key.credential_id_b64, 0)
    assert row.transports == ["usb", "nfc"] and row.discoverable
    listing = page_text(ready.get(LIST))
    assert "Added the security key “Blue key”." in listing and "Passkey" in listing
    [event] = events(user, EventKind.WEBAUTHN_ADDED)
    assert event.details["label"] == "Blue key" and event.ip_address == "127.0.0.1"
    for address in ("alice@example.org", "alice@work.example"):
        assert subjects(mail, address) == ["A security key was added to your Relatch account"]
        assert 'named "Blue key"' in mail.text(mail.last(address))
        assert "If this wasn't you" in mail.text(mail.last(address))
    # The first second factor: a reminder to check it is scheduled (issue 3 §7).
    reminder = DBTaskResult.objects.get(task_path__endswith="send_factor_reminder")
    assert reminder.run_after - timezone.now() > timedelta(days=13)


def test_a_second_key_excludes_the_first_and_schedules_no_second_reminder(ready, user, key):
    """The same key twice would be one factor counted as two."""
    assert add_key_through_pages(ready, key).status_code == 302
    options = options_on(ready.get(ADD))
    assert [d["id"] for d in options["excludeCredentials"]] == [key.credential_id_b64]
    assert options["excludeCredentials"][0]["transports"] == ["usb", "nfc"]
    with pytest.raises(AuthenticatorRefused):
        key.register(options)

    second = SoftAuthenticator(discoverable=False)
    assert add_key_through_pages(ready, second, "Backup key").status_code == 302
    assert [k.label for k in WebAuthnCredential.objects.filter(user=user)] == [
        "Blue key", "Backup key",
    ]
    assert not WebAuthnCredential.objects.get(label="Backup key").discoverable
    assert DBTaskResult.objects.filter(task_path__endswith="send_factor_reminder").count() == 1


def test_the_same_key_registered_to_another_account_is_refused(ready, user, key, make_user):
    """A credential id belongs to one account: a copy of its registration cannot claim it."""
    register_directly(make_user(username="bob"), key)
    response = add_key_through_pages(ready, key)
    assert response.status_code == 400
    assert "This security key is already registered." in page_text(response)
    assert not WebAuthnCredential.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("", "Give the key a name"),
        ("   ", "Give the key a name"),
        ("k" * 65, "A key's name has at most 64 characters."),
        ("blue KEY", "You already have a security key named “blue KEY”."),
        ("tab\x07bell", "A key's name cannot contain control characters."),
    ],
)
def test_label_rules(ready, user, key, label, message, mail):
    """A name is required, at most 64 characters, and unique in the account ignoring case."""
    register_directly(user, SoftAuthenticator(), "Blue Key")
    mail.clear()
    response = add_key_through_pages(ready, key, label)
    assert response.status_code == 400
    assert message in page_text(response)
    assert WebAuthnCredential.objects.filter(user=user).count() == 1
    assert mail.messages == []


def test_a_label_of_64_characters_with_spaces_collapsed_is_accepted(ready, user, key):
    assert add_key_through_pages(ready, key, "  my   " + "k" * 61 + " ").status_code == 302
    assert WebAuthnCredential.objects.get(user=user).label == "my " + "k" * 61


def test_an_answer_refused_once_cannot_be_sent_again(ready, user, key):
    """ASVS 6.5.1: the challenge is spent by the first attempt, even a refused one; the page
    comes back with a fresh challenge, so a double submit adds nothing."""
    options = options_on(ready.get(ADD))
    answer = key.register(options)
    refused = ready.post(ADD, {"label": "", "credential": answer})
    assert refused.status_code == 400
    assert options_on(refused)["challenge"] != options["challenge"]
    again = ready.post(ADD, {"label": "Blue key", "credential": answer})
    assert again.status_code == 400
    assert "could not be verified" in page_text(again)
    assert not WebAuthnCredential.objects.exists()


def test_a_double_submit_adds_the_key_once(ready, user, key):
    options = options_on(ready.get(ADD))
    answer = key.register(options)
    assert ready.post(ADD, {"label": "Blue key", "credential": answer}).status_code == 302
    second = ready.post(ADD, {"label": "Blue key", "credential": answer})
    assert second.status_code == 400
    assert "already used" in page_text(second)
    assert WebAuthnCredential.objects.filter(user=user).count() == 1
    assert len(events(user, EventKind.WEBAUTHN_ADDED)) == 1


def test_a_registration_answer_from_another_session_is_refused(ready, user, key, make_client):
    """ASVS 6.6.2: the challenge is bound to the session that asked for it."""
    other = sign_in(make_client(), user)
    answer = key.register(options_on(other.get(ADD)))
    ready.get(ADD)  # this session has a challenge of its own
    response = ready.post(ADD, {"label": "Blue key", "credential": answer})
    assert response.status_code == 400
    assert not WebAuthnCredential.objects.exists()


@pytest.mark.parametrize(
    "answer",
    [
        {"origin": "https://relatch.evil.example"},
        {"origin": "http://testserver:8080"},
        {"rp_id": "evil.example"},
        {"challenge": "AAAA"},
    ],
)
def test_a_registration_for_another_site_or_challenge_is_refused(ready, user, key, answer):
    """NIST N32: a key registered through a look-alike site is not accepted."""
    response = add_key_through_pages(ready, key, **answer)
    assert response.status_code == 400
    assert "could not be verified, so the key was not added" in page_text(response)
    assert not WebAuthnCredential.objects.exists()
    assert not events(user, EventKind.WEBAUTHN_ADDED)


@pytest.mark.parametrize(
    ("credential", "message"),
    [
        ("x" * 100_000, "far too large"),
        ("", "did not send an answer"),
        ("not json", "could not be read"),
        ("[]", "could not be read"),
        ('{"id": 5}', "could not be read"),
        ("[" * 15_000, "could not be read"),
        ('{"id": "abc", "rawId": "abc", "type": "public-key", "response": {}}', "not added"),
        ('{"id": "abc", "rawId": "%%%", "type": "public-key", "response": '
         '{"clientDataJSON": "%%%", "attestationObject": "@@"}}', "not added"),
    ],
)
def test_garbage_and_oversized_answers_are_refused_cleanly(ready, user, credential, message):
    """Bad input gets a sentence and a 400, never a 500, and changes nothing."""
    ready.get(ADD)
    response = ready.post(ADD, {"label": "Blue key", "credential": credential})
    assert response.status_code == 400
    assert message in page_text(response)
    assert not WebAuthnCredential.objects.exists()


def test_adding_a_key_needs_a_recent_password(client, user, key):
    """NIST N13 / ASVS 7.5.1: a stale session cannot bind a key."""
    save_codes(user)
    stale = sign_in(client, user, reauthenticated=False)
    response = stale.get(ADD)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("signin:reauthenticate"))
    assert "next=%2Faccount%2Ftwo-factor%2Fkeys%2Fadd%2F" in response["Location"]
    posted = stale.post(ADD, {"label": "Blue key", "credential": key.register({
        "challenge": "AAAA", "user": {"id": "AAAA"}, "rp": {"id": "testserver"}})})
    assert posted.status_code == 302 and "reauthenticate" in posted["Location"]
    assert not WebAuthnCredential.objects.exists()


def test_a_first_factor_needs_saved_recovery_codes(signed_in, user):
    """Issue 3 §3: before a first second factor, the user saves their recovery codes."""
    response = signed_in.get(ADD)
    assert response.status_code == 302
    assert response["Location"] == reverse("recovery_codes:manage")


def test_with_an_authenticator_app_a_key_needs_no_new_codes(signed_in, user, key):
    TotpDevice.objects.create(user=user, encrypted_secret="x")
    assert add_key_through_pages(signed_in, key).status_code == 302
    assert WebAuthnCredential.objects.filter(user=user).exists()
    # Not the first factor: no reminder.
    assert not DBTaskResult.objects.filter(task_path__endswith="send_factor_reminder").exists()


def test_adding_a_key_needs_the_csrf_token(user, key):
    save_codes(user)
    browser = sign_in(CommittingClient(enforce_csrf_checks=True), user)
    options = options_on(browser.get(ADD))
    response = browser.post(ADD, {"label": "Blue key", "credential": key.register(options)})
    assert response.status_code == 403
    assert not WebAuthnCredential.objects.exists()


def test_an_account_has_at_most_twenty_keys(ready, user, key):
    for n in range(services.MAX_KEYS_PER_ACCOUNT):
        WebAuthnCredential.objects.create(
            user=user, label=f"key {n}", credential_id=f"fake{n:04d}", public_key=b"-"
        )
    assert "the most it can have" in page_text(ready.get(LIST))
    response = add_key_through_pages(ready, key)
    assert response.status_code == 400
    assert "An account has at most 20 security keys." in page_text(response)
    assert WebAuthnCredential.objects.filter(user=user).count() == 20


def test_the_relying_party_follows_the_base_url(ready, settings):
    """An IP address cannot be a WebAuthn RP id: the page says so instead of a browser error."""
    settings.BASE_URL = "http://127.0.0.1:8000"
    page = ready.get(ADD)
    assert options_on(page)["rp"]["id"] == "127.0.0.1"
    assert "reached by an IP address (http://127.0.0.1:8000)" in page_text(page)
    settings.BASE_URL = "https://pypi.example.org"
    page = ready.get(ADD)
    assert options_on(page)["rp"]["id"] == "pypi.example.org"
    assert "IP address" not in page_text(page)


def test_the_pages_use_no_inline_script_and_the_script_is_served(ready, client):
    """Strict CSP: the only scripts are the static file and the JSON data block."""
    body = ready.get(ADD).content.decode()
    scripts = re.findall(r"<script[^>]*>", body)
    assert scripts == [
        '<script src="/static/relatch/forms.js" defer>',
        '<script src="/static/relatch/times.js" defer>',
        '<script id="webauthn-options" type="application/json">',
        '<script src="/static/relatch/webauthn.js" defer>',
    ]
    served = client.get("/static/relatch/webauthn.js")
    assert served.status_code == 200
    source = b"".join(served.streaming_content).decode()
    assert 'getElementById("webauthn-options")' in source
    assert "The request was cancelled or timed out. Try again." in source


def test_the_list_shows_name_date_and_last_use(ready, user, key):
    row = register_directly(user, key)
    row.last_used_at = timezone.now() - timedelta(days=1)
    row.save()
    register_directly(user, SoftAuthenticator(discoverable=False), "Spare <key>")
    text = page_text(ready.get(LIST))
    assert "Blue key" in text and "Spare <key>" in text and "Never" in text
    assert "Spare &lt;key&gt;" in ready.get(LIST).content.decode()  # escaped
    assert ">1 day ago</time>" in text  # the exact moment is on hover
    assert f'title="{row.last_used_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"' in text


# --- signing in with a key (the services the two-step sign-in uses) ----------------------------


@pytest.fixture
def alice_key(user: User, key: SoftAuthenticator) -> WebAuthnCredential:
    return register_directly(user, key)


def test_a_registered_key_signs_in_and_its_use_is_recorded(user, key, alice_key):
    browser = Browser()
    options = browser.options(user)
    assert [d["id"] for d in options["allowCredentials"]] == [key.credential_id_b64]
    assert options["rpId"] == "testserver" and options["userVerification"] == "preferred"

    used = browser.verify(user, key.authenticate(options))
    assert used.pk == alice_key.pk
    alice_key.refresh_from_db()
    assert alice_key.sign_count == 1
    assert alice_key.last_used_at is not None
    assert timezone.now() - alice_key.last_used_at < timedelta(seconds=10)


def test_a_damaged_key_row_does_not_lock_its_owner_out(user, key, alice_key):
    WebAuthnCredential.objects.create(
        user=user, label="damaged", credential_id="abcde", public_key=b"-"
    )
    browser = Browser()
    options = browser.options(user)
    assert [d["id"] for d in options["allowCredentials"]] == [key.credential_id_b64]
    assert browser.verify(user, key.authenticate(options)).pk == alice_key.pk


def test_a_key_without_user_verification_is_still_a_second_factor(user, key, alice_key):
    browser = Browser()
    answer = key.authenticate(browser.options(user), user_verified=False)
    assert browser.verify(user, answer).pk == alice_key.pk


def refusal(browser: Browser, user: User | None, answer: str) -> WebAuthnError:
    with pytest.raises(WebAuthnError) as caught:
        browser.verify(user, answer)
    return caught.value


def test_a_replayed_answer_is_refused(user, key, alice_key):
    """ASVS 6.5.1: an answer is accepted once; its challenge is spent."""
    browser = Browser()
    answer = key.authenticate(browser.options(user))
    browser.verify(user, answer)
    assert refusal(browser, user, answer).reason == "no_challenge"
    cache.clear()  # another server process, which never saw the first use: the session knows
    assert refusal(browser, user, answer).reason == "no_challenge"
    browser.options(user)  # a new challenge does not revive the old answer
    assert refusal(browser, user, answer).reason == "invalid"
    alice_key.refresh_from_db()
    assert alice_key.sign_count == 1


def test_a_refused_answer_spends_the_challenge_too(user, key, alice_key):
    browser = Browser()
    options = browser.options(user)
    assert refusal(browser, user, key.authenticate(options, forge=True)).reason == "invalid"
    assert refusal(browser, user, key.authenticate(options)).reason == "no_challenge"


def test_an_answer_to_another_sessions_challenge_is_refused(user, key, alice_key):
    """ASVS 6.6.2: a challenge works only in the session that asked for it."""
    phished, attacker = Browser(), Browser()
    answer = key.authenticate(phished.options(user))
    assert refusal(attacker, user, answer).reason == "no_challenge"
    attacker.options(user)
    assert refusal(attacker, user, answer).reason == "invalid"


def test_two_requests_of_one_session_at_once_use_the_challenge_once(user, key, alice_key):
    """Both requests loaded the session (and its challenge) before either saved it."""
    browser = Browser()
    answer = key.authenticate(browser.options(user))
    first, second = browser.request(), browser.request()
    services.verify_authentication(request=first, user=user, credential_json=answer)
    with pytest.raises(WebAuthnError) as caught:
        services.verify_authentication(request=second, user=user, credential_json=answer)
    assert caught.value.reason == "no_challenge"


def test_a_challenge_expires(user, key, alice_key, monkeypatch):
    browser = Browser()
    answer = key.authenticate(browser.options(user))
    later = time.time() + challenges.CHALLENGE_MAX_AGE + 1
    monkeypatch.setattr(challenges.time, "time", lambda: later)
    error = refusal(browser, user, answer)
    assert error.reason == "expired" and "expired" in error.message


def test_a_challenge_for_one_account_does_not_sign_in_another(user, key, alice_key, make_user):
    bob = make_user(username="bob")
    bobs_key = SoftAuthenticator()
    register_directly(bob, bobs_key)
    browser = Browser()
    options = browser.options(user)
    assert refusal(browser, bob, bobs_key.authenticate({**options, "allowCredentials": []}))\
        .reason == "no_challenge"


@pytest.mark.parametrize(
    "answer",
    [
        {"origin": "https://relatch.evil.example"},
        {"origin": "https://testserver"},
        {"rp_id": "evil.example"},
        {"challenge": "AAAA"},
    ],
)
def test_an_answer_for_another_site_is_refused(user, key, alice_key, answer):
    """NIST N32: the origin and the RP id hash are checked, so a phishing site's answer fails."""
    browser = Browser()
    error = refusal(browser, user, key.authenticate(browser.options(user), **answer))
    assert error.reason == "invalid"
    assert error.message == "The security key's answer could not be verified. Try again."
    alice_key.refresh_from_db()
    assert alice_key.sign_count == 0 and alice_key.last_used_at is None


def test_a_key_of_another_account_is_refused(user, alice_key, make_user):
    bob = make_user(username="bob")
    bobs_key = SoftAuthenticator()
    register_directly(bob, bobs_key)
    browser = Browser()
    options = browser.options(user)
    error = refusal(browser, user, bobs_key.authenticate({**options, "allowCredentials": []}))
    assert error.reason == "unknown_credential"
    assert error.message == "That security key is not registered to your account."


@pytest.mark.parametrize("backwards_to", [0, 3, 5])
def test_a_counter_that_does_not_grow_is_refused_as_a_copied_key(
    user, key, alice_key, backwards_to
):
    """WebAuthn §6.1.1: a counter at or below the stored one means a cloned key."""
    browser = Browser()
    browser.verify(user, key.authenticate(browser.options(user), sign_count=5))
    error = refusal(
        browser, user, key.authenticate(browser.options(user), sign_count=backwards_to)
    )
    assert error.reason == "cloned" and "copied" in error.message
    alice_key.refresh_from_db()
    assert alice_key.sign_count == 5


def test_a_key_without_a_counter_is_accepted_every_time(user):
    """Synced passkeys always report 0: nothing to compare, nothing refused."""
    key = SoftAuthenticator(counts=False)
    register_directly(user, key)
    browser = Browser()
    for _ in range(2):
        browser.verify(user, key.authenticate(browser.options(user)))
    assert WebAuthnCredential.objects.get(user=user).sign_count == 0


def test_a_forged_signature_is_refused(user, key, alice_key):
    browser = Browser()
    error = refusal(browser, user, key.authenticate(browser.options(user), forge=True))
    assert error.reason == "invalid"
    alice_key.refresh_from_db()
    assert alice_key.last_used_at is None


@pytest.mark.parametrize(
    "answer",
    ["x" * 100_000, "", "garbage", "[]", "null", '{"id": ""}', "[" * 15_000,
     '{"id": "abc", "rawId": "abc", "type": "public-key", "response": {"signature": 7}}'],
)
def test_garbage_sign_in_answers_are_refused_cleanly(user, alice_key, answer):
    browser = Browser()
    browser.options(user)
    error = refusal(browser, user, answer)
    assert error.reason in {"malformed", "unknown_credential"}
    assert refusal(browser, user, answer).reason == "no_challenge"  # spent all the same


def test_sign_in_without_a_challenge_is_refused(user, key, alice_key):
    error = refusal(Browser(), user, key.authenticate({"challenge": "AAAA"}))
    assert error.reason == "no_challenge"


# --- passkeys: the key names the account -----------------------------------------------------


def test_a_passkey_signs_in_without_naming_the_account(user, key, alice_key):
    browser = Browser()
    options = browser.options(None)
    assert options["allowCredentials"] == [] and options["userVerification"] == "required"
    used = browser.verify(None, key.authenticate(options))
    assert used.user == user and used.sign_count == 1


def test_a_passkey_must_verify_its_user(user, key, alice_key):
    """Without a password first, the key must be two factors by itself (PIN or biometric)."""
    browser = Browser()
    error = refusal(browser, None, key.authenticate(browser.options(None), user_verified=False))
    assert error.reason == "invalid"


def test_an_unknown_passkey_is_refused(db):
    browser = Browser()
    stranger = SoftAuthenticator()
    stranger.user_handle = b"someone"
    error = refusal(browser, None, stranger.authenticate(browser.options(None)))
    assert error.reason == "unknown_credential"
    assert error.message == "That passkey is not registered with Relatch."


def test_a_passkey_of_a_disabled_account_is_refused(user, key, alice_key):
    User.objects.filter(pk=user.pk).update(is_active=False)
    browser = Browser()
    assert refusal(browser, None, key.authenticate(browser.options(None))).reason == (
        "unknown_credential"
    )


def test_a_passkey_challenge_is_not_an_account_challenge(user, key, alice_key):
    browser = Browser()
    answer = key.authenticate(browser.options(None))
    assert refusal(browser, user, answer).reason == "no_challenge"


# --- renaming and removing ---------------------------------------------------------------------


def rename_url(row: WebAuthnCredential) -> str:
    return reverse("webauthn:rename", args=[row.pk])


def remove_url(row: WebAuthnCredential) -> str:
    return reverse("webauthn:remove", args=[row.pk])


def test_renaming_a_key_is_recorded_and_announced(ready, user, alice_key, mail):
    """NIST N14 / N15: every change of an authenticator is recorded and announced."""
    user.emails.create(address="alice@work.example", verified=True, verified_at=timezone.now())
    mail.clear()
    response = ready.post(rename_url(alice_key), {"label": " Alice's   key "})
    assert response.status_code == 302 and response["Location"] == LIST
    alice_key.refresh_from_db()
    assert alice_key.label == "Alice's key"
    [event] = events(user, EventKind.WEBAUTHN_RENAMED)
    assert event.details == {"key_id": alice_key.pk, "from": "Blue key", "to": "Alice's key"}
    for address in ("alice@example.org", "alice@work.example"):
        text = mail.text(mail.last(address))
        assert 'The security key "Blue key"' in text and 'now named "Alice\'s key"' in text


def test_renaming_to_the_same_name_changes_nothing(ready, user, alice_key, mail):
    mail.clear()
    assert ready.post(rename_url(alice_key), {"label": "Blue key"}).status_code == 302
    assert not events(user, EventKind.WEBAUTHN_RENAMED) and mail.messages == []


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("", "Give the key a name"),
        ("k" * 65, "at most 64 characters"),
        ("SPARE", "You already have a security key named “SPARE”."),
    ],
)
def test_renaming_follows_the_label_rules(ready, user, alice_key, label, message):
    register_directly(user, SoftAuthenticator(), "spare")
    response = ready.post(rename_url(alice_key), {"label": label})
    assert response.status_code == 400
    assert message in page_text(response)
    alice_key.refresh_from_db()
    assert alice_key.label == "Blue key"


def test_renaming_needs_a_recent_password(client, user, alice_key):
    """ASVS 7.5.1: after confirming, the user comes back to the list and sends it again."""
    stale = sign_in(client, user, reauthenticated=False)
    response = stale.post(rename_url(alice_key), {"label": "Stolen"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("signin:reauthenticate"))
    assert "next=%2Faccount%2Ftwo-factor%2Fkeys%2F" in response["Location"]
    alice_key.refresh_from_db()
    assert alice_key.label == "Blue key"


def test_keys_of_another_account_cannot_be_renamed_or_removed(ready, make_user):
    bobs = register_directly(make_user(username="bob"), SoftAuthenticator())
    assert ready.post(rename_url(bobs), {"label": "mine now"}).status_code == 404
    assert ready.post(remove_url(bobs)).status_code == 404
    bobs.refresh_from_db()
    assert bobs.label == "Blue key"


def test_rename_and_remove_are_post_only(ready, alice_key):
    assert ready.get(rename_url(alice_key)).status_code == 405
    assert ready.get(remove_url(alice_key)).status_code == 405
    assert WebAuthnCredential.objects.filter(pk=alice_key.pk).exists()


def test_removing_a_key_is_recorded_and_announced(ready, user, alice_key, mail):
    """ASVS 6.5.6: a key can be revoked; NIST N14 / N15: recorded and announced."""
    user.emails.create(address="alice@work.example", verified=True, verified_at=timezone.now())
    mail.clear()
    response = ready.post(remove_url(alice_key))
    assert response.status_code == 302
    assert "Removed the security key “Blue key”." in page_text(ready.get(LIST))
    assert not WebAuthnCredential.objects.filter(pk=alice_key.pk).exists()
    [event] = events(user, EventKind.WEBAUTHN_REMOVED)
    assert event.details["label"] == "Blue key" and event.details["second_factors_left"] == 0
    for address in ("alice@example.org", "alice@work.example"):
        assert subjects(mail, address) == [
            "A security key was removed from your Relatch account"
        ]
        assert "no second factor left" in mail.text(mail.last(address))


def test_removing_needs_a_recent_password(client, user, alice_key, mail):
    mail.clear()
    stale = sign_in(client, user, reauthenticated=False)
    response = stale.post(remove_url(alice_key))
    assert response.status_code == 302 and "reauthenticate" in response["Location"]
    assert WebAuthnCredential.objects.filter(pk=alice_key.pk).exists()
    assert mail.messages == []


def test_the_last_factor_of_a_project_owner_is_not_removed(ready, user, alice_key):
    """Issue 3 §6: removing the last second factor of an account owning projects is refused."""
    make_project("alices-pkg", owners=(user,))
    response = ready.post(remove_url(alice_key))
    assert response.status_code == 400
    assert "This is your last second factor and your account owns projects" in page_text(response)
    assert WebAuthnCredential.objects.filter(pk=alice_key.pk).exists()
    assert not events(user, EventKind.WEBAUTHN_REMOVED)

    TotpDevice.objects.create(user=user, encrypted_secret="x")  # another factor remains
    assert ready.post(remove_url(alice_key)).status_code == 302
    assert not WebAuthnCredential.objects.filter(pk=alice_key.pk).exists()


def test_removing_needs_the_csrf_token(user, alice_key):
    browser = sign_in(Client(enforce_csrf_checks=True), user)
    assert browser.post(remove_url(alice_key)).status_code == 403
    assert WebAuthnCredential.objects.filter(pk=alice_key.pk).exists()
