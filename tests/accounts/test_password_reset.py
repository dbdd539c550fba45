"""Password reset by email (OWASP FP1–FP11, ASVS 6.3.8, 6.4.3, 7.4.3, issue 2 §6)."""

from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_tasks_db.models import DBTaskResult

from relatch.accounts.models import Email, KnownDevice, User, UserSession
from relatch.accounts.passwords.reset import ResetTokenGenerator, reset_tokens
from relatch.audit.models import EventKind, SecurityEvent
from relatch.notify.models import OutgoingEmail
from relatch.web.logging import redact
from tests.conftest import PASSWORD, Mailbox, sign_in

RESET = "/account/reset/"
NEW = "a brand new passphrase for alice"
INVALID = "This reset link does not work"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def ask(client: Client, identifier: str, **extra):
    return client.post(RESET, {"identifier": identifier}, **extra)


def reset_link(client: Client, mail: Mailbox, address: str = "alice@example.org") -> str:
    """The path of the link mailed to ``address`` (whatever host BASE_URL names)."""
    ask(client, address)
    return urlsplit(mail.link_to(mail.last(address), RESET)).path


def set_new_password(client: Client, link: str, new: str = NEW, again: str | None = None):
    """Follow the link as a browser does; returns the response to the new-password form."""
    opened = client.get(link)
    assert opened.status_code == 302, opened.status_code
    return client.post(opened["Location"], {"new_password1": new, "new_password2": again or new})


def password_is(user: User, password: str) -> bool:
    user.refresh_from_db()
    return user.check_password(password)


def test_reset_page_asks_for_a_username_or_address(client):
    response = client.get(RESET)
    assert response.status_code == 200
    assert "Username or email address" in response.text


@pytest.mark.parametrize(
    "identifier",
    [
        "alice",  # an account
        "ALICE@example.org",  # its verified address, another case
        "nobody",  # no such account
        "nobody@example.org",
        "erin",  # an account whose only address is unverified
        "erin@example.org",
        "frank",  # a disabled account
    ],
)
def test_same_response_whether_or_not_the_account_exists(client, make_client, make_user, user,
                                                        identifier):
    """FP1, ASVS 6.3.8: the same page and status, byte for byte."""
    make_user(username="erin", verified=False)
    frank = make_user(username="frank")
    User.objects.filter(pk=frank.pk).update(is_active=False)
    reference = ask(make_client(), "someone-else-entirely")
    response = ask(client, identifier)
    assert response.status_code == reference.status_code == 200
    assert response.content == reference.content
    assert "Check your mail" in response.text


@pytest.mark.parametrize(("identifier", "mailed"), [
    ("alice", True), ("ALICE@EXAMPLE.ORG", True), ("nobody", False), ("erin", False),
    ("erin@example.org", False), ("frank", False),
])
def test_mail_goes_only_to_a_verified_address_of_an_active_account(
    client, mail, make_user, user, identifier, mailed
):
    make_user(username="erin", verified=False)
    frank = make_user(username="frank")
    User.objects.filter(pk=frank.pk).update(is_active=False)
    ask(client, identifier)
    assert len(mail.messages) == (1 if mailed else 0)
    requested = SecurityEvent.objects.filter(kind=EventKind.PASSWORD_RESET_REQUESTED)
    assert requested.count() == (1 if mailed else 0)


def test_mail_carries_a_working_link_that_is_never_stored(client, mail, user, settings):
    """FP4: the token is made at delivery; rows and task arguments never hold it."""
    ask(client, "alice")
    message = mail.last("alice@example.org")
    assert message["Subject"] == "Reset your Relatch password"
    [url] = [u for u in mail.links(message) if RESET in u]
    assert url.startswith(settings.BASE_URL + RESET)  # FP5: from the configured host
    assert url in mail.html(message)
    link = urlsplit(url).path
    assert "within 60 minutes" in mail.text(message)
    token = link.rstrip("/").rsplit("/", 1)[-1]
    stored = str(list(OutgoingEmail.objects.values())) + str(list(DBTaskResult.objects.values()))
    assert token not in stored
    # The link's path starts with /account/reset/, which the log filter redacts.
    assert token not in redact(f"GET {link} HTTP/1.1")
    [event] = SecurityEvent.objects.filter(user=user, kind=EventKind.PASSWORD_RESET_REQUESTED)
    assert event.details == {"sent_to": "alice@example.org"}


