"""Issue 17, prevention: every 12 months an account with a second factor is asked to confirm
its recovery information (addresses, recovery codes, factors) in one click. Time moves by
changing the timestamps on rows, never by sleeping."""

import re
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from relatch.accounts.daily import BATCH_SIZE, DAILY
from relatch.accounts.models import AccountReminders, Email, User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.mfa.models import TotpDevice, WebAuthnCredential
from relatch.mfa.yearly_check.services import DAILY_LIMIT, ask_due_accounts
from relatch.mfa.yearly_check.tasks import recovery_info_checks
from relatch.recovery.tasks import recovery_tick
from tests.conftest import CommittingClient, run_pending_tasks, sign_in
from tests.mfa.factor_rows import add_app, add_codes, add_key

pytestmark = pytest.mark.django_db

CHECK = reverse("recovery_info:check")
CONFIRM = reverse("recovery_info:confirm")
SUBJECT = "Is your Relatch recovery information still right?"
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
BUTTON = "This is all still right"


def days_ago(days: int) -> datetime:
    """``days`` ago and a minute, so that a boundary of ``days`` is behind us."""
    return timezone.now() - timedelta(days=days, minutes=1)


def asks(mail) -> list:
    return [m for m in mail.messages if str(m["Subject"]) == SUBJECT]


