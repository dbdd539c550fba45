"""A wheel's zip framing, checked so that every zip reader sees the same files (issue 20).

A zip names its members twice: in a local header before each member's data, and in the
central directory at the end. Readers differ in which they trust (``zipfile`` and pip read the
central directory; a streaming reader, and uv before CVE-2025-54368, walk the local headers),
and in which of two members with one name wins. An archive built to disagree with itself shows
a reviewer or a scanner one set of files and installs another (PyPI's "wheel archive
confusion" write-up, August 2025). So a wheel is accepted only when it is framed the one
unambiguous way every wheel builder writes it:

- no two members with the same name;
- members back to back from byte 0, each local header agreeing with its central directory
  entry (name, compression, flags' encryption bit, CRC and sizes unless a data descriptor
  follows, and then the descriptor agrees), no bytes hidden between or before them;
- the central directory right after the last member, holding exactly as many entries as the
  end record says, and the end record (with its zip64 records, if any) ending the file: no
  trailing bytes, no second end record;
- member names that are relative paths inside the wheel (no ``/`` start, no ``..``, no ``\\``).

A refusal is an ArchiveError whose text follows "This file is not a valid wheel: ".
"""

import struct
import zipfile
from typing import IO

from relatch.index.upload.archives import ArchiveError

_LOCAL = struct.Struct("<4s5H3L2H")  # a local file header, before its name and extra field
_LOCAL_SIGNATURE = b"PK\x03\x04"
_END = struct.Struct("<4s4H2LH")
_END_SIGNATURE = b"PK\x05\x06"
_LOCATOR = struct.Struct("<4sLQL")
_LOCATOR_SIGNATURE = b"PK\x06\x07"
_END64 = struct.Struct("<4sQ2H2L4Q")
_END64_SIGNATURE = b"PK\x06\x06"
_DESCRIPTOR_SIGNATURE = b"PK\x07\x08"
_FLAG_ENCRYPTED = 0x1
_FLAG_DESCRIPTOR = 0x8
_FLAG_UTF8 = 0x800
_ZIP64_EXTRA = 0x0001
_MAX32 = 0xFFFFFFFF


def check_frames(stream: IO[bytes], archive: zipfile.ZipFile) -> None:
    """Refuse (ArchiveError) a zip whose framing is ambiguous; see the module's docstring."""
    members = archive.infolist()
    check_names(members)
    position = 0
    for member in sorted(members, key=lambda m: m.header_offset):
        if member.header_offset != position and position == 0:
            raise ArchiveError(f"bytes come before its first member, {member.filename}.")
        if member.header_offset != position:
            raise ArchiveError(
                f"the member {member.filename} does not start where the one before it ends: "
                "the archive hides bytes between its members (a member its central "
                "directory does not list?)."
            )
        position = _member_end(stream, member)
    _check_end(stream, archive, position, len(members))


def check_names(members: list[zipfile.ZipInfo]) -> None:
    """No name twice, and every name a relative path inside the wheel."""
    seen: set[str] = set()
    for member in members:
        name = member.filename
        if name in seen:
            raise ArchiveError(
                f"it holds two members named {name}: zip readers disagree on which one is "
                "installed."
            )
        seen.add(name)
        parts = name.split("/")
        if name.startswith("/") or "\\" in name or ".." in parts or "\0" in name:
            raise ArchiveError(f"the member name {name!r} is not a relative path in the wheel.")
        if name.endswith("/") and member.file_size:
            raise ArchiveError(f"the directory entry {name} holds data.")


def _member_end(stream: IO[bytes], member: zipfile.ZipInfo) -> int:
    """Where ``member`` (its local header, data and data descriptor) ends, once its local
    header is found to agree with its central directory entry."""
    stream.seek(member.header_offset)
    header = stream.read(_LOCAL.size)
    if len(header) != _LOCAL.size:
        raise _disagrees(member, "it is cut short")
    (signature, _version, flags, method, _time, _date, crc, compressed, size, name_length,
     extra_length) = _LOCAL.unpack(header)
    if signature != _LOCAL_SIGNATURE:
        raise _disagrees(member, "there is no local header where the entry points")
    raw_name = stream.read(name_length)
    extra = stream.read(extra_length)
    name = raw_name.decode("utf-8" if flags & _FLAG_UTF8 else "cp437", "replace")
    if name != member.orig_filename:
        raise _disagrees(member, f"it names the member {name!r}")
    if method != member.compress_type:
        raise _disagrees(member, "it states another compression method")
    if (flags | member.flag_bits) & _FLAG_ENCRYPTED:
        raise ArchiveError(f"the member {member.filename} is encrypted.")
    data_end = member.header_offset + _LOCAL.size + name_length + extra_length + (
        member.compress_size
    )
    if flags & _FLAG_DESCRIPTOR:
        return data_end + _descriptor_length(stream, member, data_end)
    compressed, size = _zip64_sizes(extra, compressed, size)
    if (crc, compressed, size) != (member.CRC, member.compress_size, member.file_size):
        raise _disagrees(member, "it states another CRC or size")
    return data_end


