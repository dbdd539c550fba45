"""Limits on second-factor guessing (issue 3 §4; NIST N20/N21, ASVS 6.1.1, 6.3.1).

Only someone with the password reaches these limits; they are counted per account AND per
factor (app-code failures never block the recovery-code path) and per client IP.
"""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import RequestFactory
from django.utils import timezone

from relatch.accounts.passwords.reset import reset_password
from relatch.audit.models import EventKind, Factor, SecurityEvent
from relatch.mfa import throttling
from relatch.mfa.models import TotpDevice
from tests.mfa.signin_flow import (
    APP,
    CODE,
    app_code,
    enrol_app,
    events,
    make_codes,
    page_text,
    password_step,
    signed_in_user_id,
    trust_browser,
    wrong_app_code,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def alice(user, client):
    """Alice with an app and recovery codes, in a browser she used before."""
    user.secret = enrol_app(user)
    user.codes = make_codes(user)
    trust_browser(client, user)
    return user


def age_failures(user, seconds: int) -> None:
    """Move the account's failures into the past (instead of sleeping through the back-off)."""
    SecurityEvent.objects.filter(user=user, kind=EventKind.SIGNIN_FAILED).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


def earlier_failures(user, factor: str, count: int, hours_ago: int = 30) -> None:
    """``count`` failures written as the flow writes them, long enough ago that no back-off
    remains (the back-off itself makes a run of 20 take hours)."""
    at = timezone.now() - timedelta(hours=hours_ago)
    SecurityEvent.objects.bulk_create(
        SecurityEvent(
            user=user,
            kind=EventKind.SIGNIN_FAILED,
            factor=factor,
            created_at=at,
            details={"step": "second_factor", "reason": "wrong"},
        )
        for _ in range(count)
    )


def test_the_policy_stays_far_below_nists_ceiling():
    """NIST N20: at most 100 consecutive failures per authenticator; ours stop far earlier."""
    assert max(throttling.HARD_STOP.values()) < 100
    assert throttling.HARD_STOP[Factor.TOTP] <= 20
    assert "lock the owner out" in (throttling.__doc__ or "")  # ASVS 6.1.1: written down


def test_five_wrong_app_codes_then_a_doubling_wait(client, alice):
    """The sixth attempt waits 30 s, unchecked and uncounted; the seventh waits 60 s."""
    password_step(client)
    for _ in range(5):
        assert client.post(APP, {"code": wrong_app_code(alice.secret)}).status_code == 200
    response = client.post(APP, {"code": app_code(alice, alice.secret)})
    assert response.status_code == 429
    assert "Too many wrong app codes in a row. Try again in 1 minute" in page_text(response)
    assert signed_in_user_id(client) is None
    assert TotpDevice.objects.get(user=alice).last_used_step == 0  # not even checked
    [throttled] = events(alice, EventKind.SIGNIN_THROTTLED, "totp")
    assert throttled.details == {"reason": "wait", "during": "second_factor"}
    assert len(events(alice, EventKind.SIGNIN_FAILED, "totp")) == 5

    age_failures(alice, 31)
    assert client.post(APP, {"code": wrong_app_code(alice.secret)}).status_code == 200
    age_failures(alice, 31)
    assert client.post(APP, {"code": app_code(alice, alice.secret)}).status_code == 429
    age_failures(alice, 61)
    response = client.post(APP, {"code": app_code(alice, alice.secret)})
    assert response.status_code == 302
    assert signed_in_user_id(client) == str(alice.pk)


def test_app_code_failures_do_not_slow_down_recovery_codes(client, alice):
    """Issue 3 §4: the limits cannot lock the owner out of the recovery-code path."""
    password_step(client)
    for _ in range(5):
        client.post(APP, {"code": wrong_app_code(alice.secret)})
    assert client.post(APP, {"code": app_code(alice, alice.secret)}).status_code == 429
    response = client.post(CODE, {"code": alice.codes[1]})
    assert response.status_code == 302
    assert signed_in_user_id(client) == str(alice.pk)


def test_a_hard_stop_for_app_codes_leaves_recovery_codes_and_a_success_lifts_it(
    client, alice, make_client
):
    """NIST N21: after a successful sign-in, earlier failures no longer count."""
    earlier_failures(alice, Factor.TOTP, throttling.HARD_STOP[Factor.TOTP])
    password_step(client)
    response = client.post(APP, {"code": app_code(alice, alice.secret)})
    assert response.status_code == 429
    assert "stopped for this account" in page_text(response)
    assert signed_in_user_id(client) is None

    assert client.post(CODE, {"code": alice.codes[2]}).status_code == 302
    assert signed_in_user_id(client) == str(alice.pk)

    client.post("/account/logout/")
    password_step(client)
    assert client.post(APP, {"code": app_code(alice, alice.secret)}).status_code == 302


def test_a_password_reset_lifts_a_hard_stop(client, alice):
    earlier_failures(alice, Factor.TOTP, throttling.HARD_STOP[Factor.TOTP])
    reset_password(
        request=RequestFactory().post("/"), user=alice, new_password="a new passphrase 42"
    )
    password_step(client, password="a new passphrase 42")
    assert client.post(APP, {"code": app_code(alice, alice.secret)}).status_code == 302
    assert signed_in_user_id(client) == str(alice.pk)


def test_recovery_codes_have_their_own_limit_and_it_does_not_block_app_codes(client, alice):
    password_step(client)
    for _ in range(5):
        response = client.post(CODE, {"code": "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ"})
        assert "not one of your unused recovery codes" in page_text(response)
    response = client.post(CODE, {"code": alice.codes[1]})
    assert response.status_code == 429
    assert "Too many wrong recovery codes in a row" in page_text(response)
    assert client.post(APP, {"code": app_code(alice, alice.secret)}).status_code == 302


@pytest.mark.parametrize(("below_stop", "status"), [(1, 302), (0, 429)])
def test_a_hard_stop_for_recovery_codes(client, alice, below_stop, status):
    earlier_failures(
        alice, Factor.RECOVERY_CODE, throttling.HARD_STOP[Factor.RECOVERY_CODE] - below_stop
    )
    password_step(client)
    response = client.post(CODE, {"code": alice.codes[1]})
    assert response.status_code == status
    if status == 429:
        assert "stopped for this account" in page_text(response)
        assert signed_in_user_id(client) is None


def test_failures_per_ip_across_accounts(client, make_client, make_user, monkeypatch):
    """One address holding several passwords cannot try codes against all of them; another
    address, or another factor, is not held up."""
    monkeypatch.setattr(throttling, "IP_LIMIT", "3/15 minutes")
    users = [make_user(username=name) for name in ("bob", "carol", "dave")]
    secrets = {u.pk: enrol_app(u) for u in users}
    codes = make_codes(users[2])
    bob, carol, dave = users
    for account, tries in ((bob, 2), (carol, 1)):
        browser = make_client()
        password_step(browser, account.username)
        for _ in range(tries):
            browser.post(APP, {"code": wrong_app_code(secrets[account.pk])})

    browser = make_client()
    trust_browser(browser, dave)
    password_step(browser, "dave")
    response = browser.post(APP, {"code": app_code(dave, secrets[dave.pk])})
    assert response.status_code == 429
    assert "from your network" in page_text(response)
    assert signed_in_user_id(browser) is None

    elsewhere = make_client()
    trust_browser(elsewhere, dave)
    password_step(elsewhere, "dave", REMOTE_ADDR="198.51.100.9")
    response = elsewhere.post(
        APP, {"code": app_code(dave, secrets[dave.pk])}, REMOTE_ADDR="198.51.100.9"
    )
    assert response.status_code == 302

    assert browser.post(CODE, {"code": codes[1]}).status_code == 302  # recovery codes: own count
