"""``relatch sweep_orphan_files [--dry-run] [--older-than-hours N]``: remove stored files that
no File row references (left by an upload killed between storing its file and committing)."""

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from relatch.index.upload.sweep import DEFAULT_MIN_AGE, SweepResult, added, sweep_orphan_files
from relatch.index.upstream.sweep import sweep_upstream_orphans

DEFAULT_HOURS = int(DEFAULT_MIN_AGE / timedelta(hours=1))


class Command(BaseCommand):
    help = (
        "Remove files under packages/ and upstream/ in storage that no file row references "
        "and that are older than the limit (with their .metadata). The worker does this once "
        "a day."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true",
                            help="list what would be removed; remove nothing")
        parser.add_argument("--older-than-hours", type=int, default=DEFAULT_HOURS,
                            help=f"only files modified this long ago (default {DEFAULT_HOURS})")

    def handle(self, *args: Any, **options: Any) -> None:
        hours, dry_run = options["older_than_hours"], options["dry_run"]
        if hours < 1:
            # A younger file may be an upload in flight: saved, its row not yet committed.
            raise CommandError("--older-than-hours must be at least 1: a newer file may "
                               "belong to an upload that has not committed yet.")
        verb = "would remove" if dry_run else "removed"
        sweep = {"older_than": timedelta(hours=hours), "dry_run": dry_run,
                 "on_orphan": lambda name, size: self.stdout.write(f"{verb} {name} ({size} bytes)")}
        result = added(sweep_orphan_files(**sweep), sweep_upstream_orphans(**sweep))
        self.stdout.write(summary(result, hours=hours))


def summary(result: SweepResult, *, hours: int) -> str:
    orphans = f"{_count(result.removed, 'orphan file')} ({result.removed_bytes} bytes)"
    if result.dry_run:
        done = f"Dry run: would remove {orphans}; nothing was removed."
    else:
        done = (f"Removed {orphans} and "
                f"{_count(result.directories_removed, 'empty directory')}.")
    return (f"{done} Scanned {_count(result.scanned, 'file')}; {result.too_recent} newer "
            f"than {hours} hours left alone.")


def _count(count: int, noun: str) -> str:
    if count == 1:
        return f"1 {noun}"
    return f"{count} {noun[:-1]}ies" if noun.endswith("y") else f"{count} {noun}s"
