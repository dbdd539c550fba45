"""Mail that is not lost (issue 18 §2): an SMTP outage of 17 minutes, or of days, loses no
security mail. It is retried for RELATCH_EMAIL_GIVE_UP_HOURS, sent at once when the server
takes mail again, every attempt is a row, and what is given up is shown to staff, counted for
a metrics endpoint and told to the account's owner.

The outage is real: mail goes to loopback port 1, where nothing listens (connection refused),
and to the real loopback SMTP server (the ``mail`` fixture) when it is back. Time is moved by
moving every stored time back (the messages', their attempts' and the queued tasks'), then
running the due tasks as the worker does.
"""

import logging
import smtplib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, timedelta
from io import StringIO
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.core.management import call_command
from django.db import transaction
from django.db.models import F
from django.tasks import TaskResultStatus
from django.test import TestCase
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from relatch.accounts.models import Email
from relatch.notify.checks import removed_attempts_setting
from relatch.notify.leftovers import ATTEMPTS_KEPT_FOR
from relatch.notify.models import DeliveryAttempt, Outcome, OutgoingEmail
from relatch.notify.queries import mail_backlog, undelivered_security_mail
from relatch.notify.retries import outcome_of
from relatch.notify.services import send_mail
from relatch.recovery.tasks import recovery_tick
from tests.conftest import Mailbox, run_pending_tasks, sign_in, use_smtp_port
from tests.mfa.factor_rows import add_app
from tests.serving import free_port

pytestmark = pytest.mark.django_db

NOTICE = {"template": "password_changed", "context": {"username": "alice"}}
OLD_GIVE_UP = timedelta(minutes=16)  # six attempts, 30 s doubling: the rule this replaces


def queue(*addresses: str, template: str = "password_changed") -> list[OutgoingEmail]:
    with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
        return send_mail(to=addresses, template=template, context={"username": "alice"})


def move_time_forward(by: timedelta) -> None:
    """As if ``by`` had passed: every stored time of the mail queue is ``by`` earlier."""
    OutgoingEmail.objects.update(
        created_at=F("created_at") - by, last_attempt_at=F("last_attempt_at") - by,
        next_attempt_at=F("next_attempt_at") - by, gave_up_at=F("gave_up_at") - by,
        sent_at=F("sent_at") - by,
    )
    DeliveryAttempt.objects.update(attempted_at=F("attempted_at") - by)
    DBTaskResult.objects.filter(status=TaskResultStatus.READY).update(
        run_after=F("run_after") - by
    )


def let_time_pass(total: timedelta, step: timedelta = timedelta(minutes=1)) -> None:
    """Move time forward ``step`` at a time, the worker running what is due after each."""
    passed = timedelta(0)
    while passed < total:
        move_time_forward(step)
        run_pending_tasks()
        passed += step


def waiting_tasks() -> dict[int, Any]:
    """Each message's waiting delivery task: when it runs."""
    rows = DBTaskResult.objects.filter(
        status=TaskResultStatus.READY, task_path__endswith="deliver_email"
    ).values_list("args_kwargs", "run_after")
    return {args["args"][0]: run_after for args, run_after in rows}


def test_security_mail_is_still_retried_long_after_the_old_give_up_and_every_attempt_is_a_row(
    settings: Any,
) -> None:
    use_smtp_port(settings, 1)  # the SMTP server is down: connection refused
    rows = queue("alice@example.org", "bob@example.org", "carol@example.org")
    run_pending_tasks()
    let_time_pass(OLD_GIVE_UP + timedelta(minutes=4))

    for row in rows:
        row.refresh_from_db()
        assert row.status == OutgoingEmail.Status.PENDING  # the old rule had given up
        attempts = list(DeliveryAttempt.objects.filter(message=row))
        assert len(attempts) == row.attempts >= 5
        assert {a.outcome for a in attempts} == {Outcome.UNREACHABLE}
        assert all("ConnectionRefusedError" in a.error for a in attempts)
        assert "ConnectionRefusedError" in row.last_error
    # Each is still queued, backing off (1, 2, 4, 8 … minutes) …
    tasks = waiting_tasks()
    assert set(tasks) == {row.pk for row in rows}
    now = timezone.now()
    assert max(tasks.values()) > now + timedelta(minutes=7)
    # … but one is always due within a minute: the first to find the server back.
    assert min(tasks.values()) <= now + timedelta(minutes=1)
    assert mail_backlog().undelivered == mail_backlog().retrying == 3


