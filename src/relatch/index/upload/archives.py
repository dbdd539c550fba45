"""Reading a distribution's archive with bounded memory and time (issue 18 §6).

An upload is read to find its core metadata: a wheel's ``<name>-<version>.dist-info/METADATA``
(a zip member), an sdist's ``<name>-<version>/PKG-INFO`` (a member of a .tar.gz, or of a .zip in
old sdists). The standard library's readers are not used unguarded on what a stranger sent:

- ``tarfile`` reads a pax header or a GNU long name of whatever size the archive claims into
  memory (1 MB of gzip inflates to a 1 GB "header"), and keeps an object for every member.
  Here a .tar.gz is walked one 512-byte header at a time through a streaming gzip reader, an
  extended header larger than ``MAX_HEADER_SIZE`` is refused before it is read, member data is
  read and dropped in chunks, and only the name of the member being read is kept.
- ``zipfile`` reads the whole central directory and makes an object for each entry. Here the
  end-of-central-directory record is read first and the directory's entries are counted in a
  streaming pass; only an archive within ``MAX_MEMBERS`` and ``MAX_CENTRAL_DIRECTORY`` is then
  opened with ``zipfile``, and the one member wanted is read at most ``MAX_METADATA_SIZE``
  bytes (zipfile stops at the size the directory states and checks the CRC, so a member that
  inflates to more is refused without being inflated).

Every walk also stops after ``MAX_UNPACKED`` decompressed bytes and ``READ_SECONDS`` seconds.
A refusal is an ArchiveError whose text ends "This file is not a valid sdist: …".
"""

import gzip
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

MAX_MEMBERS = 50_000
# A pax extended header or a GNU long name: a path needs a few hundred bytes, never this.
MAX_HEADER_SIZE = 64 * 1024
# PKG-INFO and METADATA are read into memory (and METADATA is stored, PEP 658).
MAX_METADATA_SIZE = 4 * 1024 * 1024
# Decompressed bytes a .tar.gz may take to walk (a gzip bomb stops here).
MAX_UNPACKED = 2 * 1024 * 1024 * 1024
MAX_CENTRAL_DIRECTORY = 16 * 1024 * 1024
READ_SECONDS = 30.0

BLOCK = 512
CHUNK = 64 * 1024
PKG_INFO = "PKG-INFO"


