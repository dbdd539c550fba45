"""Distribution files in an S3 bucket (RELATCH_FILES_URL, relatch.index.store), against a real
S3 server (SeaweedFS, tests/s3store.py): what /files/ sends in each download mode, the orphan
sweep over the bucket, and a store that fails saying so.

tests/index/test_object_store_serve.py runs the same through real ``relatch serve`` processes
(uploads, multipart, a store down during an upload).
"""

import hashlib
import json
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

from relatch.index.models import File, Project
from relatch.index.simple.response_cache import ResponseCache, ResponseStore
from relatch.index.upload.sweep import sweep_orphan_files
from relatch.wsgi import application
from tests.index.dists import build_sdist, build_wheel
from tests.index.simple_rows import publish
from tests.index.wsgi_calls import Counted, call_app
from tests.s3store import S3Store, running_seaweedfs, use_bucket
from tests.serving import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Store]:
    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as running:
        yield running


@pytest.fixture
def prefix(settings: Any, store: S3Store, files_dir: Path) -> str:
    """A prefix of the test's own in the bucket, as default storage; ``files_dir`` (the
    disk storage every test gets) is replaced, and must stay empty."""
    name = f"t-{secrets.token_hex(4)}"
    use_bucket(settings, store, name)
    return name


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def test_published_files_are_objects_and_stream_whole_and_in_ranges(
    client: Client, store: S3Store, prefix: str, files_dir: Path
) -> None:
    wheel, sdist = build_wheel("bucket-pkg"), build_sdist("bucket-pkg")
    rows = [publish(wheel), publish(sdist)]
    objects = store.objects(prefix + "/")
    assert objects == {
        f"{prefix}/{rows[0].path}": len(wheel.content),
        f"{prefix}/{rows[0].path}.metadata": len(wheel.metadata.encode()),
        f"{prefix}/{rows[1].path}": len(sdist.content),
    }
    assert not any(path.is_file() for path in files_dir.rglob("*"))
    for row, dist in zip(rows, (wheel, sdist), strict=True):
        response = client.get(f"/files/{row.path}")
        assert response.status_code == 200
        assert body(response) == dist.content
        assert response["ETag"] == f'"{dist.sha256}"'
        assert response["Content-Length"] == str(len(dist.content))
    partial = client.get(f"/files/{rows[0].path}", headers={"Range": "bytes=10-99"})
    assert partial.status_code == 206
    assert body(partial) == wheel.content[10:100]
    assert partial["Content-Range"] == f"bytes 10-99/{len(wheel.content)}"
    tail = client.get(f"/files/{rows[0].path}", headers={"Range": "bytes=-20"})
    assert body(tail) == wheel.content[-20:]
    metadata = client.get(f"/files/{rows[0].path}.metadata")
    assert body(metadata) == wheel.metadata.encode()


def test_a_missing_object_is_404_not_a_store_failure(
    client: Client, store: S3Store, prefix: str
) -> None:
    row = publish(build_sdist("lost-pkg"))
    store.client().delete_object(Bucket=store.bucket, Key=f"{prefix}/{row.path}")
    assert client.get(f"/files/{row.path}").status_code == 404


def test_redirect_mode_sends_a_short_lived_presigned_url(
    client: Client, settings: Any, store: S3Store, prefix: str
) -> None:
    settings.FILES_DOWNLOAD, settings.FILES_URL_SECONDS = "redirect", 30
    dist = build_wheel("redirect-pkg")
    row = publish(dist)
    response = client.get(f"/files/{row.path}")
    assert response.status_code == 302
    assert response["Cache-Control"] == "no-store"  # the URL dies: never kept and replayed
    location = response["Location"]
    assert location.startswith(f"{store.endpoint}/{store.bucket}/{prefix}/packages/")
    assert "X-Amz-Expires=30" in location
    fetched = httpx.get(location)
    assert fetched.status_code == 200
    assert fetched.content == dist.content
    assert fetched.headers["Content-Type"] == "application/octet-stream"
    assert fetched.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert dist.filename in fetched.headers["Content-Disposition"]
    # Without the signature, the bucket answers nobody: the redirect is the only way in.
    assert httpx.get(location.split("?")[0]).status_code == 403