def _zip64_sizes(extra: bytes, compressed: int, size: int) -> tuple[int, int]:
    """The local header's sizes, from its zip64 extra field where they are 0xFFFFFFFF."""
    if _MAX32 not in (compressed, size):
        return compressed, size
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<2H", extra, at)
        if kind == _ZIP64_EXTRA and length >= 16:
            size, compressed = struct.unpack_from("<2Q", extra, at + 4)
            return compressed, size
        at += 4 + length
    return compressed, size


def _descriptor_length(stream: IO[bytes], member: zipfile.ZipInfo, at: int) -> int:
    """The length of the data descriptor after the member's data, which must state the
    directory's CRC and sizes (with or without its optional signature, 4- or 8-byte sizes)."""
    stream.seek(at)
    data = stream.read(24)
    expected = (member.CRC, member.compress_size, member.file_size)
    for offset in (4, 0) if data[:4] == _DESCRIPTOR_SIGNATURE else (0,):
        for layout, length in (("<3L", 12), ("<L2Q", 20)):
            if len(data) >= offset + length and (
                struct.unpack_from(layout, data, offset) == expected
            ):
                return offset + length
    raise _disagrees(member, "the data descriptor after it states another CRC or size")


def _disagrees(member: zipfile.ZipInfo, what: str) -> ArchiveError:
    return ArchiveError(
        f"the local header of {member.filename} disagrees with its central directory entry: "
        f"{what}."
    )


def _check_end(stream: IO[bytes], archive: zipfile.ZipFile, members_end: int, count: int
               ) -> None:
    """The central directory follows the members; its end records end the file."""
    size = stream.seek(0, 2)
    reach = min(size, _END.size + 0xFFFF)
    stream.seek(size - reach)
    tail = stream.read(reach)
    at = tail.rfind(_END_SIGNATURE)
    if at < 0 or len(tail) - at < _END.size:
        raise ArchiveError("it is not a zip archive.")
    fields = _END.unpack_from(tail, at)
    end_offset = size - reach + at
    if tail.count(_END_SIGNATURE, max(0, members_end - (size - reach))) != 1:
        raise ArchiveError("it has more than one end of central directory record.")
    if at + _END.size + fields[7] != len(tail):
        raise ArchiveError("bytes follow its end of central directory record.")
    if fields[1] or fields[2]:
        raise ArchiveError("it is a multi-disk zip archive.")
    entries, cd_size, cd_offset, records_start = fields[4], fields[5], fields[6], end_offset
    zip64 = _zip64_records(stream, end_offset)
    if zip64 is not None:
        entries, cd_size, cd_offset, records_start = zip64
    if cd_offset != members_end or archive.start_dir != members_end:
        raise ArchiveError(
            "bytes its central directory does not account for (a member it does not list?) "
            "lie between its last member and the directory."
        )
    if cd_offset + cd_size != records_start:
        raise ArchiveError("bytes lie between its central directory and its end record.")
    if entries != count:
        raise ArchiveError(
            f"its end record counts {entries} members where its central directory has {count}."
        )


def _zip64_records(stream: IO[bytes], end_offset: int) -> tuple[int, int, int, int] | None:
    """The zip64 end record's entry count, directory size and offset, and where it starts;
    None when the archive has no zip64 locator right before its end record."""
    if end_offset < _LOCATOR.size:
        return None
    stream.seek(end_offset - _LOCATOR.size)
    signature, disk, record_offset, disks = _LOCATOR.unpack(stream.read(_LOCATOR.size))
    if signature != _LOCATOR_SIGNATURE:
        return None
    if disk or disks > 1:
        raise ArchiveError("it is a multi-disk zip archive.")
    stream.seek(record_offset)
    record = stream.read(_END64.size)
    if len(record) != _END64.size or record[:4] != _END64_SIGNATURE:
        raise ArchiveError("its zip64 locator does not point to a zip64 end record.")
    fields = _END64.unpack(record)
    if record_offset + 12 + fields[1] != end_offset - _LOCATOR.size:
        raise ArchiveError("bytes lie between its zip64 end record and its locator.")
    return fields[7], fields[8], fields[9], record_offset
