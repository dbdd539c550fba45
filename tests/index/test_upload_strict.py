"""What a wheel's form may say, and how a release's files are named (issue 20 §6).

The form twine sends must agree with the wheel's own METADATA (pip and uv install by the
METADATA, PEP 658; the pages show the form): name, version, Requires-Dist and Requires-Python.
What is stored and served is the wheel's. And a release's files spell the project's name (and
the release's version) one way: a respelt name is a second file for the same release.
"""

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from relatch.accounts.models import User
from relatch.index.models import File, Release, UsedFilename
from tests.index import hostile_archives as hostile
from tests.index.dists import Dist, build_sdist, build_wheel
from tests.index.test_upload import (
    nothing_changed,
    post,
    refusal_recorded,
    refused_with,
    stored,
    token_for,
)

REQUIRES = ("requests>=2.0", "tomli; python_version < '3.11'")


@pytest.fixture
def alice(user: User) -> User:
    return user


@pytest.fixture
def token(alice: User) -> str:
    return token_for(alice)


# (form field overrides for a wheel whose METADATA has REQUIRES and Requires-Python >=3.8)
DISAGREEMENTS: dict[str, tuple[dict[str, Any], str]] = {
    "a requirement hidden from the form": (
        {"requires_dist": [REQUIRES[1]]},
        "The form's Requires-Dist is not the wheel's METADATA's: only in the wheel: "
        "requests>=2.0; only in the form: nothing"),
    "no requirements in the form": (
        {"requires_dist": None}, "only in the wheel: requests>=2.0, tomli; python_version < "),
    "a requirement only in the form": (
        {"requires_dist": [*REQUIRES, "harmless"]}, "only in the form: harmless"),
    "another Requires-Python": (
        {"requires_python": ">=3.6"},
        "The form's Requires-Python (>=3.6) is not the wheel's METADATA's (>=3.8)"),
    "no Requires-Python in the form": (
        {"requires_python": None}, "The form's Requires-Python (none) is not the wheel's"),
}


@pytest.mark.parametrize("case", DISAGREEMENTS, ids=list(DISAGREEMENTS))
def test_a_form_that_disagrees_with_the_wheels_metadata_is_refused(
    client: Client, alice: User, token: str, files_dir: Path, case: str
) -> None:
    overrides, fragment = DISAGREEMENTS[case]
    response = post(client, build_wheel(requires_dist=REQUIRES), token, **overrides)
    refused_with(response, 400, fragment)
    nothing_changed(files_dir)
    refusal_recorded(alice, fragment[:40])


def test_a_wheel_whose_metadata_names_another_project_is_refused(
    client: Client, token: str, files_dir: Path
) -> None:
    """other-pkg's METADATA in a sound wheel named (and with a dist-info) as sample-pkg's."""
    wheel = build_wheel()
    content = _renamed_wheel(build_wheel("other-pkg"), "other_pkg", "sample_pkg")
    refused_with(post(client, Dist(wheel.filename, content, "", wheel.fields), token), 400,
                 "The wheel's METADATA is for other-pkg 1.0, not for sample-pkg 1.0.")
    nothing_changed(files_dir)


