"""Registration (issue 2, point 4): PyPI's username rules, NIST passwords, a honeypot, a rate
limit, and a registered address that is never revealed."""

import re
from typing import Any, ClassVar

import pytest
from django.contrib.auth.hashers import identify_hasher
from django.test import Client
from django.urls import reverse

from relatch.accounts.devices import cookie_name
from relatch.accounts.emails.services import normalize_address
from relatch.accounts.models import Email, User, UserSession
from relatch.accounts.sessions.services import session_digest
from relatch.audit.models import EventKind, Factor, SecurityEvent
from tests.conftest import PASSWORD, CommittingClient, sign_in
from tests.hashers import FastArgon2idHasher

pytestmark = pytest.mark.django_db

VERIFY_PREFIX = "/account/emails/verify/"


def register_url() -> str:
    return reverse("registration:register")


def check_mail_url() -> str:
    return reverse("registration:check_mail")


def form(**overrides: str) -> dict[str, str]:
    data = {
        "username": "bob",
        "name": "Bob Builder",
        "email": "bob@example.net",
        "password": PASSWORD,
        "password_again": PASSWORD,
        "homepage": "",
    }
    return {**data, **overrides}


def assert_nothing_created(mail: Any, users_before: int = 0) -> None:
    assert User.objects.count() == users_before
    assert mail.messages == []


# --- the page ---------------------------------------------------------------------------------


def test_page_lets_password_managers_fill_and_paste_the_password(client):
    """NIST N30, ASVS 6.2.x: new-password autocomplete, paste never blocked."""
    response = client.get(register_url())
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('autocomplete="new-password"') == 2
    assert "onpaste" not in html.lower()
    assert 'class="honeypot" aria-hidden="true"' in html
    assert 'tabindex="-1"' in html


def test_signed_in_visitor_is_sent_to_their_account(client, user):
    sign_in(client, user)
    response = client.get(register_url())
    assert response.status_code == 302
    assert response["Location"] == reverse("account:overview")


# --- the happy path ---------------------------------------------------------------------------


def test_registration_mails_a_link_that_verifies_the_address(client, mail):
    """ASVS 6.4.1: the activation link is single use; the registrant is signed in meanwhile
    (test_registering_signs_in_as_a_password_sign_in_does)."""
    response = client.post(register_url(), form())
    assert response.status_code == 302
    assert response["Location"] == check_mail_url()
    assert "Check your mail" in client.get(check_mail_url()).content.decode()

    user = User.objects.get(username="bob")
    assert user.name == "Bob Builder"
    assert identify_hasher(user.password).algorithm == "argon2"
    assert user.password.startswith("argon2$argon2id$")
    assert user.check_password(PASSWORD)
    email = Email.objects.get(user=user)
    assert (email.address, email.primary, email.verified) == ("bob@example.net", True, False)
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.ACCOUNT_CREATED).count() == 1

    message = mail.last("bob@example.net")
    assert message["Subject"] == "Verify your address for Relatch"
    assert "bob@example.net" in mail.html(message)
    link = mail.link_to(message, VERIFY_PREFIX)

    # Opening the link (as a mail scanner does) changes nothing; the button verifies.
    page = client.get(link)
    assert page.status_code == 200
    assert "Verify bob@example.net" in page.content.decode()
    email.refresh_from_db()
    assert not email.verified

    done = client.post(link)
    assert done.status_code == 302
    assert done["Location"] == reverse("emails:manage")
    email.refresh_from_db()
    assert email.verified and email.verified_at is not None and email.primary
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.EMAIL_VERIFIED).count() == 1
    # Verified, the signed-in account opens.
    assert client.get(reverse("account:overview")).status_code == 200


def test_name_is_optional(client):
    response = client.post(register_url(), form(name=""))
    assert response.status_code == 302
    assert User.objects.get(username="bob").name == ""


