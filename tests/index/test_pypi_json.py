"""/pypi/<project>/json and /pypi/<project>/<version>/json in PyPI's shape."""

import json
from typing import Any

import pytest
from django.test import Client

from relatch.accounts.models import User
from relatch.index.models import JournalEntry, Project, Release
from tests.index.dists import build_sdist, build_wheel
from tests.index.simple_rows import publish
from tests.index.test_upload import post, token_for


@pytest.mark.django_db
def test_project_json_describes_the_latest_unyanked_release(client: Client) -> None:
    wheel = publish(build_wheel("Sample_Pkg", "1.0"))
    sdist = publish(build_sdist("Sample_Pkg", "1.0"))
    publish(build_wheel("Sample_Pkg", "1.10"), yanked_reason="broken")
    publish(build_wheel("Sample_Pkg", "0.9"))
    response = client.get("/pypi/sample-pkg/json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    document = json.loads(response.content)
    info = document["info"]
    assert info["name"] == "Sample_Pkg"
    assert info["version"] == "1.0"  # 1.10 is higher by PEP 440 but yanked
    assert info["summary"] == "A sample package"
    assert info["requires_python"] == ">=3.8"
    assert info["project_urls"] == {"Source": "https://git.example.org/Sample_Pkg"}
    assert info["yanked"] is False
    assert info["package_url"] == "http://testserver/project/sample-pkg/"
    assert info["release_url"] == "http://testserver/project/sample-pkg/1.0/"
    assert list(document["releases"]) == ["0.9", "1.0", "1.10"]
    assert document["releases"]["1.10"][0]["yanked_reason"] == "broken"
    urls = {entry["filename"]: entry for entry in document["urls"]}
    assert set(urls) == {wheel.filename, sdist.filename}
    assert urls[wheel.filename]["digests"]["sha256"] == wheel.sha256_digest
    assert urls[wheel.filename]["url"] == f"http://testserver/files/{wheel.path}"
    assert urls[wheel.filename]["packagetype"] == "bdist_wheel"
    assert urls[wheel.filename]["size"] == wheel.size
    assert urls[sdist.filename]["packagetype"] == "sdist"


@pytest.mark.django_db
def test_every_release_yanked_still_names_the_highest(client: Client) -> None:
    publish(build_wheel(version="1.0"), yanked_reason="")
    publish(build_wheel(version="2.0"), yanked_reason="bad")
    info = json.loads(client.get("/pypi/sample-pkg/json").content)["info"]
    assert (info["version"], info["yanked"], info["yanked_reason"]) == ("2.0", True, "bad")


@pytest.mark.django_db
@pytest.mark.parametrize("asked", ["1.0", "1.0.0"])  # PEP 440: the same version
def test_release_json(client: Client, asked: str) -> None:
    file = publish(build_wheel(version="1.0"))
    publish(build_wheel(version="2.0"))
    document = json.loads(client.get(f"/pypi/sample-pkg/{asked}/json").content)
    assert document["info"]["version"] == "1.0"
    assert [entry["filename"] for entry in document["urls"]] == [file.filename]
    assert "releases" not in document


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "target"), [
    ("/pypi/Sample_Pkg/json", "/pypi/sample-pkg/json"),
    ("/pypi/Sample.Pkg/1.0/json", "/pypi/sample-pkg/1.0/json"),
])
def test_non_normalised_names_redirect(client: Client, path: str, target: str) -> None:
    publish(build_wheel())
    response = client.get(path)
    assert (response.status_code, response["Location"]) == (301, target)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/pypi/nothing/json", "/pypi/sample-pkg/3.0/json"])
def test_unknown_is_404_json(client: Client, path: str) -> None:
    publish(build_wheel())
    response = client.get(path)
    assert response.status_code == 404
    assert json.loads(response.content) == {"message": "Not Found"}


@pytest.mark.django_db
def test_etag_revalidates(client: Client) -> None:
    publish(build_wheel())
    etag = client.get("/pypi/sample-pkg/json")["ETag"]
    response = client.get("/pypi/sample-pkg/json", headers={"If-None-Match": etag})
    assert response.status_code == 304


