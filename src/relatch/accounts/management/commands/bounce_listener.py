"""``relatch bounce_listener``: take bounces (RFC 3464 DSNs) over SMTP at RELATCH_BOUNCE_LISTEN.

``relatch serve`` starts it beside the web server and the worker when the setting is set; run
it yourself where the worker runs on its own. It stops cleanly on TERM or Ctrl-C.
"""

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from relatch.accounts.emails import listener


class Command(BaseCommand):
    help = "Take delivery-status notifications (bounces) over SMTP at RELATCH_BOUNCE_LISTEN."

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Set by TERM or Ctrl-C (or by whoever runs the command in a thread of their own).
        self.stop = threading.Event()

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.BOUNCE_LISTEN is None:
            raise CommandError("Set RELATCH_BOUNCE_LISTEN to the address to listen on "
                               "(e.g. 127.0.0.1:2525).")
        host, port = settings.BOUNCE_LISTEN
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: self.stop.set())

        def ready() -> None:
            self.stdout.write(f"Taking bounces over SMTP at {shown}")
            self.stdout.flush()

        try:
            listener.serve(host, port, stop=self.stop, ready=ready)
        except OSError as exc:
            raise CommandError(f"cannot listen on {shown}: {exc.strerror or exc}") from None
        self.stdout.write("Bounce listener stopped.")
