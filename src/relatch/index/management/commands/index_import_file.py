"""``relatch index_import_file PATH… [--project NAME]``: add existing wheels or sdists."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from relatch.accounts.models import User
from relatch.index.simple.imports import ImportRefusedError, import_distribution


class Command(BaseCommand):
    help = (
        "Add wheels or sdists from disk to the index; the project and version come from each "
        "file name (the project is created when new). Files are stored like uploads."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path, help="wheel or sdist files")
        parser.add_argument("--project", help="display name of the project, if it is new")
        parser.add_argument("--owner", help="username to make an owner of the project")

    def handle(self, *args: Any, **options: Any) -> None:
        owner = None
        if options["owner"]:
            owner = User.objects.filter(username__iexact=options["owner"]).first()
            if owner is None:
                raise CommandError(f"no account named {options['owner']}")
        for path in options["paths"]:
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
            try:
                file = import_distribution(
                    source=path, project_name=options["project"], owner=owner
                )
            except ImportRefusedError as error:
                raise CommandError(str(error)) from error
            self.stdout.write(f"imported {file.filename} as /files/{file.path}")