def test_one_delivery_that_gets_through_sends_every_waiting_message_at_once(
    settings: Any, mail: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    """A 17-minute outage: when the server is back, all mail arrives within the minute."""
    use_smtp_port(settings, 1)
    addresses = [f"user{n}@example.org" for n in range(6)]
    caplog.set_level(logging.INFO, logger="relatch.notify.services")
    queue(*addresses)
    run_pending_tasks()
    let_time_pass(timedelta(minutes=17))
    assert mail.messages == []
    # Backed off: without the prompt re-queue most would wait minutes more, one an hour.
    later = sorted(waiting_tasks().values())
    assert later[len(later) // 2] > timezone.now() + timedelta(minutes=3)
    assert later[-1] > timezone.now() + timedelta(minutes=30)
    # One warning when the outage began, not one per message and retry.
    outage = [r for r in caplog.records if "cannot be reached" in r.getMessage()]
    assert len(outage) == 1 and outage[0].levelno == logging.WARNING

    use_smtp_port(settings, mail.port)  # the server is back
    move_time_forward(timedelta(minutes=1))  # no more than a minute passes
    run_pending_tasks()

    for address in addresses:
        assert len(mail.to(address)) == 1
        assert "password of the Relatch account alice was changed" in mail.text(
            mail.last(address)
        )
    assert not OutgoingEmail.objects.exclude(status=OutgoingEmail.Status.SENT).exists()
    assert waiting_tasks() == {}
    for row in OutgoingEmail.objects.all():
        outcomes = list(row.delivery_attempts.values_list("outcome", flat=True))
        assert outcomes[-1] == Outcome.SENT
        assert set(outcomes[:-1]) == {Outcome.UNREACHABLE} and len(outcomes) == row.attempts
    assert any("takes mail again" in r.getMessage() for r in caplog.records)
    assert mail_backlog().undelivered == 0


def test_after_the_give_up_time_mail_is_given_up_shown_to_staff_counted_and_told_to_its_owner(
    settings: Any, make_user: Any, make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    owner = make_user(username="alice", email="alice@example.org")
    stranger = make_user(username="eve", email="eve@example.org")
    # Verified long before: the time moved below is the mail's, not the accounts'.
    Email.objects.update(verified_at=F("verified_at") - timedelta(days=30))
    use_smtp_port(settings, 1)
    queue("alice@example.org")
    queue("ops@example.org", template="test_message")  # `relatch sendtestmail`
    run_pending_tasks()

    move_time_forward(timedelta(hours=71))
    run_pending_tasks()
    notice, test_mail = OutgoingEmail.objects.order_by("id")
    assert notice.status == OutgoingEmail.Status.PENDING  # 71 hours: still retried
    # The test message checks the set-up now; it is given up after an hour.
    assert test_mail.status == OutgoingEmail.Status.FAILED

    move_time_forward(timedelta(hours=1, minutes=1))
    caplog.set_level(logging.WARNING, logger="relatch.notify.services")
    run_pending_tasks()
    notice.refresh_from_db()
    assert notice.status == OutgoingEmail.Status.FAILED
    assert notice.gave_up_at is not None and notice.next_attempt_at is None
    assert waiting_tasks() == {}  # given up: never tried again
    assert any(f"Gave up on mail {notice.pk} (password_changed)" in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING)

    # The counts, and `relatch mail_queue`'s Prometheus text that a monitor reads.
    backlog = mail_backlog()
    assert (backlog.undelivered, backlog.given_up) == (0, 2)
    printed = StringIO()
    call_command("mail_queue", stdout=printed)
    text = printed.getvalue()
    assert "\nrelatch_mail_given_up 2\n" in text
    assert "# TYPE relatch_mail_undelivered gauge\nrelatch_mail_undelivered 0\n" in text

    # The staff page, for staff with a second factor.
    staff = make_user(username="dana", is_staff=True)
    add_app(staff)
    page = sign_in(make_client(), staff).get("/staff/mail/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "alice@example.org" in text and "Your Relatch password was changed" in text
    assert "ConnectionRefusedError" in text and "<strong>2</strong> given up" in text
    detail = sign_in(make_client(), staff).get(f"/staff/mail/{notice.pk}/").content.decode()
    assert detail.count("ConnectionRefusedError") == notice.attempts

    # The owner's account page says so; another account's page does not.
    account = sign_in(make_client(), owner).get("/account/").content.decode()
    assert "We could not send you 1 security message" in account
    # The day as every page shows it (issue 19): a <time>, the exact UTC moment on hover.
    sent = notice.created_at.astimezone(UTC)
    assert (f"\u201cYour Relatch password was changed\u201d to alice@example.org "
            f'(<time datetime="{sent.isoformat()}" title="{sent:%Y-%m-%d %H:%M:%S} UTC">'
            f"{sent.day} {sent:%b %Y}</time>), so we stopped trying.") in account
    other = sign_in(make_client(), stranger).get("/account/").content.decode()
    assert "We could not send" not in other


def test_the_staff_page_is_for_staff_with_a_second_factor_only(
    make_user: Any, make_client: Any
) -> None:
    assert make_client().get("/staff/mail/").status_code == 404
    member = make_user(username="bob")
    assert sign_in(make_client(), member).get("/staff/mail/").status_code == 404
    staff = make_user(username="dana", is_staff=True)
    refused = sign_in(make_client(), staff).get("/staff/mail/")
    assert refused.status_code == 403 and "Two-step sign-in needed" in refused.content.decode()
    add_app(staff)
    assert sign_in(make_client(), staff).get("/staff/mail/").status_code == 200


class _Refuses:
    """aiosmtpd handler: takes the session, refuses one recipient (550), keeps the rest."""

    def __init__(self) -> None:
        self.received: list[str] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          options: Any) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.received.extend(envelope.rcpt_tos)
        return "250 OK"


@contextmanager
def refusing_server() -> Iterator[tuple[_Refuses, int]]:
    handler, port = _Refuses(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def test_mail_the_server_refused_keeps_its_back_off_when_other_mail_goes(settings: Any) -> None:
    """Only mail that waits for an unreachable server is sent at once when it is back: a
    recipient the server refuses is not retried after every other message."""
    with refusing_server() as (handler, port):
        use_smtp_port(settings, port)
        (refused,) = queue("nobody@example.org")
        run_pending_tasks()
        refused.refresh_from_db()
        assert refused.status == OutgoingEmail.Status.PENDING
        assert refused.last_outcome == Outcome.REFUSED and "550" in refused.last_error
        due = waiting_tasks()[refused.pk]
        queue("alice@example.org")
        run_pending_tasks()
        assert handler.received == ["alice@example.org"]
        assert waiting_tasks() == {refused.pk: due}


@pytest.mark.parametrize(("error", "outcome"), [
    (ConnectionRefusedError(111, "Connection refused"), Outcome.UNREACHABLE),
    (TimeoutError("timed out"), Outcome.UNREACHABLE),
    (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), Outcome.UNREACHABLE),
    (smtplib.SMTPAuthenticationError(535, b"bad credentials"), Outcome.UNREACHABLE),
    (smtplib.SMTPSenderRefused(421, b"try later", "a@b"), Outcome.UNREACHABLE),
    (smtplib.SMTPRecipientsRefused({"a@b": (550, b"no such user")}), Outcome.REFUSED),
    (smtplib.SMTPDataError(554, b"rejected"), Outcome.REFUSED),
    (ValueError("a link builder failed"), Outcome.ERROR),
])
def test_what_a_failed_attempt_says_about_the_server(error: Exception, outcome: str) -> None:
    assert outcome_of(error) == outcome


def test_the_tick_prunes_attempts_of_mail_sent_long_ago_and_keeps_the_rest(
    settings: Any, mail: Mailbox
) -> None:
    use_smtp_port(settings, 1)
    (sent,) = queue("sent@example.org")
    run_pending_tasks()
    use_smtp_port(settings, mail.port)
    move_time_forward(timedelta(minutes=1))
    run_pending_tasks()
    sent.refresh_from_db()
    assert sent.status == OutgoingEmail.Status.SENT
    assert sent.delivery_attempts.count() == 2
    use_smtp_port(settings, 1)
    (waiting,) = queue("waiting@example.org")
    run_pending_tasks()

    move_time_forward(ATTEMPTS_KEPT_FOR + timedelta(days=1))
    assert recovery_tick.call()["delivery_attempts_pruned"] == 2
    assert not sent.delivery_attempts.exists()
    assert waiting.delivery_attempts.exists()  # still waiting: every attempt is kept


def test_the_removed_max_attempts_setting_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELATCH_EMAIL_MAX_ATTEMPTS", raising=False)
    assert removed_attempts_setting() == []
    monkeypatch.setenv("RELATCH_EMAIL_MAX_ATTEMPTS", "6")
    (warning,) = removed_attempts_setting()
    assert warning.id == "relatch.notify.W001"


def test_the_owner_hears_only_of_security_mail_sent_while_the_address_was_theirs() -> None:
    now = timezone.now()

    def given_up(to: str, *, days_ago: int, template: str = "password_changed") -> None:
        OutgoingEmail.objects.create(
            to=to, template=template, context={"username": "alice"},
            status=OutgoingEmail.Status.FAILED, created_at=now - timedelta(days=days_ago, hours=3),
            gave_up_at=now - timedelta(days=days_ago),
        )

    given_up("Alice@Example.org", days_ago=1)
    given_up("alice@example.org", days_ago=10)  # before alice verified it: someone else's
    given_up("alice@example.org", days_ago=2, template="test_message")  # not security mail
    given_up("alice@example.org", days_ago=40)  # told for 30 days, then no more
    found = undelivered_security_mail(addresses={"alice@example.org": now - timedelta(days=5)})
    assert [(m.to, m.subject) for m in found] == [
        ("Alice@Example.org", "Your Relatch password was changed")
    ]
    assert undelivered_security_mail(addresses={}) == []