def _renamed_wheel(dist: Dist, old: str, new: str) -> bytes:
    """``dist`` with its dist-info directory (and RECORD) under ``new``'s name."""
    members = []
    with zipfile.ZipFile(io.BytesIO(dist.content)) as archive:
        for info in archive.infolist():
            if not info.filename.endswith("/RECORD"):
                name = info.filename.replace(f"{old}-1.0.dist-info", f"{new}-1.0.dist-info")
                members.append((name, archive.read(info)))
    info_dir = f"{new}-1.0.dist-info"
    lines = [hostile.record_line(n, d) for n, d in members] + [f"{info_dir}/RECORD,,"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
        archive.writestr(f"{info_dir}/RECORD", "\n".join(lines) + "\n")
    return buffer.getvalue()


def test_what_is_stored_and_served_is_the_wheels_metadata(
    client: Client, token: str, files_dir: Path
) -> None:
    """The form may spell the same requirements another way; the release keeps the wheel's
    spelling, and /files/…/.metadata serves the wheel's METADATA byte for byte."""
    wheel = build_wheel(requires_dist=REQUIRES, requires_python=">=3.8")
    response = post(client, wheel, token, requires_python=">= 3.8",
                    requires_dist=["Requests >= 2.0", 'tomli ; python_version<"3.11"'])
    assert response.status_code == 200, response.content
    release, row = Release.objects.get(), File.objects.get()
    assert release.requires_python == ">=3.8" and row.requires_python == ">=3.8"
    assert release.extra_metadata["requires_dist"] == list(REQUIRES)
    assert (files_dir / (row.path + ".metadata")).read_bytes() == wheel.metadata.encode()
    served = client.get(f"/files/{row.path}.metadata")
    assert b"".join(served.streaming_content) == wheel.metadata.encode()


# --- one spelling of the project's name per release --------------------------------------

@pytest.mark.parametrize(("filename", "expected"), [
    ("Sample.Pkg-1.0.tar.gz", "sample_pkg-1.0.tar.gz"),
    ("sample-pkg-1.0.tar.gz", "sample_pkg-1.0.tar.gz"),
    ("sample.pkg-1.0.zip", "sample_pkg-1.0.zip"),
    ("Sample.Pkg-1.0-py3-none-any.whl", "sample_pkg-1.0-py3-none-any.whl"),
])
def test_another_spelling_of_a_published_releases_name_is_refused(
    client: Client, alice: User, token: str, files_dir: Path, filename: str, expected: str
) -> None:
    """``Sample.Pkg-1.0.tar.gz`` beside ``sample_pkg-1.0.tar.gz`` is a second sdist of one
    release to every installer, and a way around a deleted file's reserved name."""
    published = build_sdist() if "tar.gz" in expected else build_wheel()
    if not expected.endswith(".zip"):
        assert post(client, published, token).status_code == 200
    before = (list(File.objects.values_list("filename", flat=True)), stored(files_dir))
    dist = build_wheel() if filename.endswith(".whl") else build_sdist()
    if filename.endswith(".zip"):
        dist = Dist(dist.filename, _zip_sdist(), "", dist.fields)
    response = post(client, dist, token, filename=filename)
    refused_with(response, 400, f"The file name '{filename}' spells the project")
    assert f"name the file '{expected}'" in response.content.decode()
    assert (list(File.objects.values_list("filename", flat=True)), stored(files_dir)) == before
    assert UsedFilename.objects.filter(filename=filename).count() == 0
    refusal_recorded(alice, "spells the project")


def _zip_sdist() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("sample_pkg-1.0/PKG-INFO", build_sdist().metadata)
    return buffer.getvalue()


def test_case_is_free_and_taken_once(client: Client, token: str) -> None:
    """Wheels from before the normalising builders keep their capitals (Django-4.2-…whl), and
    file names are reserved without case: one spelling per release still."""
    legacy = build_wheel("Sample_Pkg")
    assert legacy.filename == "Sample_Pkg-1.0-py3-none-any.whl"
    assert post(client, legacy, token).status_code == 200
    other = build_wheel(module_source="VALUE = 43\n")
    refused_with(post(client, other, token), 400, "File already exists")
    assert File.objects.get().filename == legacy.filename


def test_a_release_keeps_the_spelling_of_its_version(
    client: Client, alice: User, token: str, files_dir: Path
) -> None:
    """``…-1.0.0-py3-none-any.whl`` beside ``…-1.0-py3-none-any.whl``: the same version to
    pip, the same tags, other bytes. The release's first spelling is its files' spelling."""
    assert post(client, build_sdist(version="1.0"), token).status_code == 200
    respelt = build_wheel(version="1.0.0")
    before = stored(files_dir)
    refused_with(post(client, respelt, token), 400,
                 "Release 1.0 of sample-pkg spells its version '1.0', and so must its files: "
                 "name the file 'sample_pkg-1.0-py3-none-any.whl'")
    assert File.objects.count() == 1 and stored(files_dir) == before
    assert not UsedFilename.objects.filter(filename=respelt.filename).exists()
    assert post(client, build_wheel(version="1.0"), token).status_code == 200
