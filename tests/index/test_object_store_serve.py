"""Real ``relatch serve`` processes keeping their files in a real S3 server (SeaweedFS,
tests/s3store.py) with ``RELATCH_FILES_URL``: uploads as twine sends them, one large enough
for a multipart upload, land as objects that match their rows; and a store that is down
refuses an upload with a message saying so, leaving no row and no object behind."""

import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.index.dists import build_sdist, build_wheel
from tests.index.uploading import create_uploader, shell_json, upload
from tests.s3store import S3Store, running_seaweedfs
from tests.serving import free_port, running_server

# The servers' databases are their own SQLite files: CI's PostgreSQL pass leaves it out.
pytestmark = [pytest.mark.slow, pytest.mark.own_database]

ROWS = ("import json; from relatch.index.models import File; print(json.dumps("
        "[[f.path, f.size, f.sha256_digest] for f in File.objects.order_by('path')]))")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Store]:
    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as running:
        yield running


def test_uploads_become_objects_matching_their_rows(store: S3Store, tmp_path: Path) -> None:
    prefix = f"serve-{secrets.token_hex(4)}"
    # Past the 8 MB multipart threshold even compressed: random bytes do not deflate.
    large = build_wheel("big-pkg", "1.0", module_source=f"BLOB = {os.urandom(7_500_000)!r}\n")
    assert len(large.content) > 9 * 1024 * 1024
    dists = [large, build_sdist("big-pkg", "1.0")]
    with running_server(tmp_path, **store.env(prefix)) as server:
        token = create_uploader(server)
        for dist in dists:
            answer = upload(server, token, dist)
            assert answer.status == 200, answer.text
        rows = shell_json(server, ROWS)
        assert isinstance(rows, list) and len(rows) == 2
        objects = store.objects(prefix + "/")
        metadata = {f"{prefix}/{path}.metadata" for path, *_ in rows if path.endswith(".whl")}
        assert set(objects) == {f"{prefix}/{path}" for path, *_ in rows} | metadata
        for path, size, sha256 in rows:
            assert objects[f"{prefix}/{path}"] == size
            status, body, _ = server.get(f"/files/{path}")
            assert status == 200
            assert hashlib.sha256(body).hexdigest() == sha256
        assert not any(p.is_file() for p in (server.data_dir / "files").rglob("*"))


def test_a_store_that_is_down_refuses_the_upload_and_keeps_nothing(
    store: S3Store, tmp_path: Path
) -> None:
    env = {**store.env("down"), "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{free_port()}"}
    with running_server(tmp_path, **env) as server:
        token = create_uploader(server)
        answer = upload(server, token, build_wheel("lost-pkg"))
        assert answer.status == 503
        assert "The file store could not keep the file right now; nothing was published." \
            in answer.text
        assert shell_json(server, ROWS) == []
        status, body, _ = server.get("/health/ready")
        assert status == 503
        assert b'"storage": {"state": "failing"' in body
        assert "the file store (s3://relatch-files/down at http://127.0.0.1:" in server.output()
    assert store.objects("down/") == {}
