"""A wheel checked whole before it is accepted: one reading of it for every installer (issue 20).

Besides its framing (``relatch.index.upload.zip_frames``), a wheel must be what its own
``.dist-info`` says it is:

- exactly one ``.dist-info`` directory, the one its file name names: with two, installers and
  Relatch could read different METADATA (and a hidden ``Requires-Dist`` with it);
- a RECORD that lists every file in the archive with a hash (sha256 or stronger) and size that
  match, and nothing that is not there ("installation will fail if any file in the archive is
  not both mentioned and correctly hashed in RECORD", the wheel specification; PyPI refuses such
  wheels from February 2026). Only RECORD and its signatures are exempt.

Every member is decompressed once to be hashed, in chunks, within the time and decompression
budget of ``relatch.index.upload.archives`` (a zip bomb stops there), and the METADATA bytes
returned are exactly those stored and served (PEP 658).
"""

import base64
import csv
import hashlib
import io
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO

from relatch.index.upload import archives
from relatch.index.upload.archives import ArchiveError
from relatch.index.upload.zip_frames import check_frames

# A RECORD lists every file of the wheel: a few hundred bytes per line, tens of thousands of
# lines for the largest wheels.
MAX_RECORD_SIZE = 32 * 1024 * 1024
# The wheel specification: sha256 or stronger (md5 and sha1 are not permitted).
STRONG_HASHES = frozenset({
    "sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512", "blake2b", "blake2s",
})
_SIGNATURES = ("RECORD.jws", "RECORD.p7s")


@dataclass(frozen=True)
class _Listed:
    algorithm: str
    digest: str
    size: str


def checked_wheel_metadata(stream: IO[bytes], filename: str) -> bytes:
    """The bytes of the wheel's METADATA once the whole wheel is found sound; ArchiveError
    (its text follows "This file is not a valid wheel: ") otherwise."""
    stream.seek(0)
    try:
        with archives.open_zip(stream) as archive:
            check_frames(stream, archive)
            dist_info = _dist_info(archive.infolist(), filename)
            metadata = _member(archive, f"{dist_info}/METADATA", archives.MAX_METADATA_SIZE)
            record = _member(archive, f"{dist_info}/RECORD", MAX_RECORD_SIZE)
            _check_record(archive, dist_info, _parse_record(record, dist_info))
            return metadata
    finally:
        stream.seek(0)


def _dist_info(members: list[zipfile.ZipInfo], filename: str) -> str:
    """The one ``.dist-info`` directory, named as the file is (as spelt inside the wheel)."""
    wanted = "-".join(filename.split("-")[:2]) + ".dist-info"
    found = sorted({
        m.filename.split("/")[0] for m in members
        if "/" in m.filename and m.filename.split("/")[0].lower().endswith(".dist-info")
    })
    if len(found) > 1:
        raise ArchiveError(
            f"it has {len(found)} .dist-info directories ({', '.join(found[:5])}); a wheel has "
            "exactly one, so every installer reads the same METADATA."
        )
    if not found or found[0].lower() != wanted.lower():
        raise ArchiveError(f"it has no {wanted}/METADATA.")
    names = [m.filename.lower() for m in members if m.filename.startswith(found[0] + "/")]
    if len(names) != len(set(names)):
        raise ArchiveError(
            f"its {found[0]} directory holds two members whose names differ only in case."
        )
    return found[0]


def _member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    member = next((m for m in archive.infolist() if m.filename.lower() == name.lower()), None)
    if member is None:
        raise ArchiveError(f"it has no {name}.")
    if member.file_size > limit:
        raise ArchiveError(f"its {name} is larger than {limit // 2**20} MB.")
    try:
        with archive.open(member) as source:
            return source.read(limit)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError,
            zlib.error) as error:
        raise ArchiveError(f"its {name} cannot be read ({error}).") from None


def _parse_record(data: bytes, dist_info: str) -> dict[str, _Listed]:
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error) as error:
        raise ArchiveError(f"its {dist_info}/RECORD cannot be read ({error}).") from None
    listed: dict[str, _Listed] = {}
    for row in rows:
        if not row:
            continue
        if len(row) != 3:
            raise ArchiveError(f"its RECORD has a malformed line: {','.join(row)[:200]!r}.")
        path, hashed, size = row
        if path in listed:
            raise ArchiveError(f"its RECORD lists {path} twice.")
        algorithm, _, digest = hashed.partition("=")
        listed[path] = _Listed(algorithm, digest, size)
    return listed


def _check_record(archive: zipfile.ZipFile, dist_info: str, listed: dict[str, _Listed]) -> None:
    exempt = {f"{dist_info}/RECORD"} | {f"{dist_info}/{name}" for name in _SIGNATURES}
    clock = archives.Clock()
    for member in archive.infolist():
        if member.is_dir() or member.filename in exempt:
            continue
        entry = listed.pop(member.filename, None)
        if entry is None:
            raise ArchiveError(
                f"{member.filename} is in the wheel but not in its RECORD, so installers "
                "cannot check it."
            )
        _check_entry(archive, member, entry, clock)
    missing = sorted(set(listed) - exempt)
    if missing:
        raise ArchiveError(f"its RECORD lists {missing[0]}, which is not in the wheel.")


def _check_entry(archive: zipfile.ZipFile, member: zipfile.ZipInfo, entry: _Listed,
                 clock: archives.Clock) -> None:
    name = member.filename
    if not entry.digest:
        raise ArchiveError(f"its RECORD gives no hash for {name}.")
    if entry.algorithm not in STRONG_HASHES:
        raise ArchiveError(
            f"its RECORD hashes {name} with {entry.algorithm[:20]!r}; use sha256 or stronger."
        )
    if entry.size and entry.size != str(member.file_size):
        raise ArchiveError(
            f"its RECORD says {name} has {entry.size[:20]} bytes; it has {member.file_size}."
        )
    digest = _digest(archive, member, entry.algorithm, clock)
    if base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii") == entry.digest:
        return
    if digest.hex() == entry.digest.lower():
        raise ArchiveError(
            f"its RECORD gives the hash of {name} in hexadecimal; the wheel format writes it "
            "in urlsafe base64 without padding (a bug of the tool that built it)."
        )
    raise ArchiveError(f"the hash of {name} is not the one its RECORD gives.")


def _digest(archive: zipfile.ZipFile, member: zipfile.ZipInfo, algorithm: str,
            clock: archives.Clock) -> bytes:
    """The member's digest, read in chunks within the walk's budget."""
    hasher = hashlib.new(algorithm)
    try:
        with archive.open(member) as source:
            while chunk := source.read(archives.CHUNK):
                clock.spend(len(chunk))
                hasher.update(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError,
            zlib.error) as error:
        raise ArchiveError(f"its member {member.filename} cannot be read ({error}).") from None
    return hasher.digest()
