"""Queueing and delivering mail. Every message has a text and an HTML template."""

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import batched
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import DatabaseError, transaction
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.module_loading import import_string

from relatch.notify import retries, verp
from relatch.notify.models import DeliveryAttempt, Outcome, OutgoingEmail
from relatch.notify.taskqueue import enqueue_delivery, mail_with_a_task, run_deliveries_now

logger = logging.getLogger(__name__)


def send_mail(
    *,
    to: Iterable[str],
    template: str,
    context: dict[str, Any] | None = None,
    link_builder: str = "",
    link_args: dict[str, Any] | None = None,
) -> list[OutgoingEmail]:
    """Queue ``template`` for each address in ``to``; delivery starts after the commit.

    ``context`` must be JSON-safe and hold no secret. A message with a secret link names its
    builder (a dotted path to a function taking ``link_args`` and returning a URL).
    """
    rows = OutgoingEmail.objects.bulk_create(
        OutgoingEmail(
            to=address,
            template=template,
            context=context or {},
            link_builder=link_builder,
            link_args=link_args or {},
        )
        for address in dict.fromkeys(to)
    )
    transaction.on_commit(lambda: enqueue_delivery(row.pk for row in rows))
    return rows


def render_message(outgoing: OutgoingEmail) -> EmailMultiAlternatives:
    """Build the message from its templates; a secret link is made now, never stored."""
    context = {**outgoing.context, "base_url": settings.BASE_URL, "to": outgoing.to}
    if outgoing.link_builder:
        context["link"] = import_string(outgoing.link_builder)(**outgoing.link_args)
    name = f"notify/mail/{outgoing.template}"
    subject = " ".join(render_to_string(f"{name}.subject.txt", context).split())
    # The SMTP backend sends ``from_email`` as the envelope sender (MAIL FROM), where bounces
    # go: the message's own return path (VERP). The From header people see stays the same.
    envelope_sender = verp.return_path(outgoing.pk) or settings.DEFAULT_FROM_EMAIL
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"{name}.txt", context),
        from_email=envelope_sender,
        to=[outgoing.to],
        headers={"From": settings.DEFAULT_FROM_EMAIL},
    )
    message.attach_alternative(render_to_string(f"{name}.html", context), "text/html")
    return message


def deliver(*, outgoing_id: int) -> OutgoingEmail.Status:
    """Make one attempt at sending a queued message, and record it (a DeliveryAttempt).

    A failure schedules the next attempt, or gives the message up once it has failed for its
    give-up time (``relatch.notify.retries``); a success makes every message that waits for
    the mail server due now. Nothing else sends mail, so nothing is dropped unrecorded.
    """
    with transaction.atomic():
        # Locked while it is sent: a second task for the same message (a sweep's, or a dead
        # host's task released while another host sends it) skips it, so it goes once.
        rows = OutgoingEmail.objects.filter(pk=outgoing_id)
        outgoing = rows.select_for_update(skip_locked=True).first()
        if outgoing is None:
            return OutgoingEmail.Status.PENDING if rows.exists() else OutgoingEmail.Status.FAILED
        if outgoing.status != OutgoingEmail.Status.PENDING:
            return OutgoingEmail.Status(outgoing.status)  # a second task for it: sent once only
        try:
            render_message(outgoing).send()
        except DatabaseError:
            raise  # our database is down, not the mail: the worker waits and runs it again
        # Any other failure, not only SMTP's: a template or link builder that raises would
        # fail the task unrecorded, and the sweep would queue it again every ten minutes.
        except Exception as exc:
            return _record_failure(outgoing, exc)
        _record_success(outgoing)
    requeue_mail_waiting_for_the_server()
    return OutgoingEmail.Status.SENT


def note_bounce(*, outgoing_id: int, hard: bool) -> bool:
    """Record that a delivery-status notification said ``outgoing_id`` bounced; False when
    that was known already (a repeated or replayed notice: a message counts once as a soft
    bounce, and once more if it then fails for good)."""
    rows = OutgoingEmail.objects.filter(pk=outgoing_id)
    rows = rows.exclude(bounce=OutgoingEmail.Bounce.HARD) if hard else rows.filter(bounce="")
    kind = OutgoingEmail.Bounce.HARD if hard else OutgoingEmail.Bounce.SOFT
    return rows.update(bounce=kind, bounced_at=timezone.now()) == 1


def _record_success(outgoing: OutgoingEmail) -> None:
    now = timezone.now()
    with transaction.atomic():
        outgoing.attempts += 1
        outgoing.status = OutgoingEmail.Status.SENT
        outgoing.sent_at = outgoing.last_attempt_at = now
        outgoing.last_outcome = Outcome.SENT
        outgoing.last_error = ""
        outgoing.next_attempt_at = None
        outgoing.save(update_fields=[*_ATTEMPT_FIELDS, "status", "sent_at"])
        DeliveryAttempt.objects.create(message=outgoing, attempted_at=now, outcome=Outcome.SENT)


_ATTEMPT_FIELDS = ["attempts", "last_attempt_at", "last_outcome", "last_error", "next_attempt_at"]


