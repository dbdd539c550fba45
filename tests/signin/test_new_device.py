"""The new-device check (issue 3 §5): an app code or recovery code from a browser the account
does not know waits for a link mailed to every verified address. The link completes the
sign-in only in the browser that started it, only once, and a recovery code is spent only
then. Mail arrives over the real loopback SMTP server.
"""

import hashlib
import re
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from relatch.accounts.models import KnownDevice
from relatch.audit.models import EventKind
from relatch.mfa.models import NewDeviceConfirmation
from relatch.signin.newdevice.services import MAX_CONFIRMATIONS_PER_HOUR
from tests.conftest import CommittingClient
from tests.mfa.signin_flow import (
    APP,
    CHECK_MAIL,
    CODE,
    CONFIRM_PREFIX,
    KEY,
    NEW_CODES,
    RECOVERY_STATUS,
    START_RECOVERY,
    app_code,
    device_digest_of,
    enrol_app,
    events,
    key_answer,
    make_codes,
    page_text,
    password_step,
    register_key,
    signed_in_user_id,
    trust_browser,
)

pytestmark = pytest.mark.django_db

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"


@pytest.fixture
def alice(alice):
    """Alice (two verified addresses), an unverified one, an app and recovery codes."""
    alice.emails.create(address="alice@old.example", verified=False)
    alice.secret = enrol_app(alice)
    alice.codes = make_codes(alice)
    return alice


@pytest.fixture
def browser(make_client):
    return make_client(FIREFOX)


def held_by_app_code(browser, alice, mail, **login):
    """Password and a right app code from ``browser``; returns the mailed link's path."""
    password_step(browser, **login)
    mail.clear()
    response = browser.post(APP, {"code": app_code(alice, alice.secret)})
    assert response.status_code == 302
    assert response["Location"] == CHECK_MAIL
    return mail.link_to(mail.last("alice@example.org"), CONFIRM_PREFIX)


def test_an_app_code_on_a_new_device_waits_for_the_mailed_link(browser, alice, mail):
    """Every verified address gets the link with when, which browser and IP, and what to do
    if it was not you; the unverified address gets nothing."""
    held_by_app_code(browser, alice, mail)
    assert signed_in_user_id(browser) is None
    assert sorted(str(m["To"]) for m in mail.messages) == [
        "alice@example.org",
        "alice@work.example",
    ]
    for address in ("alice@example.org", "alice@work.example"):
        message = mail.last(address)
        assert "new browser" in str(message["Subject"])
        text = mail.text(message)
        assert "Firefox 140 on Linux" in text
        assert "IP address: 127.0.0.1" in text
        assert "If this wasn't you, do not open the link, and change your password" in text
        assert mail.link_to(message, CONFIRM_PREFIX).startswith(CONFIRM_PREFIX)
        assert CONFIRM_PREFIX in mail.html(message)
    [held] = NewDeviceConfirmation.objects.filter(user=alice)
    assert held.factor == "totp" and held.used_at is None
    nonce = browser.session["relatch_partial_signin"]["nonce"]
    assert held.browser_digest == hashlib.sha256(nonce.encode()).hexdigest()
    assert held.expires_at - held.created_at == timedelta(minutes=10)
    [sent] = events(alice, EventKind.NEW_DEVICE_CONFIRMATION_SENT)
    assert sent.factor == "totp"
    page = browser.get(CHECK_MAIL)
    assert "Check your mail" in page_text(page)
    assert "I no longer have access to my email" in page_text(page)
    assert "/account/login/confirm/" not in page_text(page)  # the token is only in the mail


