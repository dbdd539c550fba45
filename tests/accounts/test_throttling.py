"""Failed sign-ins are limited per IP, per account and per device, and a stranger cannot lock
the owner out (NIST N20/N21, ASVS 6.1.1, 6.3.1, OWASP FP11)."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache
from django.db.models import F
from django.test import Client

from relatch.accounts.models import User
from relatch.accounts.passwords.throttling import backoff_wait
from relatch.audit.models import EventKind, SecurityEvent
from tests.conftest import PASSWORD

LOGIN = "/account/login/"
WRONG = "Username or password is wrong."
ACCOUNT_THROTTLED = "Too many failed attempts for this account from new devices."
HARD_STOPPED = "Reset your password, or sign in from a browser you have used"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def post_login(client: Client, identifier: str, password: str = PASSWORD, **extra):
    return client.post(LOGIN, {"identifier": identifier, "password": password}, **extra)


def is_signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def age_failures(user: User, seconds: float) -> None:
    """Move the account's last failure into the past instead of sleeping."""
    User.objects.filter(pk=user.pk).update(
        last_failed_signin_at=F("last_failed_signin_at") - timedelta(seconds=seconds)
    )


def fail(client: Client, user: User, times: int, **extra) -> None:
    for _ in range(times):
        response = post_login(client, user.username, "wrong password", **extra)
        assert WRONG in response.text, response.text


def failures(user: User) -> int:
    user.refresh_from_db()
    return user.failed_signins


@pytest.fixture
def owner(client, user):
    """Alice's own browser: it signed in once (so the account knows it), then signed out."""
    assert post_login(client, "alice").status_code == 302
    client.post("/account/logout/")
    return client


@pytest.mark.parametrize(
    ("failures_so_far", "wait"),
    [(0, None), (4, None), (5, 30), (6, 60), (7, 120), (11, 1920), (12, 3600), (99, 3600)],
)
def test_back_off_schedule(failures_so_far, wait):
    """NIST N20: from the fifth failure, 30 s doubling up to an hour."""
    expected = None if wait is None else timedelta(seconds=wait)
    assert backoff_wait(failures_so_far) == expected


def test_five_failures_from_a_new_device_start_the_back_off(make_client, user):
    """During the wait even the right password is refused, unchecked and uncounted."""
    stranger = make_client()
    fail(stranger, user, 5)
    assert failures(user) == 5
    response = post_login(stranger, "alice", PASSWORD)
    assert response.status_code == 429
    assert ACCOUNT_THROTTLED in response.text
    assert "Try again in 1 minute, or reset your password" in response.text
    assert not is_signed_in(stranger)
    assert failures(user) == 5  # refused attempts are not failures
    [throttled] = SecurityEvent.objects.filter(user=user, kind=EventKind.SIGNIN_THROTTLED)
    assert throttled.factor == "password"
    assert throttled.details == {"reason": "account_wait", "during": "signin"}
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.SIGNIN_FAILED).count() == 5


def test_the_wait_doubles_after_each_further_failure(make_client, user):
    stranger = make_client()
    fail(stranger, user, 5)
    age_failures(user, 31)  # the 30 s wait is over
    fail(stranger, user, 1)
    assert failures(user) == 6
    response = post_login(stranger, "alice", PASSWORD)
    assert "Try again in 1 minute" in response.text
    age_failures(user, 31)
    assert ACCOUNT_THROTTLED in post_login(stranger, "alice", PASSWORD).text  # 60 s now
    age_failures(user, 30)
    response = post_login(stranger, "alice", PASSWORD)
    assert response.status_code == 302
    assert is_signed_in(stranger)
    assert failures(user) == 0  # NIST N21: a success forgets the failures


def test_success_resets_the_counter(make_client, user):
    stranger = make_client()
    fail(stranger, user, 4)
    assert post_login(make_client(), "alice").status_code == 302
    assert failures(user) == 0
    fail(stranger, user, 4)  # four more before any wait
    assert failures(user) == 4


def test_owner_signs_in_from_a_known_device_while_a_stranger_is_throttled(owner, make_client, user):
    """The core anti-lockout rule (ASVS 6.1.1): guessing from elsewhere, even from the same IP
    and past the IP limit, never blocks the owner's own browser."""
    stranger = make_client()
    fail(stranger, user, 5)
    assert ACCOUNT_THROTTLED in post_login(stranger, "alice", PASSWORD).text
    for n in range(30):  # the stranger also exhausts the IP limit, from the owner's IP
        post_login(stranger, f"someone{n}", "guess")
    assert post_login(make_client(), "alice").status_code == 429
    response = post_login(owner, "alice")
    assert response.status_code == 302
    assert is_signed_in(owner)
    assert failures(user) == 0


