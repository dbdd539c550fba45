"""/files/<path>: stored distribution files and their PEP 658 metadata, byte-exact, with
immutable cache headers; only paths that belong to a File row, never arbitrary storage."""

import hashlib
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

from tests.index.dists import build_sdist, build_wheel
from tests.index.simple_rows import publish


def content(response: Any) -> bytes:
    return b"".join(response.streaming_content)


@pytest.mark.django_db
@pytest.mark.parametrize("build", [build_wheel, build_sdist])
def test_file_is_served_byte_exact_with_cache_headers(client: Client, build: Any) -> None:
    dist = build()
    file = publish(dist)
    response = client.get(f"/files/{file.path}")
    assert response.status_code == 200
    assert content(response) == dist.content
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Length"] == str(len(dist.content))
    assert response["ETag"] == f'"{dist.sha256}"'
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_file_revalidation_is_304(client: Client) -> None:
    file = publish(build_wheel())
    etag = f'"{file.sha256_digest}"'
    response = client.get(f"/files/{file.path}", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response["ETag"] == f'"{file.sha256_digest}"'


@pytest.mark.django_db
def test_wheel_metadata_is_served_per_pep_658(client: Client) -> None:
    dist = build_wheel()
    file = publish(dist)
    response = client.get(f"/files/{file.path}.metadata")
    assert response.status_code == 200
    served = content(response)
    assert served == dist.metadata.encode()
    assert hashlib.sha256(served).hexdigest() == file.metadata_sha256_digest
    assert response["Content-Type"].startswith("text/plain")
    assert response["ETag"] == f'"{file.metadata_sha256_digest}"'


@pytest.mark.django_db
def test_metadata_of_a_file_without_it_is_404(client: Client) -> None:
    file = publish(build_sdist())
    assert client.get(f"/files/{file.path}.metadata").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("path", [
    "packages/unknown/sample_pkg-9.9-py3-none-any.whl",
    "secret_key",
    "../secret_key",
    "packages/../../secret_key",
    "packages/%2e%2e/%2e%2e/secret_key",
    "%2Fetc%2Fpasswd",
    "packages/..%5C..%5Csecret_key",
    "stray.txt",
])
def test_paths_outside_file_rows_are_404(client: Client, path: str) -> None:
    """Storage may hold other things (a stray file here); only File rows are served."""
    publish(build_wheel())
    default_storage.save("stray.txt", ContentFile(b"not a distribution"))
    assert client.get(f"/files/{path}").status_code == 404


@pytest.mark.django_db
def test_row_whose_bytes_are_gone_is_404_not_500(client: Client) -> None:
    file = publish(build_wheel())
    default_storage.delete(file.path)
    assert client.get(f"/files/{file.path}").status_code == 404


@pytest.mark.django_db
def test_files_are_public_and_read_only(client: Client) -> None:
    file = publish(build_wheel())
    assert client.post(f"/files/{file.path}").status_code == 405
    assert client.head(f"/files/{file.path}").status_code == 200
