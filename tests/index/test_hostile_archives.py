"""Hostile archives are refused without costing the server memory (issue 18 §6).

A 1 MB sdist made a worker take 1.2 GB: ``tarfile`` reads a pax header or a GNU long name of
whatever size the archive states into memory, and ``zipfile`` makes an object for every entry
of a central directory. Each archive here is a few hundred kilobytes on the wire; reading it
(``relatch.index.upload.archives``, measured with tracemalloc) must stay under PEAK_LIMIT, and
the upload is answered 400 with a message saying what is wrong. Ordinary sdists (.tar.gz in
the ustar, pax and GNU formats, and .zip) still pass.
"""

import hashlib
import io
import tarfile
import tracemalloc
import zipfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from django.test import Client

from relatch.accounts.models import User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import File
from relatch.index.upload import archives
from tests.index import hostile_archives as hostile
from tests.index.dists import Dist, build_sdist, build_wheel
from tests.index.test_upload import nothing_changed, post, refused_with, token_for
from tests.index.uploading import create_uploader, upload
from tests.serving import running_server

MB = hostile.MB
PEAK_LIMIT = 20 * MB
SDIST = "sample_pkg-1.0.tar.gz"
ZIP_SDIST = "sample_pkg-1.0.zip"
WHEEL = "sample_pkg-1.0-py3-none-any.whl"
METADATA = "sample_pkg-1.0.dist-info/METADATA"
# The gzip bomb: the limit is lowered so the test inflates 64 MB, not 2 GB (the same code path;
# only the number differs).
BOMB_LIMIT = 40 * MB


@cache
def built(name: str) -> bytes:
    """Each hostile archive, built once per run."""
    makers: dict[str, Callable[[], bytes]] = {
        "pax": lambda: hostile.pax_bomb(200 * MB),
        "long-name": lambda: hostile.long_name_bomb(200 * MB),
        "gzip": lambda: hostile.gzip_bomb(64 * MB),
        "tar-members": lambda: hostile.gzip_stream(
            [hostile.member(f"{hostile.ROOT}/m/{n}", b"") for n in range(50_001)]
            + [hostile.end_of_archive()]),
        "zip-members": lambda: hostile.zip_of_many(100_000),
        "metadata": lambda: hostile.wheel_with_metadata(b"A" * (5 * MB)),
        "lying-metadata": lambda: hostile.wheel_lying_about_metadata(100 * MB),
    }
    return makers[name]()


HOSTILE_SDISTS = [
    ("pax", SDIST, f"a member has a pax header of {200 * MB} bytes; at most 65536"),
    ("long-name", SDIST, f"a member has a long-name header of {200 * MB} bytes"),
    ("gzip", SDIST, "it unpacks to more than 40 MB"),
    ("tar-members", SDIST, "it has more than 50000 members"),
    ("zip-members", ZIP_SDIST, "it has more than 50000 members"),
]
HOSTILE_WHEELS = [
    ("metadata", f"its {METADATA} is larger than 4 MB"),
    ("lying-metadata", f"its {METADATA} cannot be read (Bad CRC-32"),
]


@pytest.fixture(autouse=True)
def bomb_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archives, "MAX_UNPACKED", BOMB_LIMIT)


