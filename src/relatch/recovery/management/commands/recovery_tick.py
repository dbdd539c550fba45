"""``relatch recovery_tick``: run one recovery housekeeping pass now and make sure the
background tick is scheduled (idempotent; run it once after installing or upgrading)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from relatch.recovery.housekeeping import run_pass
from relatch.recovery.tasks import ensure_tick_scheduled


class Command(BaseCommand):
    help = "Run one recovery housekeeping pass and schedule the background tick."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--schedule-only", action="store_true",
                            help="Only make sure a tick is queued; do not run a pass now.")

    def handle(self, *args: Any, schedule_only: bool = False, **options: Any) -> None:
        if not schedule_only:
            report = run_pass()
            self.stdout.write(
                f"Waits ended {len(report.waits_ended)}, reminded {len(report.reminded)}, "
                f"closed {len(report.closed)}, branches checked {len(report.branches_checked)}, "
                f"expired {len(report.branches_expired)}, "
                f"unconfirmed deleted {report.unconfirmed_deleted}, "
                f"failures {len(report.failures)}."
            )
        queued = ensure_tick_scheduled()
        self.stdout.write("Queued the next tick." if queued else "A tick is already queued.")
