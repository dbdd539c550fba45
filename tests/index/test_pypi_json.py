"""/pypi/<project>/json and /pypi/<project>/<version>/json in PyPI's shape."""

import json
from typing import Any

import pytest
from django.test import Client

from tests.index.dists import build_sdist, build_wheel
from tests.index.simple_rows import publish


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