class ArchiveError(Exception):
    """The archive is refused; ``reason`` says why, to follow "This file is not a valid …: "."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def sdist_metadata(stream: IO[bytes], filename: str) -> bytes:
    """The bytes of the sdist's top-level ``<dir>/PKG-INFO``; ArchiveError if the archive is
    not a sound sdist within the limits. Reads a .tar.gz to its end (every member counted)."""
    stream.seek(0)
    try:
        if filename.endswith(".zip"):
            with open_zip(stream) as archive:
                found = next((i for i in archive.infolist() if _is_pkg_info(i.filename)), None)
                data = None if found is None else read_zip_member(archive, found, PKG_INFO)
        else:
            data = _TarWalk(stream).pkg_info()
    finally:
        stream.seek(0)
    if data is None:
        raise ArchiveError(
            "it has no PKG-INFO in its top directory (<name>-<version>/PKG-INFO), which every "
            "sdist has."
        )
    return data


def wheel_member(stream: IO[bytes], wanted: str) -> bytes:
    """The bytes of the wheel's member ``wanted`` (matched ignoring case), read bounded;
    ArchiveError if the wheel is not a sound zip within the limits or has no such member."""
    stream.seek(0)
    try:
        with open_zip(stream) as archive:
            lowered = wanted.lower()
            found = next((i for i in archive.infolist() if i.filename.lower() == lowered), None)
            if found is None:
                raise ArchiveError(f"it has no {wanted}.")
            return read_zip_member(archive, found, wanted)
    finally:
        stream.seek(0)


def _is_pkg_info(name: str) -> bool:
    parts = name.removeprefix("./").split("/")
    return len(parts) == 2 and parts[0] not in {"", ".", ".."} and parts[1] == PKG_INFO


def _too_large(what: str) -> ArchiveError:
    return ArchiveError(f"its {what} is larger than {MAX_METADATA_SIZE // 2**20} MB.")


class Clock:
    """The time and decompression budget of one walk."""

    def __init__(self) -> None:
        self.deadline = time.monotonic() + READ_SECONDS
        self.unpacked = 0

    def spend(self, count: int) -> None:
        self.unpacked += count
        if self.unpacked > MAX_UNPACKED:
            raise ArchiveError(f"it unpacks to more than {MAX_UNPACKED // 2**20} MB.")
        if time.monotonic() > self.deadline:
            raise ArchiveError(f"it could not be read within {READ_SECONDS:.0f} seconds.")


# --- .tar.gz ----------------------------------------------------------------------------------

# Types whose data follows the header (as tarfile reads them): regular files, and any type it
# does not know. Directories, links and devices carry no data whatever their size field says.
_TYPES_WITHOUT_DATA = frozenset(b"123456")
_PAX_TYPES = frozenset(b"xgX")
_GNU_LONG_TYPES = frozenset(b"LK")
_GNU_SPARSE = ord("S")


@dataclass
class _Header:
    name: str
    size: int
    kind: int  # the type flag's byte

    @property
    def has_data(self) -> bool:
        return self.kind not in _TYPES_WITHOUT_DATA

    @property
    def is_regular(self) -> bool:
        return self.kind in b"07\0"


class _TarWalk:
    """One pass over a .tar.gz, header by header, within the limits."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.gzip = gzip.GzipFile(fileobj=stream, mode="rb")
        self.clock = Clock()

    def pkg_info(self) -> bytes | None:
        found: bytes | None = None
        try:
            for count, header in enumerate(self._members(), start=1):
                if count > MAX_MEMBERS:
                    raise ArchiveError(f"it has more than {MAX_MEMBERS} members.")
                if found is None and header.is_regular and _is_pkg_info(header.name):
                    if header.size > MAX_METADATA_SIZE:
                        raise _too_large(PKG_INFO)
                    found = self._read(header.size)
                    self._skip(_padding(header.size))
                elif header.has_data:
                    self._skip(_padded(header.size))
        except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
            raise ArchiveError(f"it is not a readable .tar.gz archive ({error}).") from None
        return found

    def _members(self) -> Iterator[_Header]:
        """The archive's members, with pax and GNU long names applied; extended headers
        are read (bounded) and not yielded."""
        long_name: str | None = None
        pax: dict[str, str] = {}
        while True:
            block = self._read(BLOCK, at_end_ok=True)
            if not block or block == bytes(BLOCK):
                return  # the end-of-archive marker (or a clean end of the stream)
            header = _parse_header(block)
            if header.kind in _PAX_TYPES or header.kind in _GNU_LONG_TYPES:
                data = self._extended(header)
                if header.kind == ord("x") or header.kind == ord("X"):
                    pax = _pax_records(data)
                elif header.kind == ord("L"):
                    long_name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                continue
            if header.kind == _GNU_SPARSE:
                raise ArchiveError("it has a sparse member, which no sdist has.")
            if long_name is not None:
                header.name = long_name
            if "path" in pax:
                header.name = pax["path"]
            if "size" in pax:
                header.size = _pax_size(pax["size"])
            long_name, pax = None, {}
            yield header

    def _extended(self, header: _Header) -> bytes:
        if header.size > MAX_HEADER_SIZE:
            kind = "pax" if header.kind in _PAX_TYPES else "long-name"
            raise ArchiveError(
                f"a member has a {kind} header of {header.size} bytes; at most "
                f"{MAX_HEADER_SIZE} are accepted."
            )
        data = self._read(header.size)
        self._skip(_padding(header.size))
        return data

    def _read(self, count: int, *, at_end_ok: bool = False) -> bytes:
        parts: list[bytes] = []
        left = count
        while left:
            part = self.gzip.read(min(left, CHUNK))
            if not part:
                if at_end_ok and left == count:
                    return b""
                raise ArchiveError("it ends in the middle of a member: the file is cut short.")
            self.clock.spend(len(part))
            parts.append(part)
            left -= len(part)
        return b"".join(parts)

    def _skip(self, count: int) -> None:
        while count:
            count -= len(self._read(min(count, CHUNK)))


def _padded(size: int) -> int:
    return size + _padding(size)


def _padding(size: int) -> int:
    return -size % BLOCK


def _parse_header(block: bytes) -> _Header:
    if not _checksum_matches(block):
        raise ArchiveError("a member's header is damaged (its checksum is wrong).")
    name = _text(block[0:100])
    if block[257:263] == b"ustar\0" and block[345] != 0:  # POSIX ustar: a prefix before the name
        name = _text(block[345:500]) + "/" + name
    size = _number(block[124:136])
    if size < 0:
        raise ArchiveError("a member's header is damaged (a negative size).")
    return _Header(name=name, size=size, kind=block[156])


def _checksum_matches(block: bytes) -> bool:
    """The header's sum with its own checksum field counted as spaces, unsigned (or signed,
    as some old writers computed it), is the checksum it states."""
    stated = _number(block[148:156])
    if stated == sum(block[:148]) + 8 * 0x20 + sum(block[156:]):
        return True
    signed = struct.unpack("148b", block[:148]) + struct.unpack("356b", block[156:])
    return stated == sum(signed) + 8 * 0x20


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _number(field: bytes) -> int:
    """A numeric header field: octal text, or GNU's base-256 (first byte 0x80 or 0xff)."""
    if field[0] in (0x80, 0xFF):
        value = int.from_bytes(field[1:], "big")
        return value - 256 ** (len(field) - 1) if field[0] == 0xFF else value
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text or b"0", 8)
    except ValueError:
        raise ArchiveError("a member's header is damaged (a number is not octal).") from None