def test_link_goes_to_the_address_that_was_typed(client, mail, user):
    Email.objects.create(
        user=user, address="alice@work.example", verified=True, verified_at=timezone.now()
    )
    ask(client, "Alice@Work.Example")
    assert [str(m["To"]) for m in mail.messages] == ["alice@work.example"]
    ask(client, "alice")
    assert len(mail.to("alice@example.org")) == 1  # a username: the primary address


def test_an_unverified_address_of_the_account_gets_nothing(client, mail, user):
    Email.objects.create(user=user, address="typo@example.net")
    ask(client, "typo@example.net")
    assert mail.messages == []


def test_link_takes_the_token_out_of_the_address_bar(client, mail, user):
    """FP5: the token moves to the session; the form page sends no Referer."""
    link = reset_link(client, mail)
    opened = client.get(link)
    assert opened.status_code == 302
    assert opened["Location"].endswith("/set-password/")
    assert opened["Location"].startswith(RESET)
    token = link.rstrip("/").rsplit("/", 1)[-1]
    assert token not in opened["Location"]
    assert opened["Referrer-Policy"] == "strict-origin"
    form = client.get(opened["Location"])
    assert form.status_code == 200
    assert form["Referrer-Policy"] == "strict-origin"
    assert "Choose a new password" in form.text
    assert "New password again" in form.text  # FP7: twice


def test_reset_sets_the_password_ends_every_session_and_signs_nobody_in(
    client, make_client, mail, user
):
    """FP9: no sign-in after a reset; FP10 / ASVS 7.4.3: every session ends; FP8: every verified
    address is told."""
    Email.objects.create(
        user=user, address="alice@work.example", verified=True, verified_at=timezone.now()
    )
    laptop, phone = sign_in(make_client(), user), sign_in(make_client(), user)
    response = set_new_password(client, reset_link(client, mail))
    assert response.status_code == 302
    assert response["Location"] == "/account/login/"
    assert password_is(user, NEW)
    assert "_auth_user_id" not in client.session
    assert not UserSession.objects.filter(user=user).exists()
    for browser in (laptop, phone, client):
        assert browser.get("/account/password/")["Location"].startswith("/account/login/")
    [event] = SecurityEvent.objects.filter(user=user, kind=EventKind.PASSWORD_RESET)
    assert event.details == {"sessions_ended": 2}
    assert event.factor == "email_link"
    for address in ("alice@example.org", "alice@work.example"):
        notice = mail.last(address)
        assert notice["Subject"] == "Your Relatch password was reset"
        assert "If this wasn't you" in mail.text(notice)
    page = client.get("/account/login/")
    assert "Your password was reset. Sign in with your new password." in page.text


def test_new_password_signs_in_afterwards(client, make_client, mail, user):
    set_new_password(client, reset_link(client, mail))
    def login(password: str) -> int:
        data = {"identifier": "alice", "password": password}
        return make_client().post("/account/login/", data).status_code

    assert login(PASSWORD) == 200
    assert login(NEW) == 302


def test_reset_turns_nothing_else_off(client, mail, user):
    """ASVS 6.4.3: a reset changes the password and sessions, nothing else (devices, addresses)."""
    KnownDevice.objects.create(user=user, device_digest="d" * 64)
    addresses = list(Email.objects.values_list("address", "verified", "primary"))
    set_new_password(client, reset_link(client, mail))
    assert KnownDevice.objects.filter(user=user).count() == 1
    assert list(Email.objects.values_list("address", "verified", "primary")) == addresses


