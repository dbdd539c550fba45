"""The local outbox: without an SMTP server, mail is written to files a browser page can read."""

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage as StdEmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

# Names the backend writes: an allowlist, so no separator, "..", NUL or hidden file gets through.
_MESSAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,100}\.eml")


class OutboxEmailBackend(BaseEmailBackend):
    """Writes each message as an .eml file in the data directory's outbox."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        directory = Path(settings.OUTBOX_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        for message in email_messages:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            name = f"{stamp}-{secrets.token_hex(4)}.eml"
            (directory / name).write_bytes(message.message().as_bytes())
        return len(email_messages)


@dataclass(frozen=True)
class OutboxMessage:
    name: str
    subject: str
    to: str
    sent_at: datetime | None
    text: str
    html: str


def _part(message: StdEmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return ""
    try:
        return str(part.get_content())
    except (LookupError, ValueError):  # an unknown charset or a broken encoding
        return "(this part could not be decoded)"


def _date(value: str | None) -> datetime | None:
    # A file edited by hand may carry any Date; the page shows it without one, not a 500.
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None


def read_message(name: str) -> OutboxMessage | None:
    """One outbox message by file name; names outside the outbox are refused."""
    if not _MESSAGE_NAME.fullmatch(name):
        return None
    path = Path(settings.OUTBOX_DIR) / name
    if not path.is_file():
        return None
    parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(parsed, StdEmailMessage)  # policy.default always builds EmailMessage
    return OutboxMessage(
        name=name,
        subject=str(parsed.get("Subject", "")),
        to=str(parsed.get("To", "")),
        sent_at=_date(parsed.get("Date")),
        text=_part(parsed, "plain"),
        html=_part(parsed, "html"),
    )


def list_messages(limit: int = 200) -> list[OutboxMessage]:
    """The newest messages first."""
    directory = Path(settings.OUTBOX_DIR)
    if not directory.is_dir():
        return []
    names = sorted((p.name for p in directory.glob("*.eml")), reverse=True)[:limit]
    return [m for m in (read_message(n) for n in names) if m is not None]
