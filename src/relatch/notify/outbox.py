"""The local outbox: without an SMTP server, mail is written to files a browser page can read."""

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
    return part.get_content() if part is not None else ""


def read_message(name: str) -> OutboxMessage | None:
    """One outbox message by file name; names outside the outbox are refused."""
    if "/" in name or "\\" in name or not name.endswith(".eml") or name.startswith("."):
        return None
    path = Path(settings.OUTBOX_DIR) / name
    if not path.is_file():
        return None
    parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(parsed, StdEmailMessage)  # policy.default always builds EmailMessage
    date = parsed.get("Date")
    return OutboxMessage(
        name=name,
        subject=str(parsed.get("Subject", "")),
        to=str(parsed.get("To", "")),
        sent_at=parsedate_to_datetime(date) if date else None,
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
