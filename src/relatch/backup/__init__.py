"""``relatch backup DIR`` and ``relatch restore DIR`` (issue 18): a consistent snapshot of an
index, and the way back from it.

A backup takes the database first — SQLite's online backup API, or ``pg_dump -Fc`` inside an
exported snapshot — and reads the list of distribution files from that snapshot; then it copies
exactly those files from the storage, checking each against the SHA-256 its row records; then
the signing key (mode 0600) and last a manifest. A directory without ``manifest.json`` is not a
backup. Files stored after the snapshot are not copied: their rows are not in it. (Copying the
files first and the database after is how the old manual recipe lost files: rows of uploads that
committed in between pointed at files the copy never had.) An upload stores its file before its
row commits, so every row a snapshot holds has its file in the storage already.

A restore checks the whole backup before it changes anything — the manifest, the key, the
database file, every file against its digest — and refuses a target that holds data unless
``--force``. Then it puts back the signing key, the database and the files, migrates, and checks
that every file the restored database lists is in the storage with its digest.

This package runs before Django is set up (the restore must bring the key back before the
settings would make a new one), so it sits beside ``cli.py``, not among the apps: ``snapshot``
writes a backup, ``restore`` puts one back, ``common`` holds what both need.
"""

import argparse
import sys
from pathlib import Path

from relatch.backup.common import BackupError
from relatch.backup.restore import restore
from relatch.backup.snapshot import backup


def _parser(command: str) -> argparse.ArgumentParser:
    if command == "backup":
        parser = argparse.ArgumentParser(
            prog="relatch backup",
            description="Back up the database (first), the files it lists, the signing key "
                        "and the configuration into DIR, while the index keeps running.")
        parser.add_argument("directory", metavar="DIR", type=Path,
                            help="a new or empty directory")
        return parser
    parser = argparse.ArgumentParser(
        prog="relatch restore",
        description="Restore a backup made by `relatch backup` into this data directory and "
                    "database (both empty), migrate, and check every file.")
    parser.add_argument("directory", metavar="DIR", type=Path, help="the backup directory")
    parser.add_argument("--force", action="store_true",
                        help="overwrite a database and files directory that hold data")
    return parser


def main(argv: list[str]) -> int:
    """``relatch backup DIR`` / ``relatch restore DIR [--force]``; ``argv`` starts with the
    command's name."""
    command = argv[0]
    options = _parser(command).parse_args(argv[1:])
    try:
        if command == "backup":
            backup(options.directory)
        else:
            restore(options.directory, force=options.force)
    except BackupError as error:
        sys.stderr.write(f"relatch {command}: error: {error}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"relatch {command}: interrupted\n")
        return 130
    return 0
