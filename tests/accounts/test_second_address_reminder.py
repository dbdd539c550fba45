"""Issue 17, prevention: an account whose mail reaches one address only is asked to add a
second one, on its account page (a banner with "Not now", for a year) and by mail every 90
days. Time moves by changing the timestamps on rows, never by sleeping."""

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
from relatch.accounts.second_address.queries import is_custom_domain
from relatch.accounts.second_address.services import DAILY_LIMIT, remind_second_address
from relatch.accounts.second_address.tasks import second_address_reminders
from relatch.recovery.tasks import recovery_tick
from tests.conftest import CommittingClient, run_pending_tasks, sign_in

pytestmark = pytest.mark.django_db

OVERVIEW = reverse("account:overview")
NOT_NOW = reverse("account:second_address_dismiss")
BANNER = 'id="second-address-heading"'  # the check-up has an item of the same title
OWN_DOMAIN = "is a domain of your own"
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SUBJECT = "Add a second email address to your Relatch account"


def days_ago(days: int, minutes: int = 0) -> datetime:
    return timezone.now() - timedelta(days=days, minutes=minutes)


def add_address(user: User, address: str, **fields: object) -> Email:
    return Email.objects.create(user=user, address=address, verified=True,
                                verified_at=timezone.now(), **fields)


def joined(user: User, days: int) -> User:
    """The account was created ``days`` ago (and a minute, so the boundary is behind us)."""
    User.objects.filter(pk=user.pk).update(date_joined=days_ago(days, minutes=1))
    return user


def reminded(user: User, days: int) -> None:
    AccountReminders.objects.update_or_create(
        user=user, defaults={"second_address_reminded_at": days_ago(days, minutes=1)})


def reminders(user: User) -> AccountReminders:
    return AccountReminders.objects.get(user=user)


def reminder_mail(mail) -> list:
    return [m for m in mail.messages if str(m["Subject"]) == SUBJECT]


