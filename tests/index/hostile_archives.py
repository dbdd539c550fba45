"""Archives built to hurt the reader of an upload (issue 18 §6), made in memory, small on the
wire: a tar header claiming (and holding) hundreds of megabytes of zeros compresses to a few
hundred kilobytes, the way the load tests' 1 MB sdist made a worker take 1.2 GB."""

import base64
import hashlib
import io
import struct
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

MB = 1024 * 1024
PKG_INFO = b"Metadata-Version: 2.1\nName: sample-pkg\nVersion: 1.0\n"
ROOT = "sample_pkg-1.0"


def gzip_stream(parts: Iterable[bytes]) -> bytes:
    """``parts`` gzip-compressed as they come (nothing large is ever held)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    out = [compressor.compress(part) for part in parts]
    out.append(compressor.flush())
    return b"".join(out)


def tar_header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type = size, kind
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")


def zeros(count: int, fill: bytes = b"\0") -> Iterator[bytes]:
    """``count`` bytes of ``fill`` in 1 MB pieces."""
    piece = fill * MB
    while count > 0:
        yield piece[:count]
        count -= MB


def padding(size: int) -> bytes:
    return bytes(-size % 512)


def member(name: str, data: bytes) -> bytes:
    return tar_header(name, len(data)) + data + padding(len(data))


def end_of_archive() -> bytes:
    return bytes(1024)


def pax_bomb(size: int) -> bytes:
    """A .tar.gz whose first member's pax extended header is ``size`` bytes: one well-formed
    record, ``<length> comment=000…\\n``, then a sound PKG-INFO member."""
    head = f"{size} comment=".encode()  # the record's length counts its own digits
    parts = [tar_header("././@PaxHeader", size, tarfile.XHDTYPE), head,
             *zeros(size - len(head) - 1, b"0"), b"\n", padding(size),
             member(f"{ROOT}/PKG-INFO", PKG_INFO), end_of_archive()]
    return gzip_stream(parts)


def long_name_bomb(size: int) -> bytes:
    """A .tar.gz whose first member has a GNU long name of ``size`` bytes."""
    parts = [tar_header("././@LongLink", size, tarfile.GNUTYPE_LONGNAME), *zeros(size, b"a"),
             padding(size), member(f"{ROOT}/x.py", b"x = 1\n"),
             member(f"{ROOT}/PKG-INFO", PKG_INFO), end_of_archive()]
    return gzip_stream(parts)


def gzip_bomb(size: int) -> bytes:
    """A .tar.gz with a PKG-INFO, then one member of ``size`` bytes of zeros."""
    parts = [member(f"{ROOT}/PKG-INFO", PKG_INFO), tar_header(f"{ROOT}/data.bin", size),
             *zeros(size), padding(size), end_of_archive()]
    return gzip_stream(parts)


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_of_many(count: int) -> bytes:
    """A zip sdist with a PKG-INFO and ``count`` empty members (stored: quick to write)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{ROOT}/PKG-INFO", PKG_INFO)
        for number in range(count):
            archive.writestr(f"{ROOT}/m/{number}", b"")
    return buffer.getvalue()


def wheel_with_metadata(metadata: bytes) -> bytes:
    info = "sample_pkg-1.0.dist-info"
    return zip_of({"sample_pkg/__init__.py": b"", f"{info}/METADATA": metadata,
                   f"{info}/WHEEL": b"Wheel-Version: 1.0\n"})


def wheel_lying_about_metadata(inflated: int, claimed: int = 1000) -> bytes:
    """A wheel whose METADATA inflates to ``inflated`` bytes while the zip's headers (local
    and central) say ``claimed``: a reader trusting the headers' size is stopped by them, one
    that reads to the end of the deflate stream inflates it all."""
    data = bytearray(wheel_with_metadata(bytes(inflated)))
    name = b"sample_pkg-1.0.dist-info/METADATA"
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(signature)
        while at >= 0:
            header_end = at + (30 if signature == b"PK\x03\x04" else 46)
            if data[header_end:header_end + len(name)] == name:
                struct.pack_into("<L", data, at + size_at, claimed)
            at = data.find(signature, at + 4)
    return bytes(data)


