"""Set-up commands work on a fresh data directory, before ``relatch serve`` ever ran."""

from django.core.management import call_command


def bring_schema_up_to_date() -> None:
    """Apply pending migrations (nothing to do when the schema is current), so an operator's
    first ``relatch demo`` or ``relatch createstaff`` does not stop at "no such table"."""
    call_command("migrate", interactive=False, verbosity=0)