def test_known_device_failures_do_not_count_against_the_account(owner, user):
    fail(owner, user, 7)
    assert failures(user) == 0
    assert post_login(owner, "alice").status_code == 302


def test_known_device_has_its_own_limit(owner, make_client, user):
    fail(owner, user, 10)
    response = post_login(owner, "alice")
    assert response.status_code == 429
    assert "Too many failed attempts from this browser. Try again in 15 minutes." in response.text
    assert not is_signed_in(owner)
    throttled = SecurityEvent.objects.get(user=user, kind=EventKind.SIGNIN_THROTTLED)
    assert throttled.details["reason"] == "device"
    # Another browser is not affected by this one's limit.
    assert post_login(make_client(), "alice").status_code == 302


def test_ip_limit_across_accounts(make_client, user, make_user):
    """One address spraying guesses over many accounts is stopped after 30 failures."""
    sprayer = make_client()
    for n in range(30):
        assert WRONG in post_login(sprayer, f"victim{n}", "guess").text
    response = post_login(sprayer, "alice", PASSWORD)
    assert response.status_code == 429
    assert "Too many failed sign-ins from your network. Try again in 15 minutes." in response.text
    assert not is_signed_in(sprayer)
    throttled = SecurityEvent.objects.get(user=user, kind=EventKind.SIGNIN_THROTTLED)
    assert throttled.details["reason"] == "ip"
    # Another address is not affected.
    elsewhere = post_login(make_client(), "alice", PASSWORD, REMOTE_ADDR="198.51.100.7")
    assert elsewhere.status_code == 302


def test_ip_limit_allows_up_to_thirty_failures(make_client, user):
    sprayer = make_client()
    for n in range(29):
        post_login(sprayer, f"victim{n}", "guess")
    assert post_login(sprayer, "alice", PASSWORD).status_code == 302


def hard_stop(user: User) -> None:
    """100 consecutive failures from new devices on many addresses, each after its wait."""
    for n in range(100):
        age_failures(user, 3601)
        bot = Client(REMOTE_ADDR=f"198.51.100.{n + 1}")
        assert WRONG in post_login(bot, "alice", "guess").text
    assert failures(user) == 100


def test_hundred_consecutive_failures_stop_password_sign_in_from_new_devices(make_client, user):
    """NIST N20: at most 100 consecutive failures; waiting does not lift the stop."""
    hard_stop(user)
    age_failures(user, 24 * 3600)
    response = post_login(make_client(), "alice", PASSWORD, REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 429
    assert ACCOUNT_THROTTLED in response.text
    assert HARD_STOPPED in response.text
    assert failures(user) == 100


def test_hard_stop_is_lifted_by_a_sign_in_from_a_known_device(owner, make_client, user):
    """NIST N21: a success at the same level resets the count; the owner was never locked."""
    hard_stop(user)
    assert post_login(owner, "alice").status_code == 302
    assert failures(user) == 0
    assert post_login(make_client(), "alice").status_code == 302


def test_hard_stop_is_lifted_by_a_password_reset(client, make_client, user, mail):
    hard_stop(user)
    client.post("/account/reset/", {"identifier": "alice"})
    link = urlsplit(mail.link_to(mail.last("alice@example.org"), "/account/reset/")).path
    set_password = client.get(link)["Location"]
    new = "a brand new passphrase for alice"
    response = client.post(set_password, {"new_password1": new, "new_password2": new})
    assert response.status_code == 302
    assert failures(user) == 0
    assert post_login(make_client(), "alice", new).status_code == 302


def test_unknown_address_is_throttled_like_a_real_one(make_client, user):
    """ASVS 6.3.8: the back-off message does not reveal whether an address has an account."""
    real, phantom = make_client(), make_client()
    for _ in range(5):
        post_login(real, "alice@example.org", "guess")
        post_login(phantom, "nobody@example.org", "guess")
    real_response = post_login(real, "alice@example.org", "guess")
    phantom_response = post_login(phantom, "nobody@example.org", "guess")
    assert real_response.status_code == phantom_response.status_code == 429
    assert ACCOUNT_THROTTLED in real_response.text
    assert ACCOUNT_THROTTLED in phantom_response.text


def test_throttled_attempts_leave_no_trace_for_unknown_names(make_client):
    stranger = make_client()
    for _ in range(6):
        post_login(stranger, "nobody", "guess")
    assert not SecurityEvent.objects.exists()


def test_reset_requests_never_lock_the_account(client, make_client, user, mail):
    """OWASP FP11: asking for resets, however often, leaves sign-in alone."""
    for _ in range(10):
        client.post("/account/reset/", {"identifier": "alice"})
    assert failures(user) == 0
    assert post_login(make_client(), "alice").status_code == 302