def _pax_records(data: bytes) -> dict[str, str]:
    """The records of a pax extended header: ``"<length> <key>=<value>\\n"`` each."""
    records: dict[str, str] = {}
    position = 0
    while position < len(data) and data[position] != 0:
        length_text, space, _ = data[position:position + 20].partition(b" ")
        if not space or not length_text.isdigit():
            raise ArchiveError("a pax header is malformed.")
        length = int(length_text)
        record = data[position:position + length]
        if length <= len(length_text) + 1 or len(record) != length or not record.endswith(b"\n"):
            raise ArchiveError("a pax header is malformed.")
        key, equals, value = record[len(length_text) + 1:-1].partition(b"=")
        if not equals:
            raise ArchiveError("a pax header is malformed.")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        position += length
    return records


def _pax_size(text: str) -> int:
    if not text.isdigit():
        raise ArchiveError("a pax header is malformed (its size is not a number).")
    return int(text)


# --- zip --------------------------------------------------------------------------------------

_END = struct.Struct("<4s4H2LH")  # end of central directory
_END_SIGNATURE = b"PK\x05\x06"
_LOCATOR = struct.Struct("<4sLQL")  # zip64 end of central directory locator
_END64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory
_ENTRY = struct.Struct("<4s6H3L5H2L")  # a central directory entry, before its name
_ENTRY_SIGNATURE = b"PK\x01\x02"


def open_zip(stream: IO[bytes]) -> zipfile.ZipFile:
    start, size = _central_directory(stream)
    _count_entries(stream, start, size)
    try:
        return zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise ArchiveError(f"it is not a readable zip archive ({error}).") from None


def read_zip_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, what: str) -> bytes:
    if member.file_size > MAX_METADATA_SIZE:
        raise _too_large(what)
    try:
        with archive.open(member) as source:
            data = source.read(MAX_METADATA_SIZE + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError,
            zlib.error) as error:
        raise ArchiveError(f"its {what} cannot be read ({error}).") from None
    if len(data) > MAX_METADATA_SIZE:
        raise _too_large(what)
    return data


def _central_directory(stream: IO[bytes]) -> tuple[int, int]:
    """Where the central directory starts and its size, from the end record (as zipfile
    finds it: at the very end, else the last signature within a comment's reach)."""
    size = stream.seek(0, 2)
    reach = min(size, _END.size + 0xFFFF)
    stream.seek(size - reach)
    tail = stream.read(reach)
    at = len(tail) - _END.size if tail[-_END.size:][:4] == _END_SIGNATURE else (
        tail.rfind(_END_SIGNATURE)
    )
    if at < 0 or len(tail) - at < _END.size:
        raise ArchiveError("it is not a zip archive.")
    end_offset = size - reach + at
    _sig, _disk, _cd_disk, _here, entries, cd_size, cd_offset, _comment = _END.unpack_from(
        tail, at
    )
    if entries == 0xFFFF or 0xFFFFFFFF in (cd_size, cd_offset):
        end_offset, entries, cd_size = _zip64_end(stream, end_offset)
    if entries > MAX_MEMBERS:
        raise ArchiveError(f"it has more than {MAX_MEMBERS} members.")
    if cd_size > MAX_CENTRAL_DIRECTORY:
        raise ArchiveError(
            f"its central directory is larger than {MAX_CENTRAL_DIRECTORY // 2**20} MB."
        )
    start = end_offset - cd_size
    if start < 0:
        raise ArchiveError("it is not a zip archive (its central directory is misplaced).")
    return start, cd_size


def _zip64_end(stream: IO[bytes], end_offset: int) -> tuple[int, int, int]:
    """The zip64 end record's place, entry count and directory size."""
    if end_offset < _LOCATOR.size:
        raise ArchiveError("it is not a zip archive (its zip64 locator is missing).")
    stream.seek(end_offset - _LOCATOR.size)
    signature, _disk, offset, _disks = _LOCATOR.unpack(stream.read(_LOCATOR.size))
    if signature != b"PK\x06\x07":
        raise ArchiveError("it is not a zip archive (its zip64 locator is missing).")
    # zipfile reads the zip64 record just before the locator; so does this.
    at = end_offset - _LOCATOR.size - _END64.size
    if at < 0:
        raise ArchiveError("it is not a zip archive (its zip64 end record is missing).")
    stream.seek(at)
    record = stream.read(_END64.size)
    fields = _END64.unpack(record)
    if fields[0] != b"PK\x06\x06":
        raise ArchiveError("it is not a zip archive (its zip64 end record is missing).")
    return at, fields[7], fields[8]


def _count_entries(stream: IO[bytes], start: int, size: int) -> None:
    """Walk the central directory's entries without keeping them: at most MAX_MEMBERS."""
    stream.seek(start)
    position, count = 0, 0
    while position + _ENTRY.size <= size:
        fields = _ENTRY.unpack(stream.read(_ENTRY.size))
        if fields[0] != _ENTRY_SIGNATURE:
            break  # zipfile decides what the rest is
        count += 1
        if count > MAX_MEMBERS:
            raise ArchiveError(f"it has more than {MAX_MEMBERS} members.")
        name_length, extra_length, comment_length = fields[10], fields[11], fields[12]
        skip = name_length + extra_length + comment_length
        stream.seek(skip, 1)
        position += _ENTRY.size + skip