def test_the_link_asks_first_then_signs_in_once_in_the_same_browser(browser, alice, mail):
    link = held_by_app_code(browser, alice, mail, next="/account/sessions/")
    page = browser.get(link)
    assert page.status_code == 200
    assert "Yes, sign me in" in page_text(page)
    # When it started, as every page shows a time (issue 19): exact UTC on hover.
    started = NewDeviceConfirmation.objects.get().created_at.astimezone(UTC)
    assert (f'(started <time datetime="{started.isoformat()}" '
            f'title="{started:%Y-%m-%d %H:%M:%S} UTC">just now</time>,') in page.content.decode()
    assert page["Referrer-Policy"] == "strict-origin"
    assert signed_in_user_id(browser) is None  # a mail scanner's GET signs no one in

    response = browser.post(link)
    assert response.status_code == 302
    assert response["Location"] == "/account/sessions/"
    assert signed_in_user_id(browser) == str(alice.pk)
    device = KnownDevice.objects.get(user=alice, device_digest=device_digest_of(browser))
    assert device.confirmed is True
    [signed] = events(alice, EventKind.SIGNIN_SUCCEEDED)
    assert signed.factor == "totp"
    assert signed.details == {"new_device": True, "confirmed_by": "email_link"}
    assert events(alice, EventKind.NEW_DEVICE_CONFIRMED)[0].factor == "totp"
    assert NewDeviceConfirmation.objects.get().used_at is not None

    # Once: the same link again (a second click, or the copy sent to the other address).
    browser.post("/account/logout/")
    other_copy = mail.link_to(mail.last("alice@work.example"), CONFIRM_PREFIX)
    for path in (link, other_copy):
        refused = browser.post(path)
        assert refused.status_code == 400
        assert "already used" in page_text(refused)
    assert signed_in_user_id(browser) is None


def test_a_known_device_is_not_asked_again(browser, alice, mail):
    link = held_by_app_code(browser, alice, mail)
    browser.post(link)
    browser.post("/account/logout/")
    password_step(browser)
    mail.clear()
    assert browser.post(APP, {"code": app_code(alice, alice.secret)})["Location"] == "/account/"
    assert signed_in_user_id(browser) == str(alice.pk)
    assert mail.messages == []


def test_the_link_in_another_browser_is_refused_and_changes_nothing(
    browser, alice, mail, make_client
):
    """Issue 3 §5: a forwarded or intercepted link is worth nothing elsewhere."""
    link = held_by_app_code(browser, alice, mail)
    elsewhere = make_client()
    for response in (elsewhere.get(link), elsewhere.post(link)):
        assert response.status_code == 400
        assert "Open this link in the browser where you signed in" in page_text(response)
    assert signed_in_user_id(elsewhere) is None
    assert NewDeviceConfirmation.objects.get().used_at is None
    assert not events(alice, EventKind.SIGNIN_SUCCEEDED)
    # The right browser still can.
    assert browser.post(link).status_code == 302
    assert signed_in_user_id(browser) == str(alice.pk)


def test_an_expired_link_is_refused(browser, alice, mail):
    link = held_by_app_code(browser, alice, mail)
    NewDeviceConfirmation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = browser.post(link)
    assert response.status_code == 400
    assert "expired" in page_text(response)
    assert signed_in_user_id(browser) is None
    assert NewDeviceConfirmation.objects.get().used_at is None


@pytest.mark.parametrize("token", ["garbage", "x" * 400, "eyJjIjoxfQ:1abc:forged"])
def test_a_forged_link_is_refused(browser, alice, mail, token):
    held_by_app_code(browser, alice, mail)
    response = browser.post(f"{CONFIRM_PREFIX}{token}/")
    assert response.status_code == 400
    assert "not valid" in page_text(response)
    assert signed_in_user_id(browser) is None


def test_sending_the_code_again_mails_no_second_link(browser, alice, mail):
    held_by_app_code(browser, alice, mail)
    browser.get("/account/login/second-step/")
    assert browser.post(APP, {"code": app_code(alice, alice.secret)})["Location"] == CHECK_MAIL
    assert NewDeviceConfirmation.objects.count() == 1
    assert mail.to("alice@example.org") and len(mail.to("alice@example.org")) == 1