def peak_while(read: Callable[[], object]) -> tuple[int, object]:
    """The peak of memory allocated while ``read`` runs, and what it returned or raised."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        try:
            outcome: object = read()
        except archives.ArchiveError as error:
            outcome = error
        return tracemalloc.get_traced_memory()[1], outcome
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("kind", "filename", "reason"), HOSTILE_SDISTS)
def test_a_hostile_sdist_is_refused_in_little_memory(kind: str, filename: str, reason: str) -> None:
    data = built(kind)
    assert len(data) < 12 * MB
    peak, outcome = peak_while(lambda: archives.sdist_metadata(io.BytesIO(data), filename))
    assert isinstance(outcome, archives.ArchiveError), outcome
    assert reason in outcome.reason
    assert peak < PEAK_LIMIT, f"{peak / MB:.1f} MB"


@pytest.mark.parametrize(("kind", "reason"), HOSTILE_WHEELS)
def test_a_wheel_whose_metadata_inflates_too_far_is_refused_in_little_memory(
    kind: str, reason: str
) -> None:
    data = built(kind)
    peak, outcome = peak_while(lambda: archives.wheel_member(io.BytesIO(data), METADATA))
    assert isinstance(outcome, archives.ArchiveError), outcome
    assert reason in outcome.reason
    assert peak < PEAK_LIMIT, f"{peak / MB:.1f} MB"


def test_an_archive_that_takes_too_long_to_read_is_refused(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archives, "READ_SECONDS", 0.0)
    with pytest.raises(archives.ArchiveError, match="could not be read within 0 seconds"):
        archives.sdist_metadata(io.BytesIO(built("gzip")), SDIST)


def dist_with(content: bytes, filename: str, *, wheel: bool = False) -> Dist:
    """An upload of ``content`` under ``filename`` with the form fields twine would send."""
    base = build_wheel() if wheel else build_sdist()
    return Dist(filename, content, base.metadata, base.fields)


@pytest.mark.parametrize(("kind", "filename", "reason"), HOSTILE_SDISTS)
def test_uploading_a_hostile_sdist_is_answered_400(
    client: Client, user: User, files_dir: Path, kind: str, filename: str, reason: str
) -> None:
    response = post(client, dist_with(built(kind), filename), token_for(user))
    refused_with(response, 400, f"This file is not a valid sdist: {reason}")
    nothing_changed(files_dir)


@pytest.mark.parametrize(("kind", "reason"), HOSTILE_WHEELS)
def test_uploading_a_wheel_with_hostile_metadata_is_answered_400(
    client: Client, user: User, files_dir: Path, kind: str, reason: str
) -> None:
    response = post(client, dist_with(built(kind), WHEEL, wheel=True), token_for(user))
    refused_with(response, 400, f"This file is not a valid wheel: {reason}")
    nothing_changed(files_dir)


@pytest.mark.own_database
@pytest.mark.slow
def test_a_real_server_answers_a_pax_bomb_with_400_and_keeps_serving(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        token = create_uploader(server)
        answer = upload(server, token, dist_with(built("pax"), SDIST))
        assert answer.status == 400, answer
        assert "This file is not a valid sdist: a member has a pax header" in answer.text
        assert upload(server, token, build_sdist()).status == 200


# --- ordinary sdists still pass ------------------------------------------------------------

def tar_sdist(tar_format: int, members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tar_format) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        directory = tarfile.TarInfo(f"{hostile.ROOT}/src")
        directory.type = tarfile.DIRTYPE
        archive.addfile(directory)
    return buffer.getvalue()


def zip_sdist(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def ordinary_members(metadata: str) -> dict[str, bytes]:
    """A PKG-INFO after a path longer than ustar's 100 characters (a pax path, a GNU long
    name, or ustar's prefix field, as each format writes it)."""
    deep = f"{hostile.ROOT}/src/" + "/".join(["package"] * 14) + "/module.py"
    assert 100 < len(deep) < 250
    return {deep: b"VALUE = 1\n", f"{hostile.ROOT}/PKG-INFO": metadata.encode(),
            f"{hostile.ROOT}/pyproject.toml": b"[project]\nname = 'sample-pkg'\n"}


@pytest.mark.parametrize(("filename", "make"), [
    (SDIST, lambda m: tar_sdist(tarfile.PAX_FORMAT, m)),
    (SDIST, lambda m: tar_sdist(tarfile.GNU_FORMAT, m)),
    (SDIST, lambda m: tar_sdist(tarfile.USTAR_FORMAT, m)),
    (ZIP_SDIST, zip_sdist),
], ids=["pax", "gnu", "ustar", "zip"])
def test_ordinary_sdists_are_read_and_uploaded(
    client: Client, user: User, filename: str, make: Callable[[dict[str, bytes]], bytes]
) -> None:
    sdist = build_sdist()
    content = make(ordinary_members(sdist.metadata))
    assert archives.sdist_metadata(io.BytesIO(content), filename) == sdist.metadata.encode()
    response = post(client, dist_with(content, filename), token_for(user))
    assert response.status_code == 200, response.content
    assert File.objects.get().filename == filename


# --- wheels read two ways (issue 20: PyPI's "wheel archive confusion", August 2025) ------------

SOUND = build_wheel()
META = SOUND.metadata.encode()
HIDDEN = META.replace(b"Summary:", b"Requires-Dist: evil-helper\nSummary:")
INIT = "sample_pkg/__init__.py"


def _sound() -> bytes:
    return hostile.wheel_of(hostile.sound_members(META))


def _record_without(name: str) -> list[str]:
    return [hostile.record_line(n, d) for n, d in hostile.sound_members(META) if n != name]


def _recorded(init_line: str) -> bytes:
    """A sound wheel whose RECORD line for the module is ``init_line``."""
    return hostile.wheel_of(hostile.sound_members(META), record=[
        init_line if n == INIT else hostile.record_line(n, d)
        for n, d in hostile.sound_members(META)])


