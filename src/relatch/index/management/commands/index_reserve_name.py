"""``relatch index_reserve_name NAME… --owner USERNAME``: keep names from the upstream index."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from relatch.accounts.models import User
from relatch.index.upstream.reserve import ReserveRefusedError, reserve_name


class Command(BaseCommand):
    help = (
        "Reserve project names: each becomes an empty local project owned by --owner, so "
        "the upstream index (RELATCH_UPSTREAM) is never consulted for it, and only its "
        "owners can publish under it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="+", help="project names to reserve")
        parser.add_argument("--owner", required=True, help="username of the projects' owner")

    def handle(self, *args: Any, **options: Any) -> None:
        owner = User.objects.filter(username__iexact=options["owner"]).first()
        if owner is None:
            raise CommandError(f"no account named {options['owner']}")
        for name in options["names"]:
            try:
                project = reserve_name(name=name, owner=owner, by_operator=True)
            except ReserveRefusedError as error:
                raise CommandError(f"{name}: {error.message}") from error
            self.stdout.write(f"reserved {project.name} for {owner.username}")
