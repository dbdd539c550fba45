"""The sign-in path runs a fixed number of queries (bench/signin.py: sign-ins per second are
bound by Argon2, and every redundant query is CPU taken from that bound).

A new query on these steps fails here. If it is needed, raise the number and say why; the
statements run are printed on failure. Counts are inside the test's transaction, so each
``atomic`` block is a SAVEPOINT/RELEASE pair here (in production the outermost one is a
BEGIN/COMMIT pair instead).
"""

from datetime import timedelta
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.utils import timezone

from relatch.accounts.devices import remember_device, this_device
from relatch.accounts.models import KnownDevice, User
from relatch.audit.models import EventKind, Factor, SecurityEvent
from relatch.mfa import throttling
from relatch.mfa.models import NewDeviceConfirmation
from relatch.notify.models import OutgoingEmail
from tests.mfa.signin_flow import (
    APP,
    CHECK_MAIL,
    SECOND_STEP,
    app_code,
    device_digest_of,
    enrol_app,
    events,
    password_step,
    signed_in_user_id,
    trust_browser,
)

pytestmark = pytest.mark.django_db

# Before this file: 12, 37 and 24.
# Password step: the account found (once: the backend is handed it); this browser known?;
# failures forgotten; has an app?; the session's new key (exists?, insert) and its save.
# Issue 18 §8: the browser's limit is a database row shared by every web process, reserved
# before the check and freed after it (read under lock and written, twice, each in its own
# transaction: +8 with the savepoint pairs), and made on this key's first attempt (expired
# rows swept, inserted, read again: +3).
PASSWORD_STEP = 22
# Session and account; the account's row locked; the factor limits (one statement); the
# app's step read and moved on; the waiting self-service recovery and this browser's
# KnownDevice row, each read once; the new session (exists?, insert; the old one read and
# deleted); last_login; the listed session; the KnownDevice row touched (one UPDATE);
# failures forgotten; SIGNIN_SUCCEEDED; the session saved; plus the savepoint pairs.
# +1 since issue 18 §8: the factor's per-IP limit is read from the database's shared row (no
# Redis here), not from this process's memory.
KNOWN_DEVICE_CODE_STEP = 27
# As far as the recovery; no device cookie, so no KnownDevice read; links sent this hour;
# the link, its event, the addresses (once) and the queued mail; the session saved.
NEW_DEVICE_CODE_STEP = 22  # +1 as above: the per-IP limit's row


@pytest.fixture
def alice(user: User) -> User:
    user.secret = enrol_app(user)  # type: ignore[attr-defined]
    return user


@pytest.fixture
def browser() -> Client:
    """A plain client: the fixture's also runs the task queue after each request."""
    return Client()


def cookies_of(client: Client) -> HttpRequest:
    request = RequestFactory().get("/")
    request.COOKIES = {name: morsel.value for name, morsel in client.cookies.items()}
    return request


def earlier_failures(user: User, count: int) -> None:
    """Wrong app codes long ago, after an older success: the limits count them (fewer than
    the back-off needs), and counting them costs no extra statement."""
    at = timezone.now() - timedelta(hours=2)
    kinds = [EventKind.SIGNIN_SUCCEEDED] + [EventKind.SIGNIN_FAILED] * count
    SecurityEvent.objects.bulk_create(
        SecurityEvent(user=user, kind=kind, factor=Factor.TOTP, created_at=at) for kind in kinds
    )


def test_password_step_of_an_account_with_an_app(
    browser: Client, alice: User, django_assert_num_queries: Any
) -> None:
    trust_browser(browser, alice)
    with django_assert_num_queries(PASSWORD_STEP):
        response = password_step(browser)
    assert response.status_code == 302
    assert response["Location"] == SECOND_STEP
    assert signed_in_user_id(browser) is None


@pytest.mark.parametrize("failures", [0, 4])
def test_app_code_from_a_known_device(
    browser: Client, alice: User, failures: int, django_assert_num_queries: Any
) -> None:
    trust_browser(browser, alice)
    [before] = KnownDevice.objects.filter(user=alice)
    earlier_failures(alice, failures)
    password_step(browser)
    code = app_code(alice, alice.secret)  # type: ignore[attr-defined]
    assert throttling.consecutive_failures(user=alice, factor=Factor.TOTP)[0] == failures

    with django_assert_num_queries(KNOWN_DEVICE_CODE_STEP):
        response = browser.post(APP, {"code": code})

    assert response["Location"] == "/account/"
    assert signed_in_user_id(browser) == str(alice.pk)
    succeeded = events(alice, EventKind.SIGNIN_SUCCEEDED)[-1]
    assert succeeded.details["new_device"] is False
    [after] = KnownDevice.objects.filter(user=alice)
    assert (after.pk, after.first_seen) == (before.pk, before.first_seen)
    assert after.last_seen > before.last_seen
    assert throttling.consecutive_failures(user=alice, factor=Factor.TOTP) == (0, None)


def test_app_code_from_a_new_device_is_held(
    browser: Client, alice: User, django_assert_num_queries: Any
) -> None:
    password_step(browser)
    code = app_code(alice, alice.secret)  # type: ignore[attr-defined]
    with django_assert_num_queries(NEW_DEVICE_CODE_STEP):
        response = browser.post(APP, {"code": code})
    assert response["Location"] == CHECK_MAIL
    assert signed_in_user_id(browser) is None
    [held] = NewDeviceConfirmation.objects.filter(user=alice)
    [sent] = events(alice, EventKind.NEW_DEVICE_CONFIRMATION_SENT)
    assert sent.details == {"sent_to": 1}
    links = OutgoingEmail.objects.filter(template="newdevice_confirm")
    assert list(links.values_list("to", "link_args")) == [
        ("alice@example.org", {"confirmation_id": held.pk})
    ]
    assert not KnownDevice.objects.filter(user=alice).exists()
    assert held.used_at is None


@pytest.mark.parametrize("forgotten_meanwhile", [False, True])
def test_remembering_a_device_from_the_row_read_earlier(
    browser: Client, alice: User, forgotten_meanwhile: bool
) -> None:
    """The row read at the start of the step is touched, not re-read; a row forgotten in
    between ("forget this device" in another tab) is written afresh, never lost half-way."""
    trust_browser(browser, alice)
    request = cookies_of(browser)
    device = this_device(request=request, user=alice)
    assert device.row is not None
    if forgotten_meanwhile:
        KnownDevice.objects.filter(pk=device.row.pk).delete()

    remember_device(
        request=request, response=HttpResponse(), user=alice, confirmed=True, known=device.row
    )

    [row] = KnownDevice.objects.filter(user=alice)
    assert row.device_digest == device_digest_of(browser)
    assert row.confirmed is True
    assert (row.pk == device.row.pk) is not forgotten_meanwhile
    assert (row.first_seen == device.row.first_seen) is not forgotten_meanwhile


def test_a_row_of_another_account_is_never_touched(
    browser: Client, alice: User, make_user: Any
) -> None:
    bob = make_user(username="bob")
    trust_browser(browser, alice)
    trust_browser(browser, bob)
    request = cookies_of(browser)
    bobs = this_device(request=request, user=bob).row
    assert bobs is not None

    remember_device(
        request=request, response=HttpResponse(), user=alice, confirmed=True, known=bobs
    )

    assert KnownDevice.objects.get(user=alice).confirmed is True
    assert KnownDevice.objects.get(user=bob).confirmed is False
