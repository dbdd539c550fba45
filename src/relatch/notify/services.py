"""Queueing and delivering mail. Every message has a text and an HTML template."""

import logging
import smtplib
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.module_loading import import_string

from relatch.notify import verp
from relatch.notify.models import OutgoingEmail

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


def enqueue_delivery(ids: Iterable[int], delay: timedelta | None = None) -> None:
    """Queue one delivery task per OutgoingEmail id (after ``delay``, if given)."""
    from relatch.notify.tasks import deliver_email

    task = deliver_email.using(run_after=timezone.now() + delay) if delay else deliver_email
    for outgoing_id in ids:
        task.enqueue(outgoing_id)


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


def retry_delay(attempts: int) -> timedelta:
    """Back off 30 s, 1 min, 2 min … up to an hour between attempts."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def deliver(*, outgoing_id: int) -> OutgoingEmail.Status:
    """Send one queued message; on a transient failure schedule another attempt."""
    outgoing = OutgoingEmail.objects.filter(pk=outgoing_id).first()
    if outgoing is None or outgoing.status != OutgoingEmail.Status.PENDING:
        return OutgoingEmail.Status.SENT if outgoing else OutgoingEmail.Status.FAILED
    outgoing.attempts += 1
    try:
        render_message(outgoing).send()
    except (smtplib.SMTPException, OSError) as exc:
        return _record_failure(outgoing, exc)
    outgoing.status = OutgoingEmail.Status.SENT
    outgoing.sent_at = timezone.now()
    outgoing.last_error = ""
    outgoing.save(update_fields=["attempts", "status", "sent_at", "last_error"])
    return OutgoingEmail.Status.SENT


def note_bounce(*, outgoing_id: int, hard: bool) -> bool:
    """Record that a delivery-status notification said ``outgoing_id`` bounced; False when
    that was known already (a repeated or replayed notice: a message counts once as a soft
    bounce, and once more if it then fails for good)."""
    rows = OutgoingEmail.objects.filter(pk=outgoing_id)
    rows = rows.exclude(bounce=OutgoingEmail.Bounce.HARD) if hard else rows.filter(bounce="")
    kind = OutgoingEmail.Bounce.HARD if hard else OutgoingEmail.Bounce.SOFT
    return rows.update(bounce=kind, bounced_at=timezone.now()) == 1


def _record_failure(outgoing: OutgoingEmail, exc: Exception) -> OutgoingEmail.Status:
    outgoing.last_error = f"{type(exc).__name__}: {exc}"[:500]
    if outgoing.attempts >= settings.EMAIL_MAX_ATTEMPTS:
        outgoing.status = OutgoingEmail.Status.FAILED
        logger.error("Giving up on mail %s after %s attempts", outgoing.pk, outgoing.attempts)
    outgoing.save(update_fields=["attempts", "status", "last_error"])
    if outgoing.status == OutgoingEmail.Status.PENDING:
        logger.warning("Mail %s failed (%s); retrying", outgoing.pk, outgoing.last_error)
        enqueue_delivery([outgoing.pk], delay=retry_delay(outgoing.attempts))
    return OutgoingEmail.Status(outgoing.status)
