"""``relatch migrate``: Django's ``migrate`` under the database's migration lock, so two
hosts starting at once wait for each other (relatch.web.migration_lock)."""

from typing import Any

from django.core.management.commands import migrate

from relatch.web.migration_lock import migration_lock


class Command(migrate.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        def waiting() -> None:
            self.stderr.write("Another process is migrating this database; waiting for it to "
                              "finish.")

        with migration_lock(alias=options["database"], waiting=waiting):
            super().handle(*args, **options)
