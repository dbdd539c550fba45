"""The test distributions are what packaging says they are."""

import io
import zipfile

from packaging.utils import parse_sdist_filename, parse_wheel_filename

from tests.index.dists import build_sdist, build_wheel


def test_wheel_name_and_metadata_agree():
    wheel = build_wheel("Sample.Pkg", "2.0")
    name, version, _, _ = parse_wheel_filename(wheel.filename)
    assert (name, str(version)) == ("sample-pkg", "2.0")
    with zipfile.ZipFile(io.BytesIO(wheel.content)) as archive:
        assert "Version: 2.0" in archive.read("Sample_Pkg-2.0.dist-info/METADATA").decode()


def test_sdist_name_parses():
    sdist = build_sdist("sample-pkg", "1.0")
    name, version = parse_sdist_filename(sdist.filename)
    assert (name, str(version)) == ("sample-pkg", "1.0")
