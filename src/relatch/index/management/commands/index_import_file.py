"""``relatch index_import_file PATH… --owner USERNAME [--project NAME]``: add existing wheels or
sdists, published as the named account through the upload pipeline."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from relatch.accounts.models import User
from relatch.index.upload.imports import import_distribution
from relatch.index.upload.validation import UploadRefusedError


class Command(BaseCommand):
    help = (
        "Add wheels or sdists from disk to the index, published as --owner: the project and "
        "version come from each file (the project is created when new, owned by --owner). "
        "Files are checked, stored and recorded like uploads."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path, help="wheel or sdist files")
        parser.add_argument("--project", help="display name of the project, if it is new")
        parser.add_argument(
            "--owner", required=True,
            help="username the files are published as (owner of a new project; on an existing "
            "one they need the owner or maintainer role, as for uploads)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
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
            except UploadRefusedError as error:
                raise CommandError(f"{path.name}: {error.message}") from error
            self.stdout.write(f"imported {file.filename} as /files/{file.path}")
