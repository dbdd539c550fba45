"""Self-service recovery (issue 3 §5, DESIGN §2): password + app code or recovery code, but the
mailbox is gone. A waiting period, announced to every verified address with a one-click
cancel, after which that browser signs in without the email check. Time is moved by editing
the recovery's start and end in the database, never by sleeping.
"""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from relatch.accounts.models import KnownDevice
from relatch.audit.models import EventKind
from relatch.mfa.models import NewDeviceConfirmation, RecoveryCode, SelfServiceRecovery
from tests.conftest import CommittingClient
from tests.mfa.signin_flow import (
    APP,
    CANCEL_PREFIX,
    CHECK_MAIL,
    CODE,
    KEY,
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

ADDRESSES = ("alice@example.org", "alice@work.example")


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def alice(user):
    user.emails.create(address="alice@work.example", verified=True, verified_at=timezone.now())
    user.secret = enrol_app(user)
    user.codes = make_codes(user)
    return user


@pytest.fixture
def browser(make_client):
    """The browser whose owner lost their mailbox: new to the account, no device cookie yet."""
    return make_client()


def held(browser, alice, factor: str = "totp") -> None:
    """Password and a right factor from ``browser``: the sign-in waits for the mail."""
    password_step(browser)
    if factor == "totp":
        response = browser.post(APP, {"code": app_code(alice, alice.secret)})
    else:
        response = browser.post(CODE, {"code": alice.codes[5]})
    assert response["Location"] == CHECK_MAIL


def start(browser, alice, mail, factor: str = "totp") -> SelfServiceRecovery:
    held(browser, alice, factor)
    mail.clear()
    response = browser.post(START_RECOVERY)
    assert response.status_code == 302, page_text(response)
    assert response["Location"] == RECOVERY_STATUS
    return SelfServiceRecovery.objects.get(user=alice, state="waiting")


def pass_the_wait(recovery: SelfServiceRecovery) -> None:
    """72 hours later (the check constraint keeps ends_at after started_at)."""
    now = timezone.now()
    SelfServiceRecovery.objects.filter(pk=recovery.pk).update(
        started_at=now - settings.SELF_RECOVERY_WAIT - timedelta(minutes=1),
        ends_at=now - timedelta(minutes=1),
    )


@pytest.mark.parametrize("factor", ["totp", "recovery_code"])
def test_starting_announces_the_wait_with_a_cancel_link_and_spends_nothing(
    browser, alice, mail, factor
):
    recovery = start(browser, alice, mail, factor)
    assert recovery.factor == factor
    assert recovery.device_digest == device_digest_of(browser)  # the cookie was set just now
    expected_end = recovery.started_at + settings.SELF_RECOVERY_WAIT
    assert recovery.ends_at == expected_end
    [started] = events(alice, EventKind.SELF_RECOVERY_STARTED)
    assert started.factor == factor
    for address in ADDRESSES:
        message = mail.last(address)
        assert "completes in 72 hours unless you cancel it" in str(message["Subject"])
        text = mail.text(message)
        assert "no longer have access to this account's email" in text
        assert "IP address: 127.0.0.1" in text
        assert mail.link_to(message, CANCEL_PREFIX).startswith(CANCEL_PREFIX)
    assert RecoveryCode.objects.filter(code_set__user=alice, used_at__isnull=False).count() == 0
    assert not events(alice, EventKind.RECOVERY_CODE_USED)
    assert signed_in_user_id(browser) is None

    status = page_text(browser.get(RECOVERY_STATUS))
    assert "alice" in status and "Wait ends" in status
    assert recovery.ends_at.strftime("%Y-%m-%d %H:%M") in status
    assert "from a browser the account already knows also cancels" in status


def test_sending_the_start_twice_starts_one_recovery(browser, alice, mail):
    start(browser, alice, mail)
    assert browser.post(START_RECOVERY)["Location"] == RECOVERY_STATUS
    assert SelfServiceRecovery.objects.count() == 1
    assert len(mail.to("alice@example.org")) == 1


def test_it_cannot_start_without_a_factor_or_after_the_partial_sign_in_expired(
    browser, alice, make_client
):
    password_step(browser)  # the password alone
    response = browser.post(START_RECOVERY)
    assert response.status_code == 400
    assert "an app code or a recovery code" in page_text(response)
    stranger = make_client()
    response = stranger.post(START_RECOVERY)
    assert response.status_code == 400
    assert "Sign in again" in page_text(response)
    assert not SelfServiceRecovery.objects.exists()
    assert not events(alice, EventKind.SELF_RECOVERY_STARTED)


def test_a_security_key_sign_in_cannot_start_one(browser, alice):
    """A security key needs no mail check, so there is nothing to recover from."""
    key = register_key(alice)
    password_step(browser)
    browser.post(KEY, {"credential": key_answer(browser, key)})
    assert signed_in_user_id(browser) == str(alice.pk)
    assert browser.post(START_RECOVERY).status_code == 400
    assert not SelfServiceRecovery.objects.exists()


def test_the_owner_cancels_it_with_the_mailed_link_once(browser, alice, mail, make_client):
    """DESIGN §2: one-click "this wasn't me" from any address; GET changes nothing."""
    recovery = start(browser, alice, mail)
    link = mail.link_to(mail.last("alice@work.example"), CANCEL_PREFIX)
    owner = make_client()
    page = owner.get(link)
    assert page.status_code == 200
    assert "Cancel this recovery" in page_text(page)
    recovery.refresh_from_db()
    assert recovery.state == "waiting"
    mail.clear()

    response = owner.post(link)
    assert response.status_code == 200
    assert "The recovery is cancelled" in page_text(response)
    recovery.refresh_from_db()
    assert (recovery.state, recovery.closed_by) == ("cancelled", "owner_link")
    assert recovery.closed_at is not None
    [cancelled] = events(alice, EventKind.SELF_RECOVERY_CANCELLED)
    assert cancelled.details == {"closed_by": "owner_link"}
    for address in ADDRESSES:
        assert "was cancelled with the cancel link" in mail.text(mail.last(address))

    again = owner.post(link)
    assert again.status_code == 409
    assert "already cancelled" in page_text(again)
    assert len(events(alice, EventKind.SELF_RECOVERY_CANCELLED)) == 1
    assert "No recovery is waiting" in page_text(browser.get(RECOVERY_STATUS))


@pytest.mark.parametrize("token", ["nonsense", "eyJyIjoxfQ:1tamper:bad"])
def test_a_forged_cancel_link_changes_nothing(browser, alice, mail, client, token):
    start(browser, alice, mail)
    response = client.post(f"{CANCEL_PREFIX}{token}/")
    assert response.status_code == 400
    assert "not valid" in page_text(response)
    assert SelfServiceRecovery.objects.get().state == "waiting"


def test_a_second_factor_sign_in_from_a_known_device_cancels_it(browser, alice, mail, make_client):
    recovery = start(browser, alice, mail)
    laptop = make_client()
    trust_browser(laptop, alice)
    password_step(laptop)
    mail.clear()
    assert laptop.post(APP, {"code": app_code(alice, alice.secret)})["Location"] == "/account/"
    recovery.refresh_from_db()
    assert (recovery.state, recovery.closed_by) == ("cancelled", "known_device_signin")
    assert "by a sign-in with a second factor from a device the account knows" in mail.text(
        mail.last("alice@example.org")
    )
    # The browser of the recovery is back to the ordinary new-device check.
    held(browser, alice)
    assert signed_in_user_id(browser) is None


def test_an_unconfirmed_sign_in_from_a_new_device_does_not_cancel_it(
    browser, alice, mail, make_client
):
    recovery = start(browser, alice, mail)
    held(make_client(), alice)
    recovery.refresh_from_db()
    assert recovery.state == "waiting"


def test_during_the_wait_its_browser_sees_the_status_page_and_is_not_signed_in(
    browser, alice, mail
):
    start(browser, alice, mail)
    links_before = NewDeviceConfirmation.objects.count()
    password_step(browser)
    second = page_text(browser.get("/account/login/second-step/"))
    assert "self-service recovery started in this browser is waiting" in second
    response = browser.post(APP, {"code": app_code(alice, alice.secret)}, follow=True)
    assert response.redirect_chain[-1][0] == RECOVERY_STATUS
    assert "still waiting" in page_text(response)
    assert signed_in_user_id(browser) is None
    assert NewDeviceConfirmation.objects.count() == links_before  # no new link either


@pytest.mark.parametrize("factor", ["totp", "recovery_code"])
def test_after_the_wait_its_browser_signs_in_without_mail_and_adds_an_address(
    browser, alice, mail, factor
):
    recovery = start(browser, alice, mail)
    pass_the_wait(recovery)
    password_step(browser)
    mail.clear()
    if factor == "totp":
        response = browser.post(APP, {"code": app_code(alice, alice.secret)}, follow=True)
    else:
        response = browser.post(CODE, {"code": alice.codes[6]}, follow=True)
    assert response.redirect_chain[-1][0] == "/account/emails/"
    text = page_text(response)
    assert "Add an email address you can read and verify it" in text
    assert signed_in_user_id(browser) == str(alice.pk)
    recovery.refresh_from_db()
    assert (recovery.state, recovery.closed_by) == ("completed", "completed")
    assert KnownDevice.objects.get(user=alice, device_digest=recovery.device_digest).confirmed
    assert events(alice, EventKind.SELF_RECOVERY_COMPLETED)
    [signed] = events(alice, EventKind.SIGNIN_SUCCEEDED)
    assert (signed.factor, signed.details["confirmed_by"]) == (factor, "self_recovery")
    for address in ADDRESSES:
        subjects = [str(m["Subject"]) for m in mail.to(address)]
        assert any("recovery of your Relatch account completed" in s for s in subjects)
    assert not NewDeviceConfirmation.objects.filter(used_at__isnull=False).exists()
    if factor == "recovery_code":
        assert "make a new set of recovery codes" in text
        assert RecoveryCode.objects.filter(code_set__user=alice, used_at__isnull=False).count() == 1


def test_after_the_wait_only_its_own_browser_skips_the_mail(browser, alice, mail, make_client):
    recovery = start(browser, alice, mail)
    pass_the_wait(recovery)
    other = make_client()
    held(other, alice)
    assert signed_in_user_id(other) is None
    recovery.refresh_from_db()
    assert recovery.state == "waiting"


def test_starting_from_another_browser_replaces_the_older_recovery(
    browser, alice, mail, make_client
):
    """A user whose first browser lost its cookies is not stuck; the clock starts over."""
    first = start(browser, alice, mail)
    second = start(make_client(), alice, mail)
    first.refresh_from_db()
    assert (first.state, first.closed_by) == ("cancelled", "replaced")
    assert second.pk != first.pk and second.state == "waiting"
    assert second.ends_at > first.ends_at
    assert "It replaces a recovery that was waiting in another browser." in mail.text(
        [m for m in mail.to("alice@example.org") if "completes in" in str(m["Subject"])][-1]
    )


def test_the_cancel_link_without_a_csrf_token_changes_nothing(browser, alice, mail):
    start(browser, alice, mail)
    link = mail.link_to(mail.last("alice@example.org"), CANCEL_PREFIX)
    owner = CommittingClient(enforce_csrf_checks=True)
    owner.get(link)
    assert owner.post(link).status_code == 403
    assert SelfServiceRecovery.objects.get().state == "waiting"
    token = owner.cookies["csrftoken"].value
    assert owner.post(link, {"csrfmiddlewaretoken": token}).status_code == 200
    assert SelfServiceRecovery.objects.get().state == "cancelled"
