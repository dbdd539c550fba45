"""``relatch index_import_file PATH… --owner USERNAME [--project NAME]``: add existing wheels or
sdists, published as the named account through the upload pipeline."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from relatch.accounts.models import User
from relatch.index.upload.imports import import_file
from relatch.index.upload.validation import UploadRefusedError


class Command(BaseCommand):
    help = (
        "Add wheels or sdists from disk to the index, published as --owner: the project and "
        "version come from each file (the project is created when new, owned by --owner). "
        "Files are checked, stored and recorded like uploads; a file the index already holds "
        "(same name and sha256) is skipped. Every file is tried; the exit status is non-zero "
        "if any failed."
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
        paths: list[Path] = options["paths"]
        # Every file is tried: one refused file must not leave the rest of a migration undone,
        # and a re-run after a partial import skips what is already there.
        failed = [path for path in paths if not self._import(path, owner, options["project"])]
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(paths)} files failed: "
                + ", ".join(path.name for path in failed)
            )

    def _import(self, path: Path, owner: User, project: str | None) -> bool:
        """Import one file and say what happened; False if it failed."""
        if not path.is_file():
            self.stderr.write(f"failed {path}: no such file")
            return False
        try:
            published = import_file(source=path, project_name=project, owner=owner)
        except UploadRefusedError as error:
            self.stderr.write(f"failed {path.name}: {error.message}")
            return False
        if published.skipped:
            self.stdout.write(f"skipped {path.name}: already there")
        else:
            self.stdout.write(f"imported {published.file.filename} as /files/{published.file.path}")
        return True
