"""The SMTP listener for delivery-status notifications (``relatch bounce_listener``).

The operator's mail server hands it the mail that comes back to ``bounces+…@`` addresses
(docs/operations.md, "Bounces"); each message goes to ``bounces.receive_dsn`` with its
envelope recipients, which carry the return path. It answers 250 to everything it could read
or judge (a forged report is logged, not bounced back: a DSN's own sender is empty), and 451
when the database is down, so the mail server tries again later.

aiosmtpd serves SMTP on an asyncio loop; the database work runs in a thread beside it (Django's
database calls are synchronous), one message at a time.
"""

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from aiosmtpd.smtp import SMTP, Envelope, Session
from django.conf import settings
from django.db import DatabaseError, connections

from relatch.accounts.emails.bounces import receive_dsn

logger = logging.getLogger(__name__)

# An SMTP client that stalls is dropped after this many seconds.
CLIENT_TIMEOUT = 60
# On stop, connections still talking get this long to finish.
STOP_GRACE = 10


class BounceHandler:
    """aiosmtpd handler: every message it receives is a candidate DSN."""

    def __init__(self) -> None:
        self._one_at_a_time = asyncio.Lock()

    async def handle_DATA(  # noqa: N802  (the name aiosmtpd calls)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        recipients = [str(r) for r in envelope.rcpt_tos]
        try:
            async with self._one_at_a_time:
                outcome = await asyncio.to_thread(_receive, raw, recipients)
        except DatabaseError:
            logger.exception("Could not record a bounce report; the sender will retry")
            return "451 4.3.0 Cannot take it now; try again later"
        return f"250 2.0.0 Received ({outcome})"


def _receive(raw: bytes, recipients: list[str]) -> str:
    try:
        return receive_dsn(raw=raw, recipients=recipients)
    finally:
        connections.close_all()  # this thread's connection: none is left open between messages


def serve(host: str, port: int, *, stop: threading.Event,
          ready: Callable[[], Any] | None = None) -> None:
    """Take DSNs over SMTP on ``host``:``port`` until ``stop`` is set; ``ready`` is called
    once the port accepts connections. Raises OSError when the port cannot be bound."""
    asyncio.run(_serve(host, port, stop=stop, ready=ready))


async def _serve(host: str, port: int, *, stop: threading.Event,
                 ready: Callable[[], Any] | None) -> None:
    loop = asyncio.get_running_loop()
    handler = BounceHandler()
    name = urlsplit(settings.BASE_URL).hostname or "relatch"
    server = await loop.create_server(
        lambda: SMTP(handler, hostname=name, ident="Relatch bounce listener",
                     data_size_limit=settings.BOUNCE_MAX_BYTES, enable_SMTPUTF8=True,
                     timeout=CLIENT_TIMEOUT, loop=loop),
        host=host, port=port,
    )
    if ready is not None:
        ready()
    try:
        await asyncio.to_thread(stop.wait)
    finally:
        server.close()
        try:
            await asyncio.wait_for(server.wait_closed(), timeout=STOP_GRACE)
        except TimeoutError:
            logger.warning("Stopped the bounce listener with connections still open")
