"""Sign-in, sign-out and known devices (issue 2 §6)."""

import hashlib

import pytest
from django.http import HttpRequest
from django.test import Client

from relatch.accounts.devices import cookie_name, device_id_from_request
from relatch.accounts.models import KnownDevice, User, UserSession
from relatch.accounts.sessions.services import session_digest
from relatch.audit.models import EventKind, SecurityEvent
from tests.conftest import PASSWORD, sign_in

LOGIN = "/account/login/"
WRONG = "Username or password is wrong."


def post_login(client: Client, identifier: str, password: str = PASSWORD, **data):
    return client.post(LOGIN, {"identifier": identifier, "password": password, **data})


def signed_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def events(user: User, kind: EventKind) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(user=user, kind=kind))


def device_id_of(client: Client) -> str | None:
    request = HttpRequest()
    morsel = client.cookies.get(cookie_name())
    request.COOKIES = {cookie_name(): morsel.value} if morsel else {}
    return device_id_from_request(request)


def test_login_page_is_public(client):
    response = client.get(LOGIN)
    assert response.status_code == 200
    assert "Username or email address" in response.text
    assert "Forgot your password?" in response.text


@pytest.mark.parametrize(
    "identifier", ["alice", "ALICE", "alice@example.org", "Alice@Example.ORG", "  alice  "]
)
def test_sign_in_by_username_or_email_in_any_case(client, user, identifier):
    """Username or verified address, ignoring case; the session is listed; the event has the
    factor (ASVS 16.3.1)."""
    response = post_login(client, identifier)
    assert response.status_code == 302
    assert response["Location"] == "/account/"
    assert signed_in_user_id(client) == str(user.pk)
    row = UserSession.objects.get(user=user)
    assert row.session_digest == session_digest(client.session.session_key)
    [event] = events(user, EventKind.SIGNIN_SUCCEEDED)
    assert event.factor == "password"
    assert event.details == {"new_device": True}


def test_new_session_id_at_sign_in(client, user):
    """ASVS 7.2.4: a session id handed out before sign-in (fixation) is worth nothing after."""
    session = client.session
    session["visited"] = True
    session.save()
    before = client.session.session_key
    post_login(client, "alice")
    after = client.session.session_key
    assert before and after and before != after
    assert signed_in_user_id(client) == str(user.pk)


def test_signing_in_again_gets_a_new_session_and_drops_the_old_row(client, user):
    post_login(client, "alice")
    first = client.session.session_key
    post_login(client, "alice")
    second = client.session.session_key
    assert first != second
    assert list(UserSession.objects.values_list("session_digest", flat=True)) == [
        session_digest(second)
    ]


def test_switching_accounts_in_one_browser(client, user, make_user):
    bob = make_user(username="bob")
    post_login(client, "alice")
    post_login(client, "bob")
    assert signed_in_user_id(client) == str(bob.pk)
    assert not UserSession.objects.filter(user=user).exists()
    assert UserSession.objects.filter(user=bob).count() == 1


@pytest.mark.parametrize(
    ("identifier", "password", "account_event"),
    [
        ("alice", "wrong password", True),  # wrong password
        ("alice@example.org", "wrong password", True),
        ("nobody", PASSWORD, False),  # unknown username
        ("nobody@example.org", PASSWORD, False),  # unknown address
    ],
)
def test_refused_sign_in_says_the_same_thing(client, user, identifier, password, account_event):
    """ASVS 6.3.8: one message and one status for a wrong password and an unknown account."""
    response = post_login(client, identifier, password)
    assert response.status_code == 200
    assert WRONG in response.text
    assert signed_in_user_id(client) is None
    assert not UserSession.objects.exists()
    failed = events(user, EventKind.SIGNIN_FAILED)
    assert len(failed) == (1 if account_event else 0)
    if account_event:
        assert failed[0].factor == "password"
        assert failed[0].ip_address == "127.0.0.1"


def test_inactive_account_cannot_sign_in(client, make_user):
    carol = make_user(username="carol")
    User.objects.filter(pk=carol.pk).update(is_active=False)
    response = post_login(client, "carol")
    assert response.status_code == 200
    assert WRONG in response.text
    assert signed_in_user_id(client) is None


def test_account_without_password_cannot_sign_in(client, make_user):
    dave = make_user(username="dave")
    dave.set_unusable_password()
    dave.save()
    response = post_login(client, "dave", PASSWORD)
    assert response.status_code == 200
    assert WRONG in response.text
    assert signed_in_user_id(client) is None


def test_unverified_address_is_not_a_sign_in_name_for_a_taken_address(client, user, make_user):
    """An unverified copy of alice's address on another account does not sign that one in."""
    make_user(username="mallory", email="alice@example.org", verified=False)
    post_login(client, "alice@example.org")
    assert signed_in_user_id(client) == str(user.pk)