def _record_failure(outgoing: OutgoingEmail, exc: Exception) -> OutgoingEmail.Status:
    """Record the failed attempt, then give up or queue the next attempt, in one transaction:
    a crash between the two cannot leave a message waiting with no attempt to come."""
    now = timezone.now()
    outcome = retries.outcome_of(exc)
    # The first message to find the server gone, not one already waiting for it.
    outage_begins = (
        outcome == Outcome.UNREACHABLE and outgoing.last_outcome != Outcome.UNREACHABLE
        and not _waiting_for_the_server(now=None, but=outgoing.pk).exists()
    )
    failing_since = _first_attempt_at(outgoing) or now
    with transaction.atomic():
        outgoing.attempts += 1
        outgoing.last_attempt_at = now
        outgoing.last_outcome = outcome
        outgoing.last_error = retries.error_text(exc)
        DeliveryAttempt.objects.create(
            message=outgoing, attempted_at=now, outcome=outcome, error=outgoing.last_error
        )
        if now - failing_since >= retries.give_up_after(outgoing.template):
            _give_up(outgoing, now=now, failing_since=failing_since)
            return OutgoingEmail.Status.FAILED
        delay = _next_delay(outgoing, outcome, now=now)
        outgoing.next_attempt_at = now + delay
        outgoing.save(update_fields=_ATTEMPT_FIELDS)
        enqueue_delivery([outgoing.pk], delay=delay)
    _log_failure(outgoing, exc, delay=delay, outage_begins=outage_begins)
    return OutgoingEmail.Status.PENDING


def _first_attempt_at(outgoing: OutgoingEmail) -> datetime | None:
    """When the message first failed: its give-up time counts from there, so mail the worker
    could not even try (the worker was down) still gets its days of retries."""
    return (
        DeliveryAttempt.objects.filter(message=outgoing)
        .order_by("attempted_at")
        .values_list("attempted_at", flat=True)
        .first()
    )


def _next_delay(outgoing: OutgoingEmail, outcome: str, *, now: datetime) -> timedelta:
    """The back-off, except that while the server is unreachable one waiting message is
    always due within PROBE_EVERY: the one that finds the server back sends all the others."""
    delay = retries.retry_delay(outgoing.attempts)
    if outcome != Outcome.UNREACHABLE or delay <= retries.PROBE_EVERY:
        return delay
    due_soon = OutgoingEmail.objects.filter(status=OutgoingEmail.Status.PENDING).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + retries.PROBE_EVERY)
    )
    return delay if due_soon.exclude(pk=outgoing.pk).exists() else retries.PROBE_EVERY


def _give_up(outgoing: OutgoingEmail, *, now: datetime, failing_since: datetime) -> None:
    outgoing.status = OutgoingEmail.Status.FAILED
    outgoing.gave_up_at = now
    outgoing.next_attempt_at = None
    outgoing.save(update_fields=[*_ATTEMPT_FIELDS, "status", "gave_up_at"])
    # Operators see it on /staff/mail/ and in mail_backlog(); the owner on the account page.
    logger.warning(
        "Gave up on mail %s (%s) after %s attempts in %s; the last said %s",
        outgoing.pk, outgoing.template, outgoing.attempts, now - failing_since,
        outgoing.last_error,
    )


def _log_failure(outgoing: OutgoingEmail, exc: Exception, *, delay: timedelta,
                 outage_begins: bool) -> None:
    """One warning when the server stops taking mail, not one per message and retry."""
    if outgoing.last_outcome == Outcome.ERROR:
        logger.error("Mail %s (%s) could not be made; retrying in %s", outgoing.pk,
                     outgoing.template, delay, exc_info=exc)
    elif outage_begins:
        logger.warning("The mail server cannot be reached (%s); mail waits and is retried "
                       "until it can", outgoing.last_error)
    else:
        logger.info("Mail %s failed (%s); retrying in %s", outgoing.pk, outgoing.last_error,
                    delay)


def _waiting_for_the_server(
    *, now: datetime | None, but: int | None = None
) -> QuerySet[OutgoingEmail]:
    """Pending mail whose latest attempt could not reach the server (with ``now``: only the
    mail whose next attempt is later than ``now``)."""
    rows = OutgoingEmail.objects.filter(
        status=OutgoingEmail.Status.PENDING, last_outcome=Outcome.UNREACHABLE
    )
    if now is not None:
        rows = rows.filter(next_attempt_at__gt=now)
    return rows.exclude(pk=but) if but is not None else rows


def requeue_mail_waiting_for_the_server() -> int:
    """After a delivery succeeded: every message that waits only because the server could
    not be reached is due now, not at the end of its back-off; return how many.

    Mail the server refused keeps its back-off: the server works, and refused it.
    """
    now = timezone.now()
    waiting = set(_waiting_for_the_server(now=now).values_list("pk", flat=True))
    if not waiting:
        return 0
    with transaction.atomic():
        for chunk in batched(sorted(waiting), 500):
            OutgoingEmail.objects.filter(
                pk__in=chunk, status=OutgoingEmail.Status.PENDING
            ).update(next_attempt_at=now)
        moved = run_deliveries_now(waiting, now=now)
        # A message whose task was lost (a crash): the sweep would find it; send it now.
        enqueue_delivery(sorted(waiting - moved - mail_with_a_task()))
    logger.warning("The mail server takes mail again: %d waiting message(s) queued now",
                   len(waiting))
    return len(waiting)