def run_pass(*, batch_size: int = BATCH_SIZE, limit: int = DAILY_LIMIT) -> tuple[int, int]:
    """One daily pass, then the deliveries it queued, as the worker would."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        result = remind_second_address(batch_size=batch_size, limit=limit)
    run_pending_tasks()
    return result.checked, result.sent


@pytest.fixture
def owner(make_user) -> User:
    """An account with one address, on a domain of its own."""
    return make_user(username="ines", email="ines@ines-liddell.dev")


# -- the banner --------------------------------------------------------------------------------


def test_one_address_on_a_custom_domain_shows_the_banner_with_the_domain_risk(client, owner):
    page = sign_in(client, owner).get(OVERVIEW).content.decode()

    assert BANNER in page
    assert "Only <strong>ines@ines-liddell.dev</strong> receives mail" in page
    assert f"<strong>ines-liddell.dev</strong> {OWN_DOMAIN}" in page
    assert f'href="{reverse("emails:manage")}">Add an address</a>' in page
    assert f'action="{NOT_NOW}"' in page and "Not now" in page


def test_one_address_at_a_large_provider_shows_the_banner_without_the_domain_risk(
    client, make_user
):
    user = make_user(email="ines.liddell@gmail.com")
    page = sign_in(client, user).get(OVERVIEW).content.decode()
    assert BANNER in page
    assert OWN_DOMAIN not in page


@pytest.mark.parametrize(("address", "custom"), [
    ("someone@ines-liddell.dev", True),
    ("someone@mail.ines-liddell.dev", True),
    ("someone@gmail.com", False),
    ("someone@GMail.com", False),
    ("someone@example.org", False),  # reserved (RFC 2606): nobody can register it again
])
def test_a_custom_domain_is_one_that_can_lapse(address, custom):
    assert is_custom_domain(address) is custom


def test_two_verified_addresses_show_no_banner(client, owner):
    add_address(owner, "ines@fastmail.com")
    page = sign_in(client, owner).get(OVERVIEW).content.decode()
    assert BANNER not in page
    assert "Not now" not in page


def test_a_second_address_that_bounces_does_not_count(client, owner):
    add_address(owner, "ines@fastmail.com", not_receiving_since=timezone.now())
    page = sign_in(client, owner).get(OVERVIEW).content.decode()
    assert "Only <strong>ines@ines-liddell.dev</strong> receives mail" in page


def test_an_unverified_second_address_does_not_count(client, owner):
    Email.objects.create(user=owner, address="ines@fastmail.com")
    assert BANNER in sign_in(client, owner).get(OVERVIEW).content.decode()


def test_not_now_through_the_page_hides_the_banner_for_a_year(owner):
    browser = sign_in(CommittingClient(enforce_csrf_checks=True), owner)
    page = browser.get(OVERVIEW).content.decode()
    token = CSRF_FIELD.findall(page)[0]

    response = browser.post(NOT_NOW, {"csrfmiddlewaretoken": token}, follow=True)

    assert response.redirect_chain == [(OVERVIEW, 302)]
    page = response.content.decode()
    assert "We won&#x27;t ask you to add a second address for a year" in page
    assert BANNER not in page
    until = reminders(owner).second_address_dismissed_until
    assert until is not None
    assert abs(until - (timezone.now() + timedelta(days=365))) < timedelta(minutes=1)

    # 364 days on, still hidden; a year on, it is back.
    AccountReminders.objects.filter(user=owner).update(
        second_address_dismissed_until=timezone.now() + timedelta(days=1))
    assert BANNER not in browser.get(OVERVIEW).content.decode()
    AccountReminders.objects.filter(user=owner).update(
        second_address_dismissed_until=days_ago(0, minutes=1))
    assert BANNER in browser.get(OVERVIEW).content.decode()


def test_not_now_without_a_csrf_token_or_by_get_changes_nothing(owner):
    browser = sign_in(CommittingClient(enforce_csrf_checks=True), owner)
    browser.get(OVERVIEW)
    assert browser.post(NOT_NOW).status_code == 403
    assert browser.get(NOT_NOW).status_code == 405
    assert not AccountReminders.objects.filter(
        user=owner, second_address_dismissed_until__isnull=False).exists()
    assert BANNER in browser.get(OVERVIEW).content.decode()


def test_not_now_needs_a_signed_in_account(client):
    response = client.post(NOT_NOW)
    assert response.status_code == 302 and "/account/login" in response["Location"]
    assert not AccountReminders.objects.exists()


def test_a_frozen_account_sees_no_banner(client, owner):
    User.objects.filter(pk=owner.pk).update(is_frozen=True, frozen_at=timezone.now())
    owner.refresh_from_db()
    assert BANNER not in sign_in(client, owner).get(OVERVIEW).content.decode()


# -- the mail every 90 days --------------------------------------------------------------------


def test_the_first_reminder_comes_90_days_after_joining(owner, mail):
    joined(owner, 89)
    assert run_pass() == (1, 0)
    assert mail.messages == []

    joined(owner, 90)
    assert run_pass() == (1, 1)
    [message] = reminder_mail(mail)
    assert str(message["To"]) == "ines@ines-liddell.dev"
    text = mail.text(message)
    assert "only one email address that receives mail: ines@ines-liddell.dev" in text
    assert "ines-liddell.dev is a domain of your own" in text
    assert "http://testserver/account/emails/" in text
    assert '"Not now" on your account page: http://testserver/account/' in text
    assert "ines@ines-liddell.dev" in mail.html(message)
    assert "If this wasn't you" not in text  # a reminder, not a security notice
    reminded_at = reminders(owner).second_address_reminded_at
    assert reminded_at is not None and timezone.now() - reminded_at < timedelta(minutes=1)

    # The same day again: nothing.
    mail.clear()
    assert run_pass() == (1, 0)
    assert mail.messages == []


def test_then_every_90_days(owner, mail):
    joined(owner, 400)
    reminded(owner, 89)
    assert run_pass()[1] == 0

    reminded(owner, 90)
    assert run_pass()[1] == 1
    assert len(reminder_mail(mail)) == 1
    assert run_pass()[1] == 0
    assert len(reminder_mail(mail)) == 1


def test_no_reminder_with_two_addresses(owner, mail):
    joined(owner, 400)
    add_address(owner, "ines@fastmail.com")
    assert run_pass() == (1, 0)
    assert mail.messages == []


def test_no_reminder_for_a_year_after_not_now(owner, mail):
    joined(owner, 400)
    reminded(owner, 200)
    AccountReminders.objects.filter(user=owner).update(
        second_address_dismissed_until=timezone.now() + timedelta(days=1))
    assert run_pass()[1] == 0

    # The year is over: reminded at once (the last reminder is long ago), then every 90 days.
    AccountReminders.objects.filter(user=owner).update(
        second_address_dismissed_until=days_ago(0, minutes=1))
    assert run_pass()[1] == 1
    assert len(reminder_mail(mail)) == 1


def test_inactive_frozen_and_unverified_accounts_are_not_reminded(make_user, mail):
    inactive = joined(make_user(email="a@a-domain.dev"), 400)
    frozen = joined(make_user(email="b@b-domain.dev"), 400)
    User.objects.filter(pk=inactive.pk).update(is_active=False)
    User.objects.filter(pk=frozen.pk).update(is_frozen=True, frozen_at=timezone.now())
    unverified = joined(make_user(email="c@c-domain.dev", verified=False), 400)
    bounced = joined(make_user(email="d@d-domain.dev"), 400)
    Email.objects.filter(user=bounced).update(not_receiving_since=timezone.now())

    checked, sent = run_pass()

    assert sent == 0 and mail.messages == []
    assert checked == 2  # inactive and frozen accounts are not even looked at
    for user in (inactive, frozen, unverified, bounced):
        assert not AccountReminders.objects.filter(
            user=user, second_address_reminded_at__isnull=False).exists()


def test_the_pass_walks_the_accounts_in_batches_and_stops_at_its_limit(make_user, mail):
    users = [joined(make_user(email=f"u{i}@domain{i}.dev"), 100) for i in range(5)]
    joined(make_user(email="two@domain.dev"), 100).emails.create(
        address="two@gmail.com", verified=True, verified_at=timezone.now())

    assert run_pass(batch_size=2, limit=3) == (4, 3)  # two batches of two, three mails
    assert run_pass(batch_size=2, limit=3) == (6, 2)  # the rest, the next day
    assert run_pass(batch_size=2, limit=3) == (6, 0)

    assert sorted(str(m["To"]) for m in reminder_mail(mail)) == sorted(
        f"u{i}@domain{i}.dev" for i in range(5))
    assert AccountReminders.objects.filter(
        user__in=users, second_address_reminded_at__isnull=False).count() == 5


# -- scheduling --------------------------------------------------------------------------------


def waiting_passes() -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path=second_address_reminders.module_path,
                                            status="READY"))


def test_the_recovery_tick_queues_one_pass_a_day_which_the_worker_runs(owner, mail):
    first, second = recovery_tick.call(), recovery_tick.call()
    assert first["second_address_reminders_queued"] is True
    assert second["second_address_reminders_queued"] is False
    [waiting] = waiting_passes()
    assert abs(waiting.run_after - waiting.enqueued_at - DAILY) < timedelta(minutes=1)
    assert run_pending_tasks() == 0  # not before tomorrow

    joined(owner, 90)
    DBTaskResult.objects.filter(pk=waiting.pk).update(run_after=timezone.now())
    run_pending_tasks()  # the pass, then the delivery it queued
    waiting.refresh_from_db()
    assert waiting.status == "SUCCESSFUL"
    assert waiting.return_value == {"checked": 1, "sent": 1, "limited": False}
    assert len(reminder_mail(mail)) == 1


def test_the_command_runs_the_passes_now(owner, mail):
    joined(owner, 90)
    out = StringIO()
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("send_account_reminders", stdout=out)
        call_command("send_account_reminders", stdout=out)
    run_pending_tasks()
    lines = out.getvalue().splitlines()
    assert lines[0] == "Second address: checked 1 accounts, mailed 1."
    assert lines[2] == "Second address: checked 1 accounts, mailed 0."
    assert lines[1].startswith("Recovery information: checked 0 accounts")
    assert len(reminder_mail(mail)) == 1