def test_signed_in_visitor_resetting_their_own_account_is_signed_out(client, mail, user):
    sign_in(client, user)
    response = set_new_password(client, reset_link(client, mail))
    assert response["Location"] == "/account/login/"
    assert "_auth_user_id" not in client.session
    assert "Your password was reset" in client.get("/account/login/").text


def test_link_works_once(client, make_client, mail, user):
    link = reset_link(client, mail)
    set_new_password(client, link)
    again = make_client().get(link)
    assert again.status_code == 400
    assert INVALID in again.text
    assert password_is(user, NEW)


def test_form_submitted_twice_changes_once(client, mail, user):
    link = reset_link(client, mail)
    opened = client.get(link)
    data = {"new_password1": NEW, "new_password2": NEW}
    assert client.post(opened["Location"], data).status_code == 302
    second = client.post(opened["Location"], {"new_password1": "x" * 20, "new_password2": "x" * 20})
    assert second.status_code == 400
    assert password_is(user, NEW)
    assert SecurityEvent.objects.filter(kind=EventKind.PASSWORD_RESET).count() == 1


def test_link_dies_when_the_user_signs_in(client, make_client, mail, user):
    link = reset_link(client, mail)
    browser = make_client()
    browser.post("/account/login/", {"identifier": "alice", "password": PASSWORD})
    response = make_client().get(link)
    assert response.status_code == 400
    assert password_is(user, PASSWORD)


def test_link_dies_when_the_password_changes(client, make_client, mail, user):
    link = reset_link(client, mail)
    browser = sign_in(make_client(), user)
    browser.post(
        "/account/password/",
        {"current_password": PASSWORD, "new_password1": NEW, "new_password2": NEW},
    )
    assert password_is(user, NEW)
    assert make_client().get(link).status_code == 400


def test_link_dies_between_opening_it_and_sending_the_form(client, make_client, mail, user):
    link = reset_link(client, mail)
    opened = client.get(link)
    make_client().post("/account/login/", {"identifier": "alice", "password": PASSWORD})
    response = client.post(opened["Location"], {"new_password1": NEW, "new_password2": NEW})
    assert response.status_code == 400
    assert password_is(user, PASSWORD)


def move_clock(monkeypatch, seconds: int) -> None:
    """The token generator's clock, moved instead of sleeping."""
    later = datetime.now() + timedelta(seconds=seconds)
    monkeypatch.setattr(ResetTokenGenerator, "_now", lambda self: later)


@pytest.mark.parametrize(("age", "status"), [(3600 - 60, 302), (3600 + 2, 400)])
def test_link_expires_after_an_hour(client, mail, user, monkeypatch, settings, age, status):
    """FP4: PASSWORD_RESET_TIMEOUT (an hour) bounds a link's life."""
    assert settings.PASSWORD_RESET_TIMEOUT == 3600
    link = reset_link(client, mail)
    move_clock(monkeypatch, age)
    assert client.get(link).status_code == status


def test_shorter_timeout_setting_is_honoured(client, mail, user, monkeypatch, settings):
    settings.PASSWORD_RESET_TIMEOUT = 60
    link = reset_link(client, mail)
    move_clock(monkeypatch, 61)
    response = client.get(link)
    assert response.status_code == 400
    assert INVALID in response.text


def uid(pk: int) -> str:
    return urlsafe_base64_encode(force_bytes(pk))


