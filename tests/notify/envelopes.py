"""A loopback SMTP server (aiosmtpd) that keeps each message's SMTP envelope: the envelope
sender (MAIL FROM, where bounces go) is not in the message the ``mail`` fixture keeps."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.serving import free_port


@dataclass(frozen=True)
class Delivery:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage


class EnvelopeSink:
    """aiosmtpd handler keeping every delivery with its envelope."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.port = 0

    async def handle_DATA(  # noqa: N802  (the name aiosmtpd calls)
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        raw = bytes(envelope.original_content or envelope.content)
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.deliveries.append(Delivery(envelope.mail_from, list(envelope.rcpt_tos), raw, parsed))
        return "250 OK"

    def to(self, address: str) -> list[Delivery]:
        return [d for d in self.deliveries if address.lower() in (r.lower() for r in d.rcpt_tos)]

    def last(self, address: str) -> Delivery:
        found = self.to(address)
        assert found, f"no mail to {address}; got {[d.rcpt_tos for d in self.deliveries]}"
        return found[-1]


@contextmanager
def envelope_sink() -> Iterator[EnvelopeSink]:
    """An SMTP server on a free loopback port, stopped on the way out."""
    sink = EnvelopeSink()
    sink.port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