def run_pass(*, batch_size: int = BATCH_SIZE, limit: int = DAILY_LIMIT) -> tuple[int, int]:
    """One daily pass, then the deliveries it queued, as the worker would."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        result = ask_due_accounts(batch_size=batch_size, limit=limit)
    run_pending_tasks()
    return result.checked, result.sent


def set_reminders(user: User, **fields: object) -> None:
    AccountReminders.objects.update_or_create(user=user, defaults=fields)


def reminders(user: User) -> AccountReminders:
    return AccountReminders.objects.get(user=user)


@pytest.fixture
def owner(user) -> User:
    """alice, with two addresses, an app and two keys set up 13 months ago, 7 of 10 codes."""
    Email.objects.create(user=user, address="alice@liddell.dev", verified=True,
                         verified_at=timezone.now())
    add_app(user, created_at=days_ago(400))
    add_key(user, "YubiKey 5 NFC", created_at=days_ago(395))
    add_key(user, "Laptop passkey", discoverable=True)
    add_codes(user, used=3, total=10)
    return user


# -- who is asked, and when --------------------------------------------------------------------


def test_an_account_with_a_second_factor_is_asked_once(owner, mail):
    assert run_pass() == (1, 1)

    messages = asks(mail)
    assert sorted(str(m["To"]) for m in messages) == ["alice@example.org", "alice@liddell.dev"]
    text = mail.text(messages[0])
    assert "Email addresses: alice@example.org, alice@liddell.dev." in text
    assert "Recovery codes: 7 of 10 unused." in text
    assert ("Second factors: an authenticator app; security keys YubiKey 5 NFC, "
            "Laptop passkey.") in text
    assert mail.link_to(messages[0], CHECK) == CHECK
    assert "7 of 10 unused" in mail.html(messages[0])
    asked_at = reminders(owner).recovery_info_asked_at
    assert asked_at is not None and timezone.now() - asked_at < timedelta(minutes=1)

    mail.clear()
    assert run_pass() == (1, 0)  # the same day again: nothing
    assert mail.messages == []


def test_not_asked_again_within_12_months_of_the_last_ask(owner, mail):
    set_reminders(owner, recovery_info_asked_at=days_ago(364))
    assert run_pass()[1] == 0

    set_reminders(owner, recovery_info_asked_at=days_ago(365))
    assert run_pass()[1] == 1
    assert len(asks(mail)) == 2  # one ask, to both addresses
    assert run_pass()[1] == 0


def test_an_account_that_confirmed_recently_is_not_asked(owner, mail):
    set_reminders(owner, recovery_info_asked_at=days_ago(500),
                  recovery_info_confirmed_at=days_ago(200))
    assert run_pass()[1] == 0

    set_reminders(owner, recovery_info_confirmed_at=days_ago(365))
    assert run_pass()[1] == 1


def test_the_first_ask_comes_12_months_after_the_oldest_factor(user, mail):
    device = add_app(user, created_at=days_ago(364))
    assert run_pass() == (1, 0)

    TotpDevice.objects.filter(pk=device.pk).update(created_at=days_ago(365))
    assert run_pass() == (1, 1)


def test_an_account_without_a_second_factor_is_never_asked(user, make_user, mail):
    User.objects.filter(pk=user.pk).update(date_joined=days_ago(2000))
    add_codes(user, created_at=days_ago(2000))  # codes are a way back in, not a factor
    # Its factor was removed: it no longer counts either.
    other = make_user()
    add_key(other, "Old key", created_at=days_ago(800))
    WebAuthnCredential.objects.filter(user=other).delete()

    assert run_pass() == (0, 0)
    assert mail.messages == []
    assert not AccountReminders.objects.filter(recovery_info_asked_at__isnull=False).exists()


def test_inactive_frozen_and_unreachable_accounts_are_not_asked(make_user, mail):
    accounts = [make_user() for _ in range(3)]
    for account in accounts:
        add_app(account, created_at=days_ago(400))
    inactive, frozen, unreachable = accounts
    User.objects.filter(pk=inactive.pk).update(is_active=False)
    User.objects.filter(pk=frozen.pk).update(is_frozen=True, frozen_at=timezone.now())
    Email.objects.filter(user=unreachable).update(not_receiving_since=timezone.now())

    assert run_pass() == (1, 0)
    assert mail.messages == []


def test_the_pass_walks_the_accounts_in_batches_and_stops_at_its_limit(make_user, mail):
    accounts = [make_user() for _ in range(5)]
    for account in accounts:
        add_key(account, "Key", created_at=days_ago(400))
    make_user()  # no factor: not walked

    assert run_pass(batch_size=2, limit=3) == (4, 3)
    assert run_pass(batch_size=2, limit=3) == (5, 2)
    assert run_pass(batch_size=2, limit=3) == (5, 0)
    assert sorted(str(m["To"]) for m in asks(mail)) == sorted(
        f"{a.username}@example.org" for a in accounts)


# -- the page and the one-click confirmation ---------------------------------------------------


def test_the_page_lists_addresses_code_counts_and_factors(client, owner):
    Email.objects.create(user=owner, address="alice@typo.example")  # unverified: not listed
    Email.objects.create(user=owner, address="alice@bounced.dev", verified=True,
                         verified_at=timezone.now(), not_receiving_since=timezone.now())
    page = sign_in(client, owner).get(CHECK).content.decode()

    for address in ("alice@example.org", "alice@liddell.dev", "alice@bounced.dev"):
        assert f"<li>{address}" in page
    assert "alice@typo.example" not in page
    assert "Not receiving mail" in page
    assert "7 of 10 recovery codes unused" in page
    assert "Authenticator app: set up" in page
    assert "Security keys: YubiKey 5 NFC, Laptop passkey (passkey)" in page
    for name in ("emails:manage", "recovery_codes:manage", "mfa:overview"):
        assert f'href="{reverse(name)}"' in page
    assert BUTTON in page
    assert "You have not confirmed it yet." in page


def test_the_page_says_when_something_is_missing(client, make_user):
    user = make_user()
    add_app(user)
    page = sign_in(client, user).get(CHECK).content.decode()
    assert "You have no recovery codes." in page
    assert "Only one address reaches you" in page
    assert "Security keys: none" in page


def test_one_click_from_the_mail_confirms_records_and_stops_the_asks(owner, mail):
    run_pass()
    link = mail.link_to(asks(mail)[0], CHECK)

    # Signed out, the link leads to the sign-in page and back.
    anonymous = CommittingClient().get(link)
    assert anonymous.status_code == 302
    assert "/account/login" in anonymous["Location"] and "next=" in anonymous["Location"]

    browser = sign_in(CommittingClient(enforce_csrf_checks=True), owner)
    page = browser.get(link).content.decode()
    assert f'action="{CONFIRM}"' in page and BUTTON in page
    token = CSRF_FIELD.findall(page)[0]
    response = browser.post(CONFIRM, {"csrfmiddlewaretoken": token}, follow=True)

    assert response.redirect_chain == [(CHECK, 302)]
    page = response.content.decode()
    assert "your recovery information is confirmed" in page
    assert re.search(r"You last confirmed it <time [^>]+>just now</time>\.", page)
    confirmed_at = reminders(owner).recovery_info_confirmed_at
    assert confirmed_at is not None and timezone.now() - confirmed_at < timedelta(minutes=1)
    [event] = SecurityEvent.objects.filter(user=owner, kind=EventKind.RECOVERY_INFO_CONFIRMED)
    assert event.details == {"addresses": 2, "second_factors": 3, "codes_left": 7}
    assert event.ip_address == "127.0.0.1"
    assert "Recovery information confirmed as right" in browser.get(
        reverse("account:overview")).content.decode()

    # A year after the ask, the confirmation still stands: no new ask until a year after it.
    mail.clear()
    set_reminders(owner, recovery_info_asked_at=days_ago(400))
    assert run_pass()[1] == 0
    set_reminders(owner, recovery_info_confirmed_at=days_ago(365))
    assert run_pass()[1] == 1


def test_confirming_without_a_csrf_token_or_by_get_changes_nothing(owner):
    browser = sign_in(CommittingClient(enforce_csrf_checks=True), owner)
    browser.get(CHECK)
    assert browser.post(CONFIRM).status_code == 403
    assert browser.get(CONFIRM).status_code == 405
    assert not AccountReminders.objects.filter(
        recovery_info_confirmed_at__isnull=False).exists()
    assert not SecurityEvent.objects.filter(kind=EventKind.RECOVERY_INFO_CONFIRMED).exists()


def test_confirming_needs_a_signed_in_account(client, owner):
    response = client.post(CONFIRM)
    assert response.status_code == 302 and "/account/login" in response["Location"]
    assert not SecurityEvent.objects.filter(kind=EventKind.RECOVERY_INFO_CONFIRMED).exists()


# -- scheduling --------------------------------------------------------------------------------


def test_the_recovery_tick_queues_one_pass_a_day_which_the_worker_runs(owner, mail):
    first, second = recovery_tick.call(), recovery_tick.call()
    assert (first["recovery_info_checks_queued"], second["recovery_info_checks_queued"]) == (
        True, False)
    [waiting] = DBTaskResult.objects.filter(task_path=recovery_info_checks.module_path,
                                            status="READY")
    assert abs(waiting.run_after - waiting.enqueued_at - DAILY) < timedelta(minutes=1)
    assert run_pending_tasks() == 0  # not before tomorrow

    DBTaskResult.objects.filter(pk=waiting.pk).update(run_after=timezone.now())
    run_pending_tasks()
    waiting.refresh_from_db()
    assert waiting.status == "SUCCESSFUL"
    assert waiting.return_value == {"checked": 1, "sent": 1, "limited": False}
    assert len(asks(mail)) == 2


def test_the_command_asks_who_is_due(owner, mail):
    out = StringIO()
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("send_account_reminders", "--limit", "5", stdout=out)
    run_pending_tasks()
    assert "Recovery information: checked 1 accounts, mailed 1." in out.getvalue()
    assert len(asks(mail)) == 2
