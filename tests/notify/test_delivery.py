"""Mail goes through the task queue to a real SMTP server, with retries (issue 2 §9)."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.db.models import F
from django.test import TestCase
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from relatch.notify.models import DeliveryAttempt, OutgoingEmail
from relatch.notify.retries import retry_delay
from relatch.notify.services import send_mail
from tests.conftest import run_pending_tasks, use_smtp_port

pytestmark = pytest.mark.django_db


def queue(to: list[str], **kwargs) -> list[OutgoingEmail]:
    with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
        return send_mail(to=to, template="test_message", context={"name": "Ada"}, **kwargs)


def test_message_has_text_and_html_parts_and_arrives_over_smtp(mail):
    queue(["ada@example.org"])
    assert mail.messages == []  # nothing is sent in the request: the worker sends it
    assert run_pending_tasks() == 1
    message = mail.last("ada@example.org")
    assert message["Subject"] == "Test message from Relatch"
    assert "Hello Ada" in mail.text(message)
    assert "<p>Hello Ada" in mail.html(message)
    row = OutgoingEmail.objects.get()
    assert row.status == OutgoingEmail.Status.SENT and row.attempts == 1


def test_nothing_is_queued_when_the_transaction_rolls_back(mail):
    with TestCase.captureOnCommitCallbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                send_mail(to=["ada@example.org"], template="test_message")
                raise RuntimeError("the service failed")
        except RuntimeError:
            pass
    assert callbacks == []
    assert OutgoingEmail.objects.count() == 0
    assert run_pending_tasks() == 0


def test_duplicate_addresses_get_one_message(mail):
    queue(["ada@example.org", "ada@example.org", "bob@example.org"])
    run_pending_tasks()
    assert len(mail.to("ada@example.org")) == 1
    assert len(mail.to("bob@example.org")) == 1


def test_secret_link_is_built_at_delivery_and_never_stored(mail):
    queue(["ada@example.org"], link_builder="tests.notify.links.example_link",
          link_args={"word": "kumquat"})
    row = OutgoingEmail.objects.get()
    assert "kumquat-secret" not in str(row.context) + str(row.link_args)
    assert "kumquat-secret" not in str(list(DBTaskResult.objects.values()))
    run_pending_tasks()
    assert "http://testserver/kumquat-secret" in mail.text(mail.last("ada@example.org"))


def test_failed_delivery_is_retried_later_then_succeeds(mail, settings):
    use_smtp_port(settings, 1)  # nothing listens there: connection refused
    queue(["ada@example.org"])
    run_pending_tasks()
    row = OutgoingEmail.objects.get()
    assert row.status == OutgoingEmail.Status.PENDING and row.attempts == 1
    assert "ConnectionRefusedError" in row.last_error
    retry = DBTaskResult.objects.ready()
    assert not retry.exists()  # the retry waits for its back-off
    waiting = DBTaskResult.objects.filter(status="READY").get()
    assert waiting.run_after > timezone.now() + timedelta(seconds=20)

    use_smtp_port(settings, mail.port)  # the server is back
    # The back-off has passed.
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())
    run_pending_tasks()
    row.refresh_from_db()
    assert row.status == OutgoingEmail.Status.SENT and row.attempts == 2
    assert "Hello Ada" in mail.text(mail.last("ada@example.org"))


def test_gives_up_after_the_configured_hours(settings, mail):
    """RELATCH_EMAIL_GIVE_UP_HOURS counts from the first failed attempt (the full story, with
    the staff page and the owner's notice, is in test_mail_not_lost.py)."""
    use_smtp_port(settings, 1)
    settings.EMAIL_GIVE_UP_HOURS = 2
    with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
        send_mail(to=["ada@example.org"], template="password_changed",
                  context={"username": "ada"})  # security mail (the test message gives up sooner)
    run_pending_tasks()
    for hours in (1, 1.1):
        OutgoingEmail.objects.update(created_at=F("created_at") - timedelta(hours=hours))
        DeliveryAttempt.objects.update(attempted_at=F("attempted_at") - timedelta(hours=hours))
        DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())
        run_pending_tasks()
    row = OutgoingEmail.objects.get()
    assert row.status == OutgoingEmail.Status.FAILED and row.attempts == 3
    assert not DBTaskResult.objects.filter(status="READY").exists()
    assert mail.messages == []


@pytest.mark.parametrize(("attempts", "seconds"), [(1, 60), (2, 120), (3, 240), (7, 3600),
                                                   (20, 3600), (5000, 3600)])
def test_retry_back_off_grows_to_an_hour(attempts, seconds):
    assert retry_delay(attempts) == timedelta(seconds=seconds)


def test_outbox_backend_writes_files(settings, tmp_path: Path):
    settings.MAILERS = {"default": {"BACKEND": "relatch.notify.outbox.OutboxEmailBackend"}}
    settings.OUTBOX_DIR = tmp_path
    queue(["ada@example.org"])
    run_pending_tasks()
    files = list(tmp_path.glob("*.eml"))
    assert len(files) == 1
    assert b"Hello Ada" in files[0].read_bytes()