@pytest.mark.parametrize(
    "forge",
    [
        lambda link, alice, bob: link[:-3] + ("0" if link[-3] != "0" else "1") + link[-2:],
        lambda link, alice, bob: link.replace(f"/{uid(alice.pk)}/", f"/{uid(bob.pk)}/"),
        lambda link, alice, bob: f"{RESET}{uid(bob.pk)}/{reset_tokens.make_token(bob)[:6]}-0/",
        lambda link, alice, bob: f"{RESET}!!!/abc-def/",
        lambda link, alice, bob: f"{RESET}{uid(10**30)}/abc-def/",
        lambda link, alice, bob: f"{RESET}{uid(999999)}/abc-def/",
        lambda link, alice, bob: f"{RESET}{urlsafe_base64_encode(b'nope')}/abc-def/",
        lambda link, alice, bob: link.rstrip("/") + "x" * 80 + "/",
    ],
    ids=["token-byte", "other-uid", "made-up-token", "bad-uid", "huge-uid", "no-such-user",
         "uid-not-a-number", "overlong-token"],
)
def test_forged_links_are_refused_and_change_nothing(client, make_user, mail, user, forge):
    bob = make_user(username="bob")
    forged = forge(reset_link(client, mail), user, bob)
    assert forged.startswith(RESET)
    response = client.get(forged)
    assert response.status_code == 400
    assert INVALID in response.text
    assert password_is(user, PASSWORD) and password_is(bob, PASSWORD)


def test_new_password_page_needs_the_link_first(client, user):
    response = client.get(f"{RESET}{uid(user.pk)}/set-password/")
    assert response.status_code == 400
    post = client.post(
        f"{RESET}{uid(user.pk)}/set-password/", {"new_password1": NEW, "new_password2": NEW}
    )
    assert post.status_code == 400
    assert password_is(user, PASSWORD)


def test_a_link_for_one_account_cannot_reset_another(client, make_user, mail, user):
    bob = make_user(username="bob")
    client.get(reset_link(client, mail))  # alice's token now in the session
    response = client.post(
        f"{RESET}{uid(bob.pk)}/set-password/", {"new_password1": NEW, "new_password2": NEW}
    )
    assert response.status_code == 400
    assert password_is(bob, PASSWORD)


@pytest.mark.parametrize(
    ("new", "again", "reason"),
    [
        ("short", None, "at least 8 characters"),
        ("password123", None, "This password is too common."),
        (NEW, NEW + "?", "The two passwords differ."),
    ],
)
def test_weak_new_password_is_refused_and_the_link_still_works(
    client, mail, user, new, again, reason
):
    """FP7: the same rules as elsewhere, with the reason."""
    link = reset_link(client, mail)
    response = set_new_password(client, link, new, again)
    assert response.status_code == 200
    assert reason in response.text
    assert response["Referrer-Policy"] == "strict-origin"
    assert password_is(user, PASSWORD)
    assert set_new_password(client, link).status_code == 302


def test_per_account_limit_is_silent(client, make_client, mail, user):
    """FP3: at most three mails an hour; the fourth request looks the same and sends nothing."""
    responses = [ask(make_client(), "alice", REMOTE_ADDR=f"192.0.2.{n}") for n in range(1, 5)]
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert len(mail.to("alice@example.org")) == 3
    assert SecurityEvent.objects.filter(kind=EventKind.PASSWORD_RESET_REQUESTED).count() == 3


def test_per_ip_limit_is_silent(client, make_client, mail, user):
    for n in range(20):
        ask(client, f"nobody{n}")
    assert ask(client, "alice").status_code == 200
    assert mail.messages == []
    ask(make_client(), "alice", REMOTE_ADDR="198.51.100.20")
    assert len(mail.to("alice@example.org")) == 1


@pytest.mark.parametrize(
    ("identifier", "error"),
    [("", "Enter your username or email address."), ("a" * 255, "at most 254 characters")],
)
def test_empty_or_overlong_request_gets_a_clear_message(client, mail, identifier, error):
    response = ask(client, identifier)
    assert response.status_code == 200
    assert error in response.text
    assert mail.messages == []


def test_reset_request_without_csrf_token_is_refused(user, mail):
    response = ask(Client(enforce_csrf_checks=True), "alice")
    assert response.status_code == 403
    assert mail.messages == []