@pytest.mark.parametrize("factor", ["app", "code"])
def test_links_per_hour_are_capped_but_the_lost_mailbox_way_stays(alice, mail, make_client, factor):
    """Someone with the password and an (unspent, so reusable) code cannot flood the inbox; the
    owner who lost the mailbox still reaches "I no longer have access to my email"."""
    for _ in range(MAX_CONFIRMATIONS_PER_HOUR):
        held_by_app_code(make_client(), alice, mail)
    oldest = NewDeviceConfirmation.objects.order_by("created_at").first()
    NewDeviceConfirmation.objects.filter(pk=oldest.pk).update(
        created_at=timezone.now() - timedelta(minutes=40))
    extra = make_client()
    password_step(extra)
    mail.clear()
    if factor == "app":
        response = extra.post(APP, {"code": app_code(alice, alice.secret)})
    else:
        response = extra.post(CODE, {"code": alice.codes[5]})
    assert response.status_code == 302 and response["Location"] == CHECK_MAIL
    page = extra.get(CHECK_MAIL)
    text = " ".join(re.sub(r"<[^>]+>", "", page_text(page)).split())
    assert page.status_code == 200
    assert "we did not mail a new link" in text
    assert f"{MAX_CONFIRMATIONS_PER_HOUR} went out for this account in the last hour" in text
    # When the oldest is an hour old (the amount is rounded down).
    assert re.search(r"A new link can be mailed in (19|20) minutes", text), text
    assert "I no longer have access to my email" in text
    assert mail.messages == []  # no sixth mail
    assert NewDeviceConfirmation.objects.count() == MAX_CONFIRMATIONS_PER_HOUR

    # The button works without a link: the wait starts, the owner is told.
    response = extra.post(START_RECOVERY)
    assert response.status_code == 302 and response["Location"] == RECOVERY_STATUS
    assert events(alice, EventKind.SELF_RECOVERY_STARTED)
    assert mail.to("alice@example.org")


def test_a_recovery_code_on_a_new_device_is_spent_only_when_the_link_is_used(browser, alice, mail):
    """DESIGN §2: a code is never spent on a blocked sign-in."""
    password_step(browser)
    mail.clear()
    response = browser.post(CODE, {"code": alice.codes[4]})
    assert response["Location"] == CHECK_MAIL
    assert signed_in_user_id(browser) is None
    code = NewDeviceConfirmation.objects.get().recovery_code
    assert code is not None and code.used_at is None
    assert not events(alice, EventKind.RECOVERY_CODE_USED)
    assert "Your recovery code is not used up until then" in page_text(browser.get(CHECK_MAIL))

    link = mail.link_to(mail.last("alice@work.example"), CONFIRM_PREFIX)
    response = browser.post(link)
    assert response.status_code == 302
    assert response["Location"] == NEW_CODES
    code.refresh_from_db()
    assert code.used_at is not None
    assert events(alice, EventKind.RECOVERY_CODE_USED)
    [signed] = events(alice, EventKind.SIGNIN_SUCCEEDED)
    assert signed.factor == "recovery_code"


def test_a_held_recovery_code_used_meanwhile_makes_the_link_refuse(
    browser, alice, mail, make_client
):
    password_step(browser)
    browser.post(CODE, {"code": alice.codes[4]})
    link = mail.link_to(mail.last("alice@example.org"), CONFIRM_PREFIX)
    # The same code signs in from a browser the account knows.
    known = make_client()
    trust_browser(known, alice)
    password_step(known)
    assert known.post(CODE, {"code": alice.codes[4]})["Location"] == NEW_CODES
    response = browser.post(link)
    assert response.status_code == 400
    assert "used or replaced meanwhile" in page_text(response)
    assert signed_in_user_id(browser) is None
    assert NewDeviceConfirmation.objects.get().used_at is None


def test_a_security_key_on_a_new_device_never_needs_the_link(browser, alice, mail):
    key = register_key(alice)
    password_step(browser)
    mail.clear()
    response = browser.post(KEY, {"credential": key_answer(browser, key)})
    assert response["Location"] == "/account/"
    assert signed_in_user_id(browser) == str(alice.pk)
    assert not NewDeviceConfirmation.objects.exists()
    assert mail.messages == []


def test_the_link_without_a_csrf_token_changes_nothing(alice, mail):
    browser = CommittingClient(enforce_csrf_checks=True)
    browser.get("/account/login/")
    token = browser.cookies["csrftoken"].value
    password_step(browser, csrfmiddlewaretoken=token)
    browser.post(APP, {"code": app_code(alice, alice.secret), "csrfmiddlewaretoken": token})
    link = mail.link_to(mail.last("alice@example.org"), CONFIRM_PREFIX)
    assert browser.post(link).status_code == 403
    assert signed_in_user_id(browser) is None
    assert NewDeviceConfirmation.objects.get().used_at is None
    assert browser.post(link, {"csrfmiddlewaretoken": token}).status_code == 302
    assert signed_in_user_id(browser) == str(alice.pk)