@pytest.mark.parametrize(
    "password",
    [
        "purple monkey dishwasher",  # lower case only: no composition rules
        "x" * 40 + " a passphrase well beyond sixty-four characters " + "y" * 40,
        "Dünn-Äpfel süß 🍏🍏",  # any Unicode character
    ],
)
def test_long_and_plain_passwords_are_accepted(client, password):
    """NIST N30 / ASVS 6.2.x: no composition rules, long passphrases welcome, no truncation."""
    response = client.post(register_url(), form(password=password, password_again=password))
    assert response.status_code == 302
    assert User.objects.get(username="bob").check_password(password)
    assert not User.objects.get(username="bob").check_password(password[:-1])


# --- refused fields ---------------------------------------------------------------------------


def test_taken_username_is_said_plainly(client, user, mail):
    """Usernames are public: saying one is taken reveals nothing (issue 2 §4)."""
    for taken in ("alice", "ALICE", "Alice"):
        response = client.post(register_url(), form(username=taken))
        assert response.status_code == 400
        assert "This username is taken" in response.content.decode()
    assert User.objects.count() == 1
    assert mail.messages == []


@pytest.mark.parametrize(
    ("username", "reason"),
    [
        ("admin", "reserved"),
        ("Support", "reserved"),
        ("-bob", "starting and ending with a letter or digit"),
        ("bob.", "starting and ending with a letter or digit"),
        ("bo b", "Use letters, digits"),
        ("böb", "Use letters, digits"),
        ("b" * 51, "at most 50 characters"),
        ("b" * 5000, "at most 50 characters"),
        ("", "This field is required"),
    ],
)
def test_username_rules_refuse(client, mail, username, reason):
    response = client.post(register_url(), form(username=username))
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert_nothing_created(mail)


@pytest.mark.parametrize("username", ["b", "b" * 50, "bob.the_builder-2", "B0B"])
def test_username_rules_allow(client, username):
    response = client.post(register_url(), form(username=username))
    assert response.status_code == 302
    assert User.objects.filter(username=username).exists()


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1", "This password is too short. It must contain at least 8 characters."),
        ("", "This field is required"),
        ("qwertyuiop", "This password is too common."),
        ("iloveyou2", "This password is too common."),
        ("Relatch2024!", "built on a word attackers try first"),
        ("x" * 1025, "longer than 1024 characters"),
        ("bobthebuilder", "too similar to the username"),
    ],
)
def test_weak_password_is_refused_with_its_reason(client, mail, password, reason):
    """NIST N30: blocklist with the reason for rejection; at least 8 characters."""
    data = form(username="bobthebuilder", password=password, password_again=password)
    response = client.post(register_url(), data)
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert_nothing_created(mail)


def test_passwords_that_differ_are_refused(client, mail):
    response = client.post(register_url(), form(password_again=PASSWORD + "!"))
    assert response.status_code == 400
    assert "The two passwords differ" in response.content.decode()
    assert_nothing_created(mail)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"email": "not-an-address"}, "Enter a valid email address."),
        ({"email": "bob@@example.net"}, "Enter a valid email address."),
        ({"email": ""}, "This field is required"),
        ({"email": "b" * 250 + "@example.net"}, "at most 254 characters"),
        ({"name": "n" * 101}, "at most 100 characters"),
    ],
)
def test_bad_email_or_name_is_refused(client, mail, overrides, reason):
    response = client.post(register_url(), form(**overrides))
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert_nothing_created(mail)


# --- bots -------------------------------------------------------------------------------------


def test_honeypot_shows_the_same_page_and_creates_nothing(client, mail):
    response = client.post(register_url(), form(homepage="http://spam.example"))
    assert response.status_code == 302
    assert response["Location"] == check_mail_url()
    assert_nothing_created(mail)
    assert SecurityEvent.objects.count() == 0


def test_rate_limit_per_ip_stops_the_eleventh_account(client, mail, make_client):
    for n in range(10):  # a browser each: a registration signs its browser in
        response = make_client().post(register_url(),
                                      form(username=f"bot{n}", email=f"b{n}@example.net"))
        assert response.status_code == 302
    response = client.post(register_url(), form(username="bot10", email="b10@example.net"))
    assert response.status_code == 429
    assert "Too many accounts were registered from your network" in response.content.decode()
    assert not User.objects.filter(username="bot10").exists()
    assert mail.to("b10@example.net") == []

    elsewhere = make_client()
    other_ip = elsewhere.post(
        register_url(), form(username="bot10", email="b10@example.net"), REMOTE_ADDR="192.0.2.7"
    )
    assert other_ip.status_code == 302
    assert User.objects.filter(username="bot10").exists()


