"""Files under the names older tools wrote, and one file per release slot (issue 20 §6).

A team moving from pypiserver or devpi holds files named before PEP 625 and the normalising
builders (``python-dateutil-2.8.2.tar.gz``, ``zope.interface-5.4.0-…whl``): the operator's
import brings them in under their own names. What stops "extra files under other spellings of
a published release's name" is then what the names mean: a release holds one sdist, and one
wheel per set of tags and build tag, whatever the spelling, through /legacy/ and import alike.
"""

import io
import tarfile
import zipfile
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from relatch.accounts.models import User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import File, Release, UsedFilename
from tests.index import hostile_archives as hostile
from tests.index.dists import Dist, build_sdist, build_wheel
from tests.index.test_upload import post, refusal_recorded, refused_with, stored, token_for

pytestmark = pytest.mark.django_db
JSON = "application/vnd.pypi.simple.v1+json"


def _metadata(name: str, version: str) -> str:
    return (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            "Summary: An old package\n\nAn old package.\n")


def legacy_wheel(filename: str, name: str, version: str, body: bytes = b"VALUE = 1\n") -> Dist:
    """A sound wheel named ``filename``, its .dist-info spelt as the name's first two parts
    (as bdist_wheel wrote it before it normalised names)."""
    info = "-".join(filename.split("-")[:2]) + ".dist-info"
    metadata = _metadata(name, version)
    members = [("old_module.py", body), (f"{info}/METADATA", metadata.encode()),
               (f"{info}/WHEEL", b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")]
    lines = [hostile.record_line(n, d) for n, d in members] + [f"{info}/RECORD,,"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members:
            archive.writestr(member, data)
        archive.writestr(f"{info}/RECORD", "\n".join(lines) + "\n")
    return Dist(filename, buffer.getvalue(), metadata)


def legacy_sdist(filename: str, name: str, version: str, body: bytes = b"VALUE = 1\n") -> Dist:
    """An sdist named ``filename`` (.tar.gz or .zip) whose top directory is spelt as its name."""
    root = filename.removesuffix(".tar.gz").removesuffix(".zip")
    metadata = _metadata(name, version)
    members = {f"{root}/PKG-INFO": metadata.encode(), f"{root}/old_module.py": body}
    buffer = io.BytesIO()
    if filename.endswith(".zip"):
        with zipfile.ZipFile(buffer, "w") as archive:
            for member, data in members.items():
                archive.writestr(member, data)
    else:
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for member, data in members.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return Dist(filename, buffer.getvalue(), metadata)


def _import(tmp_path: Path, *dists: Dist) -> tuple[str, str, CommandError | None]:
    """stdout, stderr and the CommandError (the non-zero exit) of one import run as maria."""
    paths = []
    for number, dist in enumerate(dists):
        folder = tmp_path / f"in{number}"  # two files may differ only in case
        folder.mkdir(exist_ok=True)
        (folder / dist.filename).write_bytes(dist.content)
        paths.append(str(folder / dist.filename))
    out, err = StringIO(), StringIO()
    try:
        call_command("index_import_file", *paths, "--owner", "maria", stdout=out, stderr=err)
    except CommandError as error:
        return out.getvalue(), err.getvalue(), error
    return out.getvalue(), err.getvalue(), None


@pytest.fixture
def maria(make_user: Any) -> User:
    return make_user(username="maria")


def _state(files_dir: Path) -> tuple[list[str], list[str], list[str]]:
    return (sorted(File.objects.values_list("filename", flat=True)),
            sorted(UsedFilename.objects.values_list("filename", flat=True)), stored(files_dir))


# --- the import keeps the names older tools wrote -----------------------------------------

LEGACY: dict[str, tuple[str, str, str]] = {
    # (the file's name, the project's name in its metadata, the version in its metadata)
    "pre-PEP 625 sdist": ("python-dateutil-2.8.2.tar.gz", "python-dateutil", "2.8.2"),
    "hyphens in an sdist": ("my-lib-1.0.tar.gz", "my-lib", "1.0"),
    "dots in a zip sdist": ("zope.interface-5.4.0.zip", "zope.interface", "5.4.0"),
    "dots in a wheel": ("zope.interface-5.4.0-py3-none-any.whl", "zope.interface", "5.4.0"),
    "capitals and dots": ("Flask.Ext-0.3-py2.py3-none-any.whl", "Flask.Ext", "0.3"),
    "another version spelling": ("my_lib-1.0.0.tar.gz", "my-lib", "1.0.0"),
}


@pytest.mark.parametrize("case", LEGACY, ids=list(LEGACY))
def test_import_keeps_a_legacy_spelling_and_serves_it(
    tmp_path: Path, client: Client, maria: User, files_dir: Path, case: str
) -> None:
    filename, name, version = LEGACY[case]
    build = legacy_wheel if filename.endswith(".whl") else legacy_sdist
    dist = build(filename, name, version)
    out, err, failed = _import(tmp_path, dist)
    assert failed is None, err
    row = File.objects.get()
    assert row.filename == filename and f"imported {filename} as /files/{row.path}" in out
    assert UsedFilename.objects.get().filename == filename
    # Installers find it under the project's normalised name and match the file's name to it.
    page = client.get(f"/simple/{canonicalize_name(name)}/", HTTP_ACCEPT=JSON).json()
    [listed] = page["files"]
    assert listed["filename"] == filename and listed["hashes"]["sha256"] == dist.sha256
    parsed = (parse_wheel_filename(filename)[:2] if filename.endswith(".whl")
              else parse_sdist_filename(filename))
    assert parsed[0] == canonicalize_name(name) and str(parsed[1]) == version
    served = client.get(f"/files/{row.path}")
    assert served.status_code == 200 and b"".join(served.streaming_content) == dist.content


def test_an_imported_wheel_may_spell_the_version_as_its_release_does_not(
    tmp_path: Path, maria: User
) -> None:
    """Older tools wrote ``1.0.0`` in one file and ``1.0`` in another of the same release:
    PEP 440 equal, so one release, and different kinds of file, so both are kept."""
    sdist = legacy_sdist("my-lib-1.0.tar.gz", "my-lib", "1.0")
    wheel = legacy_wheel("my_lib-1.0.0-py3-none-any.whl", "my-lib", "1.0.0")
    _out, err, failed = _import(tmp_path, sdist, wheel)
    assert failed is None, err
    assert Release.objects.get().version == "1.0"
    assert sorted(File.objects.values_list("filename", flat=True)) == sorted(
        [sdist.filename, wheel.filename])


# --- one sdist, one wheel per set of tags, whatever the spelling ----------------------------

SECOND_SDISTS = {
    "another spelling of the name": "Sample.Pkg-1.0.tar.gz",
    "hyphens": "sample-pkg-1.0.tar.gz",
    "another version spelling": "sample_pkg-1.0.0.tar.gz",
    "a zip beside the tar.gz": "sample_pkg-1.0.zip",
}


@pytest.mark.parametrize("case", SECOND_SDISTS, ids=list(SECOND_SDISTS))
def test_import_of_a_second_sdist_is_refused(
    tmp_path: Path, maria: User, files_dir: Path, case: str
) -> None:
    first = build_sdist()
    assert _import(tmp_path, first)[2] is None
    before = _state(files_dir)
    filename = SECOND_SDISTS[case]
    version = "1.0.0" if "1.0.0" in filename else "1.0"
    _out, err, failed = _import(tmp_path, legacy_sdist(filename, "sample-pkg", version))
    assert failed is not None and str(failed) == f"1 of 1 files failed: {filename}"
    assert (f"failed {filename}: Release 1.0 of sample-pkg already has a source distribution, "
            f"'{first.filename}': '{filename}' would be a second one. Only one sdist may be "
            "uploaded per release") in err
    assert _state(files_dir) == before


SAME_TAGS = {
    "another spelling of the name": ("sample_pkg-1.0-py3-none-any.whl",
                                     "Sample.Pkg-1.0-py3-none-any.whl"),
    "another version spelling": ("sample_pkg-1.0-py3-none-any.whl",
                                 "sample_pkg-1.0.0-py3-none-any.whl"),
    "the tags in another order": ("sample_pkg-1.0-py2.py3-none-any.whl",
                                  "sample.pkg-1.0-py3.py2-none-any.whl"),
    "the same build tag": ("sample_pkg-1.0-1-py3-none-any.whl",
                           "sample.pkg-1.0-1-py3-none-any.whl"),
}


@pytest.mark.parametrize("case", SAME_TAGS, ids=list(SAME_TAGS))
def test_import_of_a_second_wheel_with_the_same_tags_is_refused(
    tmp_path: Path, maria: User, files_dir: Path, case: str
) -> None:
    first_name, second_name = SAME_TAGS[case]
    first = legacy_wheel(first_name, "sample-pkg", "1.0")
    assert _import(tmp_path, first)[2] is None
    before = _state(files_dir)
    version = "1.0.0" if "1.0.0" in second_name else "1.0"
    second = legacy_wheel(second_name, "sample-pkg", version, body=b"VALUE = 2\n")
    _out, err, failed = _import(tmp_path, second)
    assert failed is not None
    assert (f"failed {second_name}: Release 1.0 of sample-pkg already has a wheel with the "
            f"same tags and build tag, '{first_name}': '{second_name}' would be a second "
            "one.") in err
    assert _state(files_dir) == before


def test_wheels_that_differ_in_their_build_tag_are_both_kept(
    tmp_path: Path, client: Client, maria: User
) -> None:
    """The wheel spec's way to replace a broken build: installers take the higher build tag."""
    token = token_for(maria)
    assert post(client, build_wheel(), token).status_code == 200
    rebuilt = legacy_wheel("sample_pkg-1.0-1-py3-none-any.whl", "sample-pkg", "1.0")
    assert _import(tmp_path, rebuilt)[2] is None
    again = build_wheel(module_source="VALUE = 3\n")
    named = Dist("sample_pkg-1.0-2-py3-none-any.whl", again.content, again.metadata, again.fields)
    assert post(client, named, token).status_code == 200
    assert sorted(File.objects.values_list("filename", flat=True)) == [
        "sample_pkg-1.0-1-py3-none-any.whl", "sample_pkg-1.0-2-py3-none-any.whl",
        "sample_pkg-1.0-py3-none-any.whl"]


def test_a_deleted_sdists_place_is_not_taken_by_another_spelling(
    tmp_path: Path, maria: User, files_dir: Path
) -> None:
    """The deleted file's name is reserved; another spelling of it must not bring other
    bytes back as the release's sdist."""
    first = build_sdist()
    assert _import(tmp_path, first)[2] is None
    File.objects.all().delete()
    respelt = legacy_sdist("Sample.Pkg-1.0.tar.gz", "sample-pkg", "1.0")
    before = _state(files_dir)
    _out, err, failed = _import(tmp_path, respelt)
    assert failed is not None
    assert (f"Release 1.0 of sample-pkg had a source distribution, '{first.filename}', since "
            f"deleted: '{respelt.filename}' would be a second one.") in err
    assert _state(files_dir) == before


# --- /legacy/ keeps the canonical spelling, and the same rule ---------------------------------

@pytest.fixture
def token(maria: User) -> str:
    return token_for(maria)


def test_an_upload_of_a_legacy_spelling_is_refused_as_before(
    client: Client, maria: User, token: str, files_dir: Path
) -> None:
    """What the import keeps, twine may not add: current build tools all write the one
    canonical spelling, and a new file under another is a mistake or an attempt."""
    sdist = build_sdist()
    dist = Dist("sample-pkg-1.0.tar.gz", sdist.content, sdist.metadata, sdist.fields)
    refused_with(post(client, dist, token), 400,
                 "The file name 'sample-pkg-1.0.tar.gz' spells the project 'sample-pkg'; name "
                 "the file 'sample_pkg-1.0.tar.gz'")
    assert _state(files_dir) == ([], [], [])
    refusal_recorded(maria, "spells the project")


@pytest.mark.parametrize("first_suffix", [".tar.gz", ".zip"])
def test_an_upload_of_a_second_sdist_in_another_format_is_refused(
    client: Client, maria: User, token: str, files_dir: Path, first_suffix: str
) -> None:
    """``sample_pkg-1.0.zip`` beside ``sample_pkg-1.0.tar.gz`` (both canonical, both allowed
    formats): a release holds one sdist."""
    second_suffix = ".zip" if first_suffix == ".tar.gz" else ".tar.gz"
    fields = build_sdist().fields
    first = legacy_sdist(f"sample_pkg-1.0{first_suffix}", "sample-pkg", "1.0")
    second = legacy_sdist(f"sample_pkg-1.0{second_suffix}", "sample-pkg", "1.0")
    assert post(client, Dist(first.filename, first.content, "", fields), token).status_code == 200
    before = _state(files_dir)
    response = post(client, Dist(second.filename, second.content, "", fields), token)
    refused_with(response, 400,
                 f"Release 1.0 of sample-pkg already has a source distribution, "
                 f"'{first.filename}': '{second.filename}' would be a second one.")
    assert _state(files_dir) == before
    refusal_recorded(maria, "Only one sdist may be uploaded per release")
    assert not SecurityEvent.objects.filter(kind=EventKind.FILE_UPLOADED,
                                            details__filename=second.filename).exists()