@pytest.mark.django_db
def test_queries_do_not_grow_with_releases(django_assert_num_queries: Any) -> None:
    client = Client()
    for minor in range(6):
        publish(build_wheel(version=f"1.{minor}"))
    with django_assert_num_queries(3):
        assert client.get("/pypi/sample-pkg/json").status_code == 200


# What PyPI's JSON API (Warehouse's legacy/api/json.py) calls a project's version: releases
# ordered by yanked, then pre-release, then PEP 440 version; the first one.
@pytest.mark.django_db
@pytest.mark.parametrize(("releases", "expected"), [
    # The case: a newer pre-release and a yanked final do not win.
    ([("1.0", None), ("2.0", None), ("3.0rc1", None)], "2.0"),
    ([("1.0", None), ("2.0", "broken"), ("3.0rc1", None)], "1.0"),
    ([("1.0", None), ("1.1.dev1", None)], "1.0"),  # a dev release is a pre-release too
    ([("1.0a1", None), ("1.0b1", None)], "1.0b1"),  # only pre-releases: the highest
    ([("0.9", "bad"), ("1.0rc1", None)], "1.0rc1"),  # a live pre-release beats a yanked final
    ([("1.0", ""), ("2.0rc1", "")], "1.0"),  # all yanked: a final still comes first
    ([("1.0rc1", ""), ("1.0rc2", "x")], "1.0rc2"),  # all yanked pre-releases: the highest
])
def test_info_version_is_the_one_pypi_would_name(
    client: Client, releases: list[tuple[str, str | None]], expected: str
) -> None:
    for version, yanked_reason in releases:
        publish(build_wheel(version=version), yanked_reason=yanked_reason)
    document = json.loads(client.get("/pypi/sample-pkg/json").content)
    assert document["info"]["version"] == expected
    assert [entry["filename"] for entry in document["urls"]] == [
        f"sample_pkg-{expected}-py3-none-any.whl"
    ]


EXTRA = {
    "metadata_version": "2.4", "license_expression": "MIT OR Apache-2.0",
    "license_file": ["LICENSE", "NOTICE"], "provides_extra": ["cli"],
    "requires_dist": ["click>=8; extra == 'cli'"], "dynamic": ["Requires-Dist"],
    "platform": ["any"], "download_url": "https://downloads.example.org/sample",
    "keywords": "sample,test", "classifiers": ["Programming Language :: Python :: 3"],
}


@pytest.mark.django_db
def test_info_has_the_stored_fields_pypi_returns(client: Client) -> None:
    wheel = publish(build_wheel(version="1.0"))
    Release.objects.update(extra_metadata=EXTRA, license="MIT")
    document = json.loads(client.get("/pypi/sample-pkg/json").content)
    info = document["info"]
    assert {key: info[key] for key in (
        "license", "license_expression", "license_files", "provides_extra", "requires_dist",
        "dynamic", "platform", "download_url", "keywords", "classifiers", "bugtrack_url",
        "docs_url", "downloads",
    )} == {
        "license": "MIT", "license_expression": "MIT OR Apache-2.0",
        "license_files": ["LICENSE", "NOTICE"], "provides_extra": ["cli"],
        "requires_dist": ["click>=8; extra == 'cli'"], "dynamic": ["Requires-Dist"],
        "platform": "any", "download_url": "https://downloads.example.org/sample",
        "keywords": "sample,test", "classifiers": ["Programming Language :: Python :: 3"],
        "bugtrack_url": None, "docs_url": None,
        "downloads": {"last_day": -1, "last_month": -1, "last_week": -1},
    }
    [entry] = document["urls"]
    # PEP 658/714 as PyPI's JSON gives it, per file.
    assert entry["core-metadata"] == {"sha256": wheel.metadata_sha256_digest}
    assert document["releases"]["1.0"] == [entry]
    assert "dist-info-metadata" not in entry and "data-dist-info-metadata" not in entry