def test_no_presigned_url_for_a_reader_without_rights(
    client: Client, settings: Any, store: S3Store, prefix: str
) -> None:
    """The attack: ask /files/ for a private project's file without a read token, hoping
    for a signed URL to the bucket. The access checks come first; no URL is ever made."""
    settings.FILES_DOWNLOAD = "redirect"
    row = publish(build_wheel("secret-pkg"))
    Project.objects.filter(normalized_name="secret-pkg").update(private=True)
    response = client.get(f"/files/{row.path}")
    assert response.status_code == 401  # public mode: the anonymous are asked for a token
    assert "Location" not in response
    assert store.bucket not in response.content.decode()


def test_the_orphan_sweep_covers_the_bucket(store: S3Store, prefix: str) -> None:
    kept = publish(build_wheel("kept-pkg"))
    content = b"bytes an upload stored before it was killed"
    orphan = f"packages/{hashlib.sha256(content).hexdigest()}/orphan-1.0.tar.gz"
    default_storage.save(orphan, ContentFile(content))
    removed: list[str] = []
    result = sweep_orphan_files(older_than=timedelta(0), dry_run=False,
                                on_orphan=lambda name, _size: removed.append(name))
    assert removed == [orphan]
    assert (result.removed, result.removed_bytes) == (1, len(content))
    assert set(store.objects(prefix + "/")) == {
        f"{prefix}/{kept.path}", f"{prefix}/{kept.path}.metadata"}
    assert File.objects.filter(path=kept.path).exists()


def lose_the_store(settings: Any) -> None:
    """The same bucket settings, but an address where no store answers (Django resets
    default_storage on the change)."""
    options = {**settings.STORAGES["default"]["OPTIONS"],
               "endpoint_url": f"http://127.0.0.1:{free_port()}"}
    settings.STORAGES = {**settings.STORAGES, "default": {
        **settings.STORAGES["default"], "OPTIONS": options}}


def test_a_store_that_fails_is_a_503_naming_it_and_a_host_not_ready(
    client: Client, settings: Any, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    row = publish(build_wheel("down-pkg"))
    lose_the_store(settings)
    response = client.get(f"/files/{row.path}")
    assert response.status_code == 503
    assert response.content == b"The file store is unavailable; try again shortly.\n"
    assert response["Retry-After"] == "10"
    assert "the file store (s3://relatch-files/" in caplog.text  # the operator's log says
    ready = client.get("/health/ready")
    assert ready.status_code == 503
    checks = json.loads(ready.content)
    assert checks["checks"]["storage"]["state"] == "failing"
    assert any(problem.startswith("storage: could not connect to the endpoint URL")
               for problem in checks["problems"]), checks["problems"]


@pytest.mark.django_db(transaction=True)
def test_a_presigned_hand_over_to_nginx_is_never_kept_and_replayed(
    settings: Any, store: S3Store, prefix: str
) -> None:
    """The whole-response cache keeps an answer handed to nginx for a file on disk; one for
    a bucket carries a presigned URL that dies after RELATCH_FILES_URL_SECONDS, and a kept
    copy replayed later would send every client to the store's 403 (found by the several-
    hosts test: installs failed a minute after a file was first sent)."""
    settings.ACCEL_REDIRECT = "/internal-store/"
    dist = build_wheel("handed-pkg")
    row = publish(dist)
    django_part = Counted(application.app)
    kept = ResponseCache(django_part, store=ResponseStore())
    for _ in range(2):
        status, headers, body = call_app(kept, f"/files/{row.path}")
        assert (status, body) == (200, b"")
        target = headers["x-accel-redirect"][0]
        assert target.startswith(f"/internal-store/{dist.sha256}/{store.bucket}/{prefix}/")
        assert "X-Amz-Expires=60" in target
    assert django_part.calls == 2
