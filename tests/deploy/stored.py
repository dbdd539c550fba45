"""Every stored object against the database's rows: nothing missing, nothing extra, the same
sizes and SHA-256 digests (tests/deploy/test_several_hosts.py).

The rows are read with plain SQL from the deployment's PostgreSQL database; the objects are
listed and read from where the hosts keep them, an S3 bucket (``tests.s3store``) or one shared
files directory, through the same two calls so one comparison covers both.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psycopg

from tests.s3store import S3Store

METADATA = ".metadata"  # PEP 658: a wheel's METADATA beside it (relatch.index.upload.storage)


@dataclass(frozen=True)
class Expected:
    """What one stored object must be: its size (None: not kept in a row) and SHA-256."""

    size: int | None
    sha256: str


class Objects(Protocol):
    def sizes(self) -> dict[str, int]:
        """Every stored object's storage name (File.path, and its .metadata), with its size."""

    def read(self, name: str) -> bytes: ...


@dataclass(frozen=True)
class BucketObjects:
    store: S3Store
    prefix: str  # what RELATCH_FILES_URL names after the bucket

    def sizes(self) -> dict[str, int]:
        under = self.prefix + "/"
        return {key.removeprefix(under): size
                for key, size in self.store.objects(under).items()}

    def read(self, name: str) -> bytes:
        answer = self.store.client().get_object(Bucket=self.store.bucket,
                                                Key=f"{self.prefix}/{name}")
        return bytes(answer["Body"].read())


@dataclass(frozen=True)
class DirectoryObjects:
    root: Path  # RELATCH_FILES_DIR

    def sizes(self) -> dict[str, int]:
        return {str(path.relative_to(self.root)): path.stat().st_size
                for path in self.root.rglob("*") if path.is_file()}

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()


def expected_objects(database_url: str) -> tuple[dict[str, Expected], set[str]]:
    """From the File rows: every object the store must hold, and every file name."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT filename, path, size, sha256_digest, metadata_sha256_digest "
            "FROM index_file").fetchall()
    expected: dict[str, Expected] = {}
    for _filename, path, size, sha256, metadata_sha256 in rows:
        expected[path] = Expected(size, sha256)
        if metadata_sha256:
            expected[path + METADATA] = Expected(None, metadata_sha256)
    return expected, {row[0] for row in rows}


def mismatches(expected: dict[str, Expected], objects: Objects) -> list[str]:
    """What differs between the rows and the store, one line each (empty: they agree)."""
    sizes = objects.sizes()
    found = [f"missing: {name}" for name in sorted(expected.keys() - sizes.keys())]
    found += [f"extra (no row): {name}" for name in sorted(sizes.keys() - expected.keys())]
    for name in sorted(expected.keys() & sizes.keys()):
        want = expected[name]
        if want.size is not None and sizes[name] != want.size:
            found.append(f"size of {name}: {sizes[name]} stored, {want.size} in its row")
            continue
        digest = hashlib.sha256(objects.read(name)).hexdigest()
        if digest != want.sha256:
            found.append(f"sha256 of {name}: {digest} stored, {want.sha256} in its row")
    return found