# --- wheels built to be read two ways (issue 20: PyPI's "wheel archive confusion") ----------

INFO = "sample_pkg-1.0.dist-info"
_LOCAL_SIZE, _CENTRAL_SIZE = 30, 46


def record_line(path: str, data: bytes, algorithm: str = "sha256") -> str:
    digest = base64.urlsafe_b64encode(hashlib.new(algorithm, data).digest()).rstrip(b"=")
    return f"{path},{algorithm}={digest.decode()},{len(data)}"


def wheel_of(members: list[tuple[str, bytes]], *, record: list[str] | None = None,
             compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of ``members`` in order (a name may come twice), then ``{INFO}/RECORD``: the
    lines given, or by default one right line per member (the last of a repeated name)."""
    lines = record if record is not None else [
        record_line(name, data) for name, data in dict(members).items()]
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", compression) as archive:
        warnings.simplefilter("ignore")  # "Duplicate name": that is the point
        for name, data in members:
            archive.writestr(name, data)
        archive.writestr(f"{INFO}/RECORD", "\n".join([*lines, f"{INFO}/RECORD,,"]) + "\n")
    return buffer.getvalue()


def sound_members(metadata: bytes, module: bytes = b"VALUE = 42\n") -> list[tuple[str, bytes]]:
    return [("sample_pkg/__init__.py", module), (f"{INFO}/METADATA", metadata),
            (f"{INFO}/WHEEL", b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")]


def streamed_wheel(members: list[tuple[str, bytes]]) -> bytes:
    """A wheel written to a stream that cannot seek: every member has a data descriptor."""

    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            self.data += bytes(b)
            return len(b)

    sink = Unseekable()
    lines = [record_line(name, data) for name, data in members]
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in [*members, (f"{INFO}/RECORD",
                                      ("\n".join([*lines, f"{INFO}/RECORD,,"]) + "\n").encode())]:
            with archive.open(name, "w", force_zip64=name.endswith("WHEEL")) as target:
                target.write(data)
    return bytes(sink.data)


def _headers(data: bytes, signature: bytes, fixed: int, name: str) -> list[int]:
    """Where the headers with ``signature`` for member ``name`` start."""
    found, at, raw = [], data.find(signature), name.encode()
    while at >= 0:
        if data[at + fixed:at + fixed + len(raw)] == raw:
            found.append(at)
        at = data.find(signature, at + 4)
    return found


def patch_local(data: bytes, name: str, offset: int, fmt: str, value: int) -> bytes:
    """The local header of ``name`` with one field (at ``offset``) changed."""
    patched = bytearray(data)
    struct.pack_into(fmt, patched, _headers(data, b"PK\x03\x04", _LOCAL_SIZE, name)[0] + offset,
                     value)
    return bytes(patched)


def rename_local(data: bytes, name: str, other: str) -> bytes:
    """The local header of ``name`` naming ``other`` (same length) instead."""
    assert len(name) == len(other)
    at = _headers(data, b"PK\x03\x04", _LOCAL_SIZE, name)[0] + _LOCAL_SIZE
    return data[:at] + other.encode() + data[at + len(name):]


def without_central_entry(data: bytes, name: str) -> bytes:
    """``name`` left in the archive (its local header and data) but dropped from the central
    directory: a streaming reader installs it, zipfile never sees it."""
    end = data.rfind(b"PK\x05\x06")
    fields = list(struct.unpack_from("<4s4H2LH", data, end))
    start = fields[6]
    entry = _headers(data, b"PK\x01\x02", _CENTRAL_SIZE, name)[0]
    name_length, extra_length, comment_length = struct.unpack_from("<3H", data, entry + 28)
    entry_end = entry + _CENTRAL_SIZE + name_length + extra_length + comment_length
    fields[3] -= 1
    fields[4] -= 1
    fields[5] -= entry_end - entry
    directory = data[start:entry] + data[entry_end:end]
    return data[:start] + directory + struct.pack("<4s4H2LH", *fields) + data[end + 22:]
