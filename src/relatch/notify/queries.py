"""What the mail queue holds, for operators (the staff page, a metrics endpoint) and for the
owner of an account (the account page's check-up). Reads only."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min, Q
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import render_to_string
from django.utils import timezone

from relatch.notify.models import DeliveryAttempt, Outcome, OutgoingEmail
from relatch.notify.retries import NOT_SECURITY_MAIL

# How long a given-up security message is shown on its owner's account page.
OWNER_NOTICE_FOR = timedelta(days=30)
STAFF_PAGE_ROWS = 200
STAFF_PAGE_ATTEMPTS = 500


@dataclass(frozen=True)
class MailBacklog:
    """The mail queue in numbers, as a metrics endpoint exposes them (all gauges)."""

    undelivered: int  # pending: not yet accepted by the mail server
    retrying: int  # of those, the ones that failed at least once
    given_up: int  # failed for their whole give-up time; never sent
    oldest_undelivered_at: datetime | None

    def as_metrics(self) -> dict[str, float]:
        """The numbers under the names a Prometheus endpoint would give them."""
        oldest = self.oldest_undelivered_at
        age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
        return {
            "relatch_mail_undelivered": self.undelivered,
            "relatch_mail_retrying": self.retrying,
            "relatch_mail_given_up": self.given_up,
            "relatch_mail_oldest_undelivered_age_seconds": age,
        }


def mail_backlog() -> MailBacklog:
    """How much mail is waiting, retrying and given up (for ``/metrics`` and the staff page)."""
    pending = OutgoingEmail.objects.filter(status=OutgoingEmail.Status.PENDING).aggregate(
        undelivered=Count("pk"), retrying=Count("pk", filter=Q(attempts__gt=0)),
        oldest=Min("created_at"),
    )
    return MailBacklog(
        undelivered=pending["undelivered"],
        retrying=pending["retrying"],
        given_up=OutgoingEmail.objects.filter(status=OutgoingEmail.Status.FAILED).count(),
        oldest_undelivered_at=pending["oldest"],
    )


def subject_of(outgoing: OutgoingEmail) -> str:
    """The message's subject line, made from its stored context (never its secret link); the
    template's name when it cannot be made (a template removed or broken since)."""
    context = {**outgoing.context, "base_url": settings.BASE_URL, "to": outgoing.to}
    try:
        subject = render_to_string(f"notify/mail/{outgoing.template}.subject.txt", context)
    except (TemplateDoesNotExist, TemplateSyntaxError):
        return outgoing.template
    return " ".join(subject.split()) or outgoing.template


@dataclass(frozen=True)
class MailRow:
    """One message on the staff page."""

    id: int
    to: str
    template: str
    subject: str
    security: bool
    status: str
    created_at: datetime
    attempts: int
    last_attempt_at: datetime | None
    last_outcome: str
    last_error: str
    next_attempt_at: datetime | None
    gave_up_at: datetime | None


def _row(outgoing: OutgoingEmail) -> MailRow:
    return MailRow(
        id=outgoing.pk, to=outgoing.to, template=outgoing.template,
        subject=subject_of(outgoing), security=outgoing.template not in NOT_SECURITY_MAIL,
        status=outgoing.get_status_display(), created_at=outgoing.created_at,
        attempts=outgoing.attempts, last_attempt_at=outgoing.last_attempt_at,
        last_outcome=outgoing.get_last_outcome_display(), last_error=outgoing.last_error,
        next_attempt_at=outgoing.next_attempt_at, gave_up_at=outgoing.gave_up_at,
    )


def undelivered_mail(*, limit: int = STAFF_PAGE_ROWS) -> list[MailRow]:
    """Pending mail that failed at least once, the oldest first."""
    rows = OutgoingEmail.objects.filter(status=OutgoingEmail.Status.PENDING, attempts__gt=0)
    return [_row(m) for m in rows.order_by("created_at", "id")[:limit]]


def given_up_mail(*, limit: int = STAFF_PAGE_ROWS) -> list[MailRow]:
    """Mail given up, the latest first."""
    rows = OutgoingEmail.objects.filter(status=OutgoingEmail.Status.FAILED)
    return [_row(m) for m in rows.order_by("-gave_up_at", "-id")[:limit]]


@dataclass(frozen=True)
class AttemptRow:
    attempted_at: datetime
    outcome: str
    sent: bool
    error: str


@dataclass(frozen=True)
class MailDetail:
    """One message and its attempts still kept (the latest STAFF_PAGE_ATTEMPTS), in order."""

    message: MailRow
    attempts: list[AttemptRow]


def mail_detail(*, outgoing_id: int) -> MailDetail | None:
    """The staff page of one message; None when there is no such message."""
    outgoing = OutgoingEmail.objects.filter(pk=outgoing_id).first()
    if outgoing is None:
        return None
    # A message that probed a long outage was tried every minute: its latest attempts.
    latest = DeliveryAttempt.objects.filter(message=outgoing).order_by("-attempted_at", "-id")
    attempts = [
        AttemptRow(a.attempted_at, a.get_outcome_display(), a.outcome == Outcome.SENT, a.error)
        for a in list(latest[:STAFF_PAGE_ATTEMPTS])[::-1]
    ]
    return MailDetail(message=_row(outgoing), attempts=attempts)


@dataclass(frozen=True)
class UndeliveredNotice:
    """A security message that never reached its address, for the owner's account page."""

    to: str
    subject: str
    created_at: datetime
    gave_up_at: datetime


def undelivered_security_mail(
    *, addresses: Mapping[str, datetime | None], limit: int = 10
) -> list[UndeliveredNotice]:
    """Security mail to ``addresses`` given up in the last OWNER_NOTICE_FOR, the latest first.

    ``addresses`` maps each address to the time from which its mail is the asking account's
    (when the account verified it; None: all of it): an address may have been another
    account's before, and that account's mail is not this one's business.
    """
    if not addresses:
        return []
    mine = Q()
    for address, since in addresses.items():
        mine |= Q(to__iexact=address, created_at__gte=since) if since else Q(to__iexact=address)
    rows = (
        OutgoingEmail.objects.filter(
            mine, status=OutgoingEmail.Status.FAILED,
            gave_up_at__gte=timezone.now() - OWNER_NOTICE_FOR,
        )
        .exclude(template__in=NOT_SECURITY_MAIL)
        .order_by("-gave_up_at", "-id")[:limit]
    )
    return [
        UndeliveredNotice(m.to, subject_of(m), m.created_at, m.gave_up_at)
        for m in rows if m.gave_up_at is not None
    ]