@pytest.mark.django_db
def test_fields_without_a_value_are_null_as_on_pypi(client: Client) -> None:
    publish(build_sdist(version="1.0"))  # no PEP 658 metadata for this sdist
    document = json.loads(client.get("/pypi/sample-pkg/1.0/json").content)
    info = document["info"]
    for key in ("license_expression", "license_files", "provides_extra", "requires_dist",
                "dynamic", "platform", "download_url", "bugtrack_url", "docs_url"):
        assert info[key] is None, key
    assert document["urls"][0]["core-metadata"] is False


@pytest.mark.django_db
def test_an_uploaded_release_s_metadata_reaches_the_json(client: Client, user: User) -> None:
    """Through the upload API, as twine sends the fields: what is stored is what is served."""
    dist = build_sdist(version="1.0")
    response = post(client, dist, token_for(user), **{
        key: value for key, value in EXTRA.items() if key not in ("keywords", "classifiers")
    })
    assert response.status_code == 200, response.content
    info = json.loads(client.get("/pypi/sample-pkg/json").content)["info"]
    assert info["license_expression"] == "MIT OR Apache-2.0"
    assert info["license_files"] == ["LICENSE", "NOTICE"]
    assert info["provides_extra"] == ["cli"]
    assert info["requires_dist"] == ["click>=8; extra == 'cli'"]
    assert info["dynamic"] == ["Requires-Dist"]
    assert info["platform"] == "any"
    assert info["download_url"] == "https://downloads.example.org/sample"


def _serial(client: Client, path: str, **headers: str) -> int:
    response = client.get(path, headers=headers)
    assert response.status_code in (200, 304), path
    return int(response["X-PyPI-Last-Serial"])


def _latest_serial() -> int:
    return JournalEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0


@pytest.mark.django_db
def test_last_serial_is_the_project_s_latest_change(client: Client) -> None:
    """Each change is a new journal entry; the project's serial and header follow it, and
    /simple/ says the index's latest serial, which another project's change moves too."""
    publish(build_wheel(version="1.0"))
    first = Project.objects.get().last_serial
    assert 0 < first <= _latest_serial()  # a new project: its change, then the list's
    publish(build_wheel(version="1.1"))
    second = Project.objects.get().last_serial
    assert second == _latest_serial() > first
    document = client.get("/pypi/sample-pkg/json")
    assert json.loads(document.content)["last_serial"] == second
    assert int(document["X-PyPI-Last-Serial"]) == second
    assert _serial(client, "/pypi/sample-pkg/1.0/json") == second
    assert _serial(client, "/simple/sample-pkg/") == second
    publish(build_wheel("other-pkg", "1.0"))
    assert _serial(client, "/simple/sample-pkg/") == second  # not this project's change
    assert _serial(client, "/simple/") == _latest_serial() > second
    # A revalidation (304) carries the serial too.
    etag = client.get("/pypi/sample-pkg/json")["ETag"]
    assert _serial(client, "/pypi/sample-pkg/json", **{"If-None-Match": etag}) == second


@pytest.mark.django_db
@pytest.mark.parametrize("path", [
    "/pypi/sample-pkg/json", "/pypi/sample-pkg/1.0/json", "/pypi/nothing/json",
    "/simple/", "/simple/sample-pkg/", "/simple/nothing/", "FILE",
])
def test_read_apis_allow_any_origin(client: Client, path: str) -> None:
    """CORS as PyPI sends it: any page may read these (``*`` never carries credentials)."""
    wheel = publish(build_wheel(version="1.0"))
    response = client.get(f"/files/{wheel.path}" if path == "FILE" else path,
                          headers={"Origin": "https://elsewhere.example"})
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Access-Control-Expose-Headers"] == "X-PyPI-Last-Serial"
    assert "Access-Control-Allow-Credentials" not in response


@pytest.mark.django_db
def test_pages_that_are_not_read_apis_allow_no_other_origin(client: Client) -> None:
    publish(build_wheel(version="1.0"))
    response = client.get("/project/sample-pkg/", headers={"Origin": "https://elsewhere.example"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response