HOSTILE_ZIPS: dict[str, tuple[Callable[[], bytes], str]] = {
    "two METADATA members": (lambda: hostile.wheel_of(
        [*hostile.sound_members(META), (f"{hostile.INFO}/METADATA", HIDDEN)]),
        f"it holds two members named {hostile.INFO}/METADATA"),
    "two .dist-info directories": (lambda: hostile.wheel_of(
        [*hostile.sound_members(META), ("Sample_Pkg-1.0.dist-info/METADATA", HIDDEN)]),
        "it has 2 .dist-info directories (Sample_Pkg-1.0.dist-info, sample_pkg-1.0.dist-info)"),
    "local name differs": (lambda: hostile.rename_local(_sound(), INIT, "sample_pkg/__evil__.py"),
                           f"the local header of {INIT} disagrees with its central directory "
                           "entry: it names the member 'sample_pkg/__evil__.py'"),
    "local compression differs": (lambda: hostile.patch_local(_sound(), INIT, 8, "<H", 0),
                                  "it states another compression method"),
    "local size differs": (lambda: hostile.patch_local(_sound(), INIT, 22, "<L", 5),
                           "it states another CRC or size"),
    "local CRC differs": (lambda: hostile.patch_local(_sound(), INIT, 14, "<L", 1234),
                          "it states another CRC or size"),
    "member missing from the directory": (lambda: hostile.without_central_entry(
        hostile.wheel_of([*hostile.sound_members(META), ("sample_pkg/hidden.py", b"evil()\n")]),
        "sample_pkg/hidden.py"), "the archive hides bytes between its members"),
    "another zip in front": (lambda: hostile.zip_of({"sample_pkg/__init__.py": b"evil()\n"})
                             + _sound(), "bytes come before its first member"),
    "bytes before the first member": (lambda: b"#!/bin/sh\nexit\n" + _sound(),
                                      "bytes come before its first member"),
    "trailing bytes": (lambda: _sound() + b"trailing", "bytes follow its end of central"),
    "an end record in the directory": (lambda: hostile.wheel_of(
        [*hostile.sound_members(META), ("sample_pkg/PK\x05\x06.py", b"")]),
        "it has more than one end of central directory record"),
    "two end records": (lambda: _sound() + _sound()[-22:], "it is not a readable zip archive"),
    "encrypted member": (lambda: hostile.patch_local(_sound(), INIT, 6, "<H", 1),
                         "is encrypted"),
    "no RECORD": (lambda: hostile.zip_of(dict(hostile.sound_members(META))),
                  f"it has no {hostile.INFO}/RECORD"),
    "file not in RECORD": (lambda: hostile.wheel_of(hostile.sound_members(META),
                                                    record=_record_without(INIT)),
                           f"{INIT} is in the wheel but not in its RECORD"),
    "RECORD lists a missing file": (lambda: hostile.wheel_of(
        hostile.sound_members(META),
        record=[*_record_without(""), hostile.record_line("sample_pkg/gone.py", b"x")]),
        "its RECORD lists sample_pkg/gone.py, which is not in the wheel"),
    "wrong hash in RECORD": (lambda: _recorded(hostile.record_line(INIT, b"VALUE = 41\n")),
        f"the hash of {INIT} is not the one its RECORD gives"),
    "wrong size in RECORD": (lambda: _recorded(
        hostile.record_line(INIT, b"VALUE = 42\n").rsplit(",", 1)[0] + ",999"),
        f"its RECORD says {INIT} has 999 bytes; it has 11"),
    "no hash in RECORD": (lambda: _recorded(f"{INIT},,11"), f"its RECORD gives no hash for {INIT}"),
    "hexadecimal hash in RECORD": (lambda: _recorded(
        f"{INIT},sha256={hashlib.sha256(b'VALUE = 42' + bytes([10])).hexdigest()},11"),
        f"its RECORD gives the hash of {INIT} in hexadecimal"),
    "md5 in RECORD": (lambda: _recorded(hostile.record_line(INIT, b"VALUE = 42\n", "md5")),
                      "use sha256 or stronger"),
}


def _no_trace(files_dir: Path) -> None:
    nothing_changed(files_dir)  # no project, release, File or UsedFilename row; no bytes
    assert not SecurityEvent.objects.filter(kind=EventKind.FILE_UPLOADED).exists()


@pytest.mark.parametrize("case", HOSTILE_ZIPS, ids=list(HOSTILE_ZIPS))
def test_a_wheel_read_two_ways_is_refused_and_nothing_is_stored(
    client: Client, user: User, files_dir: Path, case: str
) -> None:
    make, reason = HOSTILE_ZIPS[case]
    response = post(client, dist_with(make(), WHEEL, wheel=True), token_for(user))
    refused_with(response, 400, "This file is not a valid wheel: ")
    assert reason in response.content.decode()
    _no_trace(files_dir)


SOUND_BUILDS: dict[str, Callable[[], bytes]] = {
    "deflated": _sound,
    "stored": lambda: hostile.wheel_of(hostile.sound_members(META),
                                       compression=zipfile.ZIP_STORED),
    "streamed, with data descriptors and zip64": lambda: hostile.streamed_wheel(
        hostile.sound_members(META)),
}


@pytest.mark.parametrize("case", SOUND_BUILDS, ids=list(SOUND_BUILDS))
def test_the_sound_builds_of_those_wheels_are_accepted(
    client: Client, user: User, files_dir: Path, case: str
) -> None:
    """Unbroken, the builders make wheels that pass: each refusal above is for the one thing
    its case breaks. The METADATA served is the wheel's, byte for byte."""
    response = post(client, dist_with(SOUND_BUILDS[case](), WHEEL, wheel=True), token_for(user))
    assert response.status_code == 200, response.content
    row = File.objects.get()
    assert (files_dir / (row.path + ".metadata")).read_bytes() == META
