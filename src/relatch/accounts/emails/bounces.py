"""Delivery-status notifications (RFC 3464): what a bounce says about an address (issue 17).

A DSN arrives over SMTP (``relatch bounce_listener``, ``listener.py``) or through the signed
webhook (``hooks.py``); both hand its bytes to ``receive_dsn``. The message it is about is
named by the return path it was sent back to (``relatch.notify.verp``), whose token only
Relatch can make; the address is that message's recipient, never an address the DSN's text
names (whoever wrote the text chose it). The DSN's per-recipient fields must still name that
address, as Final-Recipient or as Original-Recipient (the address Relatch gave, when the
receiving side rewrote it through an alias).

- A **hard bounce** (Action: failed, Status 5.x.x) on a verified address marks it "not
  receiving" (``trust.mark_not_receiving``): recorded, told to the other addresses, shown on
  the account page, and no security mail goes to it until it is verified again.
- A **soft bounce** (Status 4.x.x, or Action: delayed) counts: three in 7 days are one hard
  bounce. Each message counts once as soft and once as hard, however often it is reported.
- Every bounce is a ``Bounce`` row. A bounce of a message sent before the address was last
  verified is kept, but marks nothing: the address was shown to work since.

Anything else (no return path, a forged or unknown one, another recipient, a success report,
bytes that are no DSN) is logged and changes nothing.
"""

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from enum import StrEnum

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from relatch.accounts.emails.trust import mark_not_receiving
from relatch.accounts.models import Bounce, Email
from relatch.notify import verp
from relatch.notify.models import OutgoingEmail
from relatch.notify.services import note_bounce

logger = logging.getLogger(__name__)

SOFT_BOUNCES = 3
SOFT_WINDOW = timedelta(days=7)
# Where the address a DSN was sent to may be read when no SMTP envelope came with it: headers
# the receiving mail server adds first, the DSN's To last. Only a genuine token is used.
_RECIPIENT_HEADERS = ("X-Original-To", "Delivered-To", "Envelope-To", "X-Envelope-To", "To")
_STATUS_RE = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?!\d)")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]+")
_DETAIL_LENGTH = 200


class Outcome(StrEnum):
    """What became of one DSN (the webhook answers it; the logs say it)."""

    MARKED = "marked"  # the address is now not receiving
    RECORDED = "recorded"  # a bounce was recorded; the address stays as it was
    REPEATED = "repeated"  # this message's bounce was counted already
    NOT_A_FAILURE = "not a failure"  # delivered, relayed or expanded
    MALFORMED = "malformed"
    NO_RETURN_PATH = "no return path"
    FORGED = "forged return path"
    UNKNOWN_MESSAGE = "unknown message"
    OTHER_RECIPIENT = "other recipient"


@dataclass(frozen=True)
class RecipientReport:
    """One per-recipient block of a delivery-status part (RFC 3464 §2.3)."""

    final_recipient: str
    original_recipient: str
    action: str
    status: str  # "5.1.1"; empty when absent or garbled
    diagnostic: str

    def names(self, address: str) -> bool:
        wanted = address.strip().lower()
        return wanted in {self.final_recipient.lower(), self.original_recipient.lower()}

    @property
    def hard(self) -> bool | None:
        """True for a hard bounce, False for a soft one, None for no failure at all."""
        if self.action == "failed" and self.status.startswith("5."):
            return True
        if self.action == "delayed" or (self.action == "failed" and self.status.startswith("4.")):
            return False
        return None

    @property
    def detail(self) -> str:
        """What the owner is shown: the status and the remote server's own words."""
        diagnostic = self.diagnostic.partition(";")[2].strip() or self.diagnostic
        text = f"{self.status}: {diagnostic}" if diagnostic else self.status
        return text[:_DETAIL_LENGTH]


def receive_dsn(*, raw: bytes, recipients: Sequence[str] = ()) -> str:
    """Act on one delivery-status notification; returns its ``Outcome``.

    ``recipients``: the SMTP envelope's recipients, when it came by SMTP (the return path).
    Never raises for bad input; a DatabaseError (the database is down) does propagate, so the
    sender is told to try again later.
    """
    try:
        return _receive(raw, recipients)
    except DatabaseError:
        raise
    except Exception:  # anything a hostile message could provoke: logged, nothing changed
        logger.warning("Ignored a bounce report that could not be read", exc_info=True)
        return Outcome.MALFORMED