def test_missing_csrf_token_is_refused(mail):
    csrf_client = CommittingClient(enforce_csrf_checks=True)
    response = csrf_client.post(register_url(), form())
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
    assert_nothing_created(mail)


def test_double_submit_creates_one_account(client, make_client, mail):
    first = client.post(register_url(), form())
    again = client.post(register_url(), form())  # signed in now: sent to the account
    elsewhere = make_client().post(register_url(), form())
    assert first.status_code == 302
    assert (again.status_code, again["Location"]) == (302, reverse("account:overview"))
    assert elsewhere.status_code == 400
    assert "This username is taken" in elsewhere.content.decode()
    assert User.objects.filter(username="bob").count() == 1
    assert len(mail.to("bob@example.net")) == 1


# --- registered addresses are never revealed --------------------------------------------------


def same_page(response: Any, username: str, address: str) -> str:
    """The page with the visitor's own name, address and CSRF token taken out."""
    page = response.content.decode().replace(username, "USERNAME").replace(address, "ADDRESS")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page)


class CountingHasher(FastArgon2idHasher):
    """Counts the passwords hashed, to show both sign-up paths do the same slow work."""

    calls: ClassVar[list[str]] = []

    def encode(self, password: str, salt: str) -> str:
        self.calls.append(password)
        return super().encode(password, salt)


@pytest.mark.parametrize("typed", ["alice@example.org", "ALICE@Example.org"])
def test_verified_address_gets_the_same_response_and_its_owner_a_warning(
    client, make_client, user, mail, settings, typed
):
    """ASVS 6.3.8 / OWASP FP1-FP2: same page, status and hashing work; the owner is told."""
    settings.PASSWORD_HASHERS = ["tests.accounts.test_registration.CountingHasher"]
    CountingHasher.calls.clear()
    fresh_client = make_client()
    fresh = fresh_client.post(register_url(), form(username="newbie", email="new@example.net"))
    fresh_hashes = len(CountingHasher.calls)
    CountingHasher.calls.clear()

    taken = client.post(register_url(), form(username="mallory", email=typed))

    assert (taken.status_code, taken["Location"]) == (fresh.status_code, fresh["Location"])
    assert sorted(taken.cookies) == sorted(fresh.cookies)
    assert len(CountingHasher.calls) == fresh_hashes == 1
    # Both are signed in, to an account whose only address waits for its link, and see the
    # same page but for their own name and address.
    assert "_auth_user_id" in client.session
    address = normalize_address(typed)
    shown = same_page(client.get(taken["Location"]), "mallory", address)
    assert shown == same_page(fresh_client.get(fresh["Location"]), "newbie", "new@example.net")
    assert "Verify ADDRESS to use your account" in shown
    mallory = User.objects.get(username="mallory")
    copy = Email.objects.get(user=mallory)
    assert (copy.verified, copy.primary) == (False, True)
    assert Email.objects.get(address__iexact="alice@example.org", verified=True).user == user

    warning = mail.last("alice@example.org")
    assert warning["Subject"] == "Someone tried to register with your address"
    assert "alice" in mail.text(warning) and "mallory" in mail.text(warning)
    assert VERIFY_PREFIX not in mail.text(warning)
    assert len(mail.to("alice@example.org")) == 1
    event = SecurityEvent.objects.get(user=user, kind=EventKind.SIGNUP_ATTEMPT_WITH_EMAIL)
    assert event.details["attempted_username"] == "mallory"
    assert event.ip_address == "127.0.0.1"


