"""Some days after enrolment a mail asks the user to check their factors (issue 3 §7)."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.test import TestCase
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from relatch.audit.models import EventKind, SecurityEvent
from relatch.mfa.models import RecoveryCode, RecoveryCodeSet, TotpDevice
from relatch.mfa.reminders import schedule_factor_reminder
from tests.conftest import run_pending_tasks

pytestmark = pytest.mark.django_db


def schedule(user) -> None:
    with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
        schedule_factor_reminder(user=user)


def pass_the_wait() -> None:
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())


def test_reminder_waits_the_configured_days_then_mails_every_verified_address(
    user, make_user, mail, settings
):
    settings.FACTOR_REMINDER_DAYS = 14
    TotpDevice.objects.create(user=user, encrypted_secret="x")
    code_set = RecoveryCodeSet.objects.create(user=user)
    RecoveryCode.objects.create(code_set=code_set, identifier="AAAA", code_hash="x")
    user.emails.create(address="alice@work.example", verified=True, verified_at=timezone.now())
    schedule(user)

    assert run_pending_tasks() == 0  # not before fourteen days
    task = DBTaskResult.objects.get()
    assert timedelta(days=13, hours=23) < task.run_after - timezone.now() <= timedelta(days=14)

    pass_the_wait()
    assert run_pending_tasks() == 3  # the reminder, then one delivery per verified address
    for address in ("alice@example.org", "alice@work.example"):
        text = mail.text(mail.last(address))
        assert "authenticator app" in text
        assert "You have 1 unused code." in text
        assert "That is" in text and "few" in text  # one code left: make a new set
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.FACTOR_REMINDER_SENT).exists()


def test_no_reminder_when_the_factor_was_removed_meanwhile(user, mail):
    device = TotpDevice.objects.create(user=user, encrypted_secret="x")
    schedule(user)
    device.delete()
    pass_the_wait()
    run_pending_tasks()
    assert mail.messages == []
    assert not SecurityEvent.objects.filter(kind=EventKind.FACTOR_REMINDER_SENT).exists()