def _receive(raw: bytes, envelope_recipients: Sequence[str]) -> Outcome:
    if len(raw) > settings.BOUNCE_MAX_BYTES:
        logger.warning("Ignored a bounce report of %s bytes: too large", len(raw))
        return Outcome.MALFORMED
    message = message_from_bytes(raw)
    status_part = next(
        (p for p in message.walk() if p.get_content_type() == "message/delivery-status"), None
    )
    blocks = status_part.get_payload() if status_part is not None else None
    if not isinstance(blocks, list) or not blocks:
        logger.warning("Ignored a message that is no delivery-status report (RFC 3464)")
        return Outcome.MALFORMED
    fields = [_fields(block) for block in blocks if isinstance(block, Message)]
    per_message = [f for f in fields if "final-recipient" not in f]
    reports = [_report(f) for f in fields if "final-recipient" in f]
    if not reports:
        logger.warning("Ignored a delivery-status report that names no recipient")
        return Outcome.MALFORMED

    candidates = [
        *envelope_recipients,
        *(str(value) for name in _RECIPIENT_HEADERS for value in message.get_all(name, [])),
        *(value for block in per_message for value in block.values()),
    ]
    outgoing_id = next((i for c in candidates if (i := verp.outgoing_id(c)) is not None), None)
    if outgoing_id is None:
        if any(verp.looks_like_return_path(c) for c in candidates):
            logger.warning("Ignored a bounce report whose return path is forged")
            return Outcome.FORGED
        logger.warning("Ignored a bounce report without a return path of ours")
        return Outcome.NO_RETURN_PATH
    outgoing = OutgoingEmail.objects.filter(pk=outgoing_id).first()
    if outgoing is None:
        logger.warning("Ignored a bounce report for mail %s, which is not kept", outgoing_id)
        return Outcome.UNKNOWN_MESSAGE
    report = next((r for r in reports if r.names(outgoing.to)), None)
    if report is None:
        logger.warning("Ignored a bounce report for mail %s that names another recipient",
                       outgoing_id)
        return Outcome.OTHER_RECIPIENT
    hard = report.hard
    if hard is None:
        if not report.status:
            logger.warning("Ignored a bounce report for mail %s without a valid Status",
                           outgoing_id)
            return Outcome.MALFORMED
        logger.info("Mail %s: a report of %s (%s), not a failure", outgoing_id, report.action,
                    report.status)
        return Outcome.NOT_A_FAILURE
    return _record(outgoing, report, hard=hard)


@transaction.atomic
def _record(outgoing: OutgoingEmail, report: RecipientReport, *, hard: bool) -> Outcome:
    kind = "hard" if hard else "soft"
    if not note_bounce(outgoing_id=outgoing.pk, hard=hard):
        logger.info("Mail %s: a %s bounce reported again; counted once", outgoing.pk, kind)
        return Outcome.REPEATED
    email = (Email.objects.select_related("user").filter(address__iexact=outgoing.to)
             .order_by("-verified", "pk").first())
    now = timezone.now()
    Bounce.objects.create(email=email, address=email.address if email else outgoing.to,
                          hard=hard, status=report.status, diagnostic=report.diagnostic[:500],
                          received_at=now)
    logger.info("Mail %s bounced (%s, %s)", outgoing.pk, kind, report.status)
    if email is None or not email.verified or email.not_receiving_since is not None:
        return Outcome.RECORDED
    verified_at = email.verified_at or now
    if outgoing.created_at < verified_at:
        return Outcome.RECORDED  # sent before the address was last shown to receive mail
    if hard:
        detail = report.detail
    else:
        recent = Bounce.objects.filter(address=email.address, hard=False,
                                       received_at__gte=max(now - SOFT_WINDOW, verified_at))
        count = recent.count()
        if count < SOFT_BOUNCES:
            return Outcome.RECORDED
        detail = f"{count} delayed deliveries in 7 days, the last {report.detail}"
    return Outcome.MARKED if mark_not_receiving(email=email, detail=detail) else Outcome.RECORDED


def _fields(block: Message) -> dict[str, str]:
    """A block's fields, by lower-case name (the first of each), on one line, no controls."""
    found: dict[str, str] = {}
    for name, value in block.items():
        found.setdefault(name.strip().lower(), _one_line(str(value)))
    return found


def _one_line(text: str) -> str:
    return " ".join(_CONTROL_RE.sub(" ", text).split())


def _address(field: str) -> str:
    """The address of an RFC 3464 address field: "rfc822; alice@example.org"."""
    _, _, address = field.rpartition(";")
    return address.strip().strip("<>").strip()


def _report(fields: dict[str, str]) -> RecipientReport:
    status = _STATUS_RE.match(fields.get("status", "").strip())
    return RecipientReport(
        final_recipient=_address(fields.get("final-recipient", "")),
        original_recipient=_address(fields.get("original-recipient", "")),
        action=fields.get("action", "").strip().lower().split(" ")[0],
        status=".".join(status.groups()) if status else "",
        diagnostic=fields.get("diagnostic-code", ""),
    )