def test_address_held_unverified_elsewhere_does_not_block_registration(client, make_user, mail):
    """A typo or a squatter holding an unverified address cannot stop its real owner."""
    make_user(username="squatter", email="shared@example.net", verified=False)
    response = client.post(register_url(), form(username="realowner", email="shared@example.net"))
    assert response.status_code == 302
    owner = User.objects.get(username="realowner")
    assert Email.objects.filter(address="shared@example.net").count() == 2

    link = mail.link_to(mail.last("shared@example.net"), VERIFY_PREFIX)
    assert client.post(link).status_code == 302
    assert Email.objects.get(user=owner).verified


def test_mail_to_one_address_is_limited_across_registrations(make_client, mail):
    """Registering over and over with someone's address cannot flood their inbox."""
    for n in range(6):
        response = make_client().post(
            register_url(),
            form(username=f"spam{n}", email="victim@example.net"),
            REMOTE_ADDR=f"192.0.2.{n + 1}",
        )
        assert response.status_code == 302
    assert User.objects.filter(username__startswith="spam").count() == 6
    assert len(mail.to("victim@example.net")) == 5


def test_the_new_account_must_verify_before_anything_else(client, mail):
    """Issue 2 §5: signed in with only an unverified address, the address page is all there is."""
    client.post(register_url(), form())
    response = client.get(reverse("account:overview"))
    assert response.status_code == 302
    assert response["Location"] == reverse("emails:manage")
    page = client.get(reverse("emails:manage"))
    assert "Verify your email address to use your account" in page.content.decode()


# --- signed in at once, behind the same wall as any unverified account (issue 19) ----------


def test_registering_signs_in_as_a_password_sign_in_does(client, mail):
    """A listed session row for the session cookie, a SIGNIN_SUCCEEDED event with the
    password factor, a fresh re-authentication and this browser remembered."""
    response = client.post(register_url(), form())
    bob = User.objects.get(username="bob")
    assert client.session["_auth_user_id"] == str(bob.pk)
    row = UserSession.objects.get(user=bob)
    assert row.session_digest == session_digest(client.session.session_key)
    event = SecurityEvent.objects.get(user=bob, kind=EventKind.SIGNIN_SUCCEEDED)
    assert (event.factor, event.details["after"]) == (Factor.PASSWORD, "registration")
    assert "relatch_reauth_at" in client.session
    assert bob.known_devices.count() == 1 and not bob.known_devices.get().confirmed
    assert cookie_name() in response.cookies


def test_the_check_mail_page_names_the_address(client, mail):
    client.post(register_url(), form(email="Bob@Example.NET"))
    page = client.get(check_mail_url()).content.decode()
    assert "Verify Bob@example.net to use your account." in page
    assert "You are signed in as bob." in page
    assert reverse("emails:manage") in page
    # Not signed in (a bot through the honeypot, a bookmark): no address to name.
    assert "Verify" not in Client().get(check_mail_url()).content.decode()


@pytest.mark.parametrize(("path", "allowed"), [
    ("emails:manage", True), ("registration:check_mail", True), ("home", True),
    ("conduct", True), ("account:overview", False), ("tokens:list", False),
    ("tokens:create", False), ("manage:projects", False), ("mfa:overview", False),
    ("sessions:list", False), ("passwords:change", False),
])
def test_a_new_account_may_do_only_what_any_unverified_one_may(client, mail, path, allowed):
    """Signing in at registration skips nothing: until an address is verified, the address
    page (and the public pages) are all the account reaches, as after a password sign-in."""
    client.post(register_url(), form())
    response = client.get(reverse(path))
    if allowed:
        assert response.status_code == 200
    else:
        assert (response.status_code, response["Location"]) == (302, reverse("emails:manage"))


@pytest.mark.parametrize("data", [form(homepage="http://spam.example"), form(password_again="x"),
                                  form(username="alice")])
def test_no_account_made_means_no_one_signed_in(client, user, mail, data):
    client.post(register_url(), data)
    assert "_auth_user_id" not in client.session
    assert not UserSession.objects.exists()
    assert not SecurityEvent.objects.filter(kind=EventKind.SIGNIN_SUCCEEDED).exists()


def test_registration_is_a_public_page():
    response = Client().get(register_url())
    assert response.status_code == 200