def test_account_with_no_verified_address_signs_in_and_must_verify(client, make_user):
    """Sign-in works; every other page then sends the user to their addresses (issue 2 §5)."""
    erin = make_user(username="erin", verified=False)
    response = post_login(client, "erin")
    assert response.status_code == 302
    assert signed_in_user_id(client) == str(erin.pk)
    response = client.get("/account/password/")
    assert response.status_code == 302
    assert response["Location"] == "/account/emails/"


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("/account/password/", "/account/password/"),
        ("/account/sessions/?page=2", "/account/sessions/?page=2"),
        ("https://evil.example/", "/account/"),
        ("//evil.example/steal", "/account/"),
        ("http://testserver.evil.example/", "/account/"),
        ("javascript:alert(1)", "/account/"),
        ("/" + "a" * 3000, "/account/"),
        ("", "/account/"),
    ],
)
def test_next_is_followed_only_within_the_site(client, user, next_url, expected):
    """No open redirect after sign-in."""
    response = post_login(client, "alice", next=next_url)
    assert response.status_code == 302
    assert response["Location"] == expected


def test_next_from_the_address_is_kept_in_the_form(client, user):
    response = client.get(LOGIN + "?next=/account/password/")
    assert 'name="next" value="/account/password/"' in response.text
    unsafe = client.get(LOGIN + "?next=https://evil.example/")
    assert "evil.example" not in unsafe.text


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"identifier": "", "password": PASSWORD}, "Enter your username or email address."),
        ({"identifier": "alice", "password": ""}, "This field is required."),
        ({"identifier": "a" * 255, "password": PASSWORD}, "at most 254 characters"),
        ({"identifier": "alice", "password": "p" * 1025}, "at most 1024 characters"),
    ],
)
def test_empty_or_overlong_fields_are_refused_without_an_attempt(client, user, data, error):
    response = client.post(LOGIN, data)
    assert response.status_code == 200
    assert error in response.text
    assert signed_in_user_id(client) is None
    assert not SecurityEvent.objects.filter(kind=EventKind.SIGNIN_FAILED).exists()
    user.refresh_from_db()
    assert user.failed_signins == 0


def test_sign_in_without_csrf_token_is_refused(user):
    browser = Client(enforce_csrf_checks=True)
    response = post_login(browser, "alice")
    assert response.status_code == 403
    assert signed_in_user_id(browser) is None
    assert not SecurityEvent.objects.filter(kind=EventKind.SIGNIN_SUCCEEDED).exists()


def test_sign_in_remembers_the_device_in_a_signed_cookie(client, user):
    post_login(client, "alice")
    morsel = client.cookies[cookie_name()]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert int(morsel["max-age"]) >= 364 * 24 * 3600
    device_id = device_id_of(client)
    assert device_id is not None and len(device_id) >= 43
    device = KnownDevice.objects.get(user=user)
    # Only a digest is stored: a copy of the database gives no usable cookie.
    assert device.device_digest == hashlib.sha256(device_id.encode()).hexdigest()
    assert device_id not in device.device_digest
    assert device.ip_address == "127.0.0.1"


def test_a_forged_device_cookie_is_ignored(client, user):
    client.cookies[cookie_name()] = "A" * 43  # unsigned
    post_login(client, "alice")
    [event] = events(user, EventKind.SIGNIN_SUCCEEDED)
    assert event.details == {"new_device": True}
    assert device_id_of(client) != "A" * 43


def test_the_device_keeps_its_id_and_is_known_next_time(client, user):
    post_login(client, "alice")
    first_id = device_id_of(client)
    client.post("/account/logout/")
    post_login(client, "alice")
    assert device_id_of(client) == first_id
    assert KnownDevice.objects.filter(user=user).count() == 1
    latest = SecurityEvent.objects.filter(kind=EventKind.SIGNIN_SUCCEEDED).first()
    assert latest is not None and latest.details == {"new_device": False}


def test_one_browser_is_known_to_several_accounts(client, user, make_user):
    bob = make_user(username="bob")
    post_login(client, "alice")
    post_login(client, "bob")
    alice_device = KnownDevice.objects.get(user=user)
    bob_device = KnownDevice.objects.get(user=bob)
    assert alice_device.device_digest == bob_device.device_digest


def test_sign_out_ends_the_session(client, user):
    post_login(client, "alice")
    response = client.post("/account/logout/")
    assert response.status_code == 302
    assert signed_in_user_id(client) is None
    assert not UserSession.objects.filter(user=user).exists()
    [event] = events(user, EventKind.SIGNED_OUT)
    assert event.ip_address == "127.0.0.1"
    assert client.get("/account/password/").status_code == 302  # to the sign-in page


def test_sign_out_by_get_is_refused(client, user):
    post_login(client, "alice")
    response = client.get("/account/logout/")
    assert response.status_code == 405
    assert signed_in_user_id(client) == str(user.pk)


def test_sign_out_when_already_signed_out_is_harmless(client):
    response = client.post("/account/logout/")
    assert response.status_code == 302
    assert not SecurityEvent.objects.exists()


def test_sign_out_in_one_browser_keeps_the_other_signed_in(client, user, make_client):
    post_login(client, "alice")
    other = sign_in(make_client(), user)
    client.post("/account/logout/")
    assert other.get("/account/password/").status_code == 200

