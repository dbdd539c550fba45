"""/files/ with RELATCH_ACCEL_REDIRECT: an empty answer that nginx turns into the file, given
only after every check Relatch makes, and never for a name outside the files directory.

nginx itself, in front of two real hosts, is driven by tests/deploy/test_nginx.py; these
check what Relatch answers."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

from relatch.accounts.models import User
from relatch.index.changes import mark_project_changed
from relatch.index.models import File
from relatch.index.simple.accel import internal_uri
from relatch.index.simple.response_cache import ResponseCache, ResponseStore
from relatch.index.upstream.models import UpstreamFile
from relatch.wsgi import application
from tests.index.dists import build_sdist, build_wheel
from tests.index.read_tokens import make_token, token_header
from tests.index.simple_rows import publish, use_tmp_storage
from tests.index.test_private_reads import make_private
from tests.index.upstream.fake_upstream import FakeUpstream
from tests.index.upstream.upstream_case import WHEEL, download, file_url, upstream_with_up_pkg
from tests.index.wsgi_calls import Counted, call_app
from tests.test_settings import settings_for

PREFIX = "/internal-files/"
UPLOADED = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture(autouse=True)
def accel_on(settings: Any) -> None:
    settings.ACCEL_REDIRECT = PREFIX


def assert_accelerated(response: Any, storage_name: str) -> None:
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == PREFIX + storage_name
    assert response.content == b""  # nginx sends the bytes


@pytest.mark.django_db
@pytest.mark.parametrize("build", [build_wheel, build_sdist])
def test_a_file_is_handed_to_nginx_with_the_headers_relatch_decides(
    client: Client, build: Any
) -> None:
    dist = build()
    file = publish(dist, uploaded_at=UPLOADED)
    response = client.get(f"/files/{file.path}")
    assert_accelerated(response, file.path)
    assert response["Content-Type"] == "application/octet-stream"
    assert response["ETag"] == f'"{dist.sha256}"'
    assert response["Last-Modified"] == "Tue, 04 Mar 2025 05:06:07 GMT"
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response["Content-Disposition"] == f'inline; filename="{dist.filename}"'
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_pep_658_metadata_is_handed_over_as_text(client: Client) -> None:
    file = publish(build_wheel())
    response = client.get(f"/files/{file.path}.metadata")
    assert_accelerated(response, file.path + ".metadata")
    assert response["Content-Type"].startswith("text/plain")
    assert response["ETag"] == f'"{file.metadata_sha256_digest}"'


@pytest.mark.django_db
def test_off_by_default_the_bytes_come_from_relatch(client: Client, settings: Any) -> None:
    settings.ACCEL_REDIRECT = ""
    dist = build_wheel()
    file = publish(dist)
    response = client.get(f"/files/{file.path}")
    assert "X-Accel-Redirect" not in response
    assert b"".join(response.streaming_content) == dist.content


@pytest.mark.django_db
def test_revalidation_is_still_answered_by_relatch(client: Client) -> None:
    file = publish(build_wheel())
    etag = f'"{file.sha256_digest}"'
    response = client.get(f"/files/{file.path}", headers={"If-None-Match": etag})
    assert response.status_code == 304 and "X-Accel-Redirect" not in response


@pytest.mark.django_db
def test_one_satisfiable_range_is_left_to_nginx(client: Client) -> None:
    file = publish(build_wheel())
    response = client.get(f"/files/{file.path}", headers={"Range": "bytes=10-19"})
    assert_accelerated(response, file.path)


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "range_header", "status"), [
    ("get", "bytes=999999-", 416),  # nginx's 416 would carry the file's year-long caching
    ("get", "bytes=0-1,5-6", 200),  # Relatch sends the whole file; nginx would send parts
    ("get", "bytes=5-2", 200),  # ignored by Relatch, a 416 from nginx
    ("head", "bytes=0-9", 200),  # ranges apply to GET only
])
def test_ranges_nginx_would_answer_otherwise_stay_with_relatch(
    client: Client, method: str, range_header: str, status: int
) -> None:
    file = publish(build_wheel())
    response = getattr(client, method)(f"/files/{file.path}", headers={"Range": range_header})
    assert response.status_code == status
    assert "X-Accel-Redirect" not in response


@pytest.mark.django_db
def test_an_if_range_that_does_not_hold_stays_with_relatch(client: Client) -> None:
    dist = build_wheel()
    file = publish(dist)
    response = client.get(f"/files/{file.path}",
                          headers={"Range": "bytes=0-9", "If-Range": '"another"'})
    assert response.status_code == 200 and "X-Accel-Redirect" not in response
    assert b"".join(response.streaming_content) == dist.content


@pytest.mark.django_db
def test_a_private_file_is_refused_before_anything_is_handed_over(
    client: Client, user: User
) -> None:
    make_private("secret-pkg", user)
    path = f"/files/{_only_file_path('secret-pkg')}"
    refused = client.get(path)
    assert refused.status_code == 401 and "X-Accel-Redirect" not in refused
    reader = client.get(path, headers={"Authorization": token_header(make_token(user))})
    assert reader.status_code == 200 and reader["X-Accel-Redirect"].startswith(PREFIX)
    # Never kept by a shared cache (nginx copies Cache-Control from Relatch's answer).
    assert "private" in reader["Cache-Control"]


def _only_file_path(project: str) -> str:

    return File.objects.get(release__project__normalized_name=project).path


@pytest.mark.django_db
def test_a_stored_upstream_copy_is_handed_over(client: Client) -> None:
    default_storage.save("upstream/demo/abcd/demo-1.0.tar.gz", ContentFile(b"upstream bytes"))
    UpstreamFile.objects.create(
        url_path="upstream/demo/" + "a" * 64 + "/demo-1.0.tar.gz",
        storage_name="upstream/demo/abcd/demo-1.0.tar.gz", sha256="a" * 64, size=14,
        project_name="demo",
    )
    response = client.get("/files/upstream/demo/" + "a" * 64 + "/demo-1.0.tar.gz")
    assert_accelerated(response, "upstream/demo/abcd/demo-1.0.tar.gz")
    assert response["ETag"] == '"' + "a" * 64 + '"'


@pytest.mark.django_db
def test_an_upstream_row_naming_a_file_outside_the_root_is_never_handed_over(
    client: Client, files_dir: Path
) -> None:
    (files_dir.parent / "secret").write_bytes(b"not for anyone")
    UpstreamFile.objects.create(
        url_path="upstream/demo/" + "b" * 64 + "/demo-1.0.tar.gz", storage_name="../secret",
        sha256="b" * 64, size=14, project_name="demo",
    )
    response = client.get("/files/upstream/demo/" + "b" * 64 + "/demo-1.0.tar.gz")
    assert "X-Accel-Redirect" not in response
    assert response.status_code != 200  # Django's storage refuses it too


@pytest.mark.parametrize("name", [
    "../secret_key", "packages/../../secret_key", "/etc/passwd", "packages//x.whl",
    "packages/./x.whl", "packages\\..\\secret_key", "packages/x.whl\x00", "packages/x\n.whl",
    "", ".", "..",
])
def test_names_that_could_leave_the_files_directory_are_refused(
    files_dir: Path, name: str
) -> None:
    assert internal_uri(name) is None


@pytest.mark.parametrize(("name", "uri"), [
    ("packages/ab/x-1.0.whl", "/internal-files/packages/ab/x-1.0.whl"),
    # Encoded, so nginx reads no query, fragment or escape into a name that holds them.
    ("packages/ab/x?y#z%2e%2e.whl", "/internal-files/packages/ab/x%3Fy%23z%252e%252e.whl"),
    ("packages/ab/a b+c.whl", "/internal-files/packages/ab/a%20b%2Bc.whl"),
])
def test_names_are_url_safe(files_dir: Path, name: str, uri: str) -> None:
    assert internal_uri(name) == uri


def test_nothing_is_handed_over_from_storage_that_is_not_a_directory(settings: Any) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    assert internal_uri("packages/ab/x-1.0.whl") is None


@pytest.mark.parametrize(("value", "accepted"), [
    ("", ""), ("/internal-files/", "/internal-files/"), ("/a/b/", "/a/b/"),
    ("internal-files/", None), ("/internal-files", None), ("/../files/", None),
    ("/x y/", None), ("http://files/", None),
])
def test_the_setting_is_a_plain_path_or_relatch_does_not_start(
    tmp_path: Path, value: str, accepted: str | None
) -> None:
    done = settings_for(tmp_path, {"RELATCH_ACCEL_REDIRECT": value}, "ACCEL_REDIRECT")
    if accepted is None:
        assert done.returncode != 0 and "RELATCH_ACCEL_REDIRECT must be a path" in done.stderr
    else:
        assert done.returncode == 0, done.stderr
        assert f'"ACCEL_REDIRECT": "{accepted}"' in done.stdout


def test_a_files_directory_reached_through_a_link_is_still_handed_over(
    settings: Any, tmp_path: Path
) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    use_tmp_storage(settings, tmp_path / "linked")
    assert internal_uri("packages/ab/x-1.0.whl") == PREFIX + "packages/ab/x-1.0.whl"


@pytest.fixture
def upstream(settings: Any) -> Iterator[FakeUpstream]:
    yield from upstream_with_up_pkg(settings)


@pytest.mark.django_db
def test_an_upstream_file_streams_through_relatch_once_then_nginx_sends_it(
    client: Client, upstream: FakeUpstream
) -> None:
    url = file_url(client)
    first, data = download(client, url)
    # The first download is relayed as it is fetched: there is no stored copy to hand over.
    assert "X-Accel-Redirect" not in first and data == WHEEL.content
    stored = UpstreamFile.objects.get()
    again = client.get(url)
    assert_accelerated(again, stored.storage_name)
    assert again["ETag"] == f'"{WHEEL.sha256}"'
    assert len(upstream.requests_for("/dl/")) == 1


@pytest.mark.django_db(transaction=True)
def test_a_kept_answer_hands_over_too_and_a_deleted_file_is_not_handed_over() -> None:
    """The whole-response cache keeps the empty answer like any other (the header with it)
    and drops it when the file's row goes, so nginx is never sent to a deleted file."""

    file = publish(build_wheel())
    django_part = Counted(application.app)
    kept = ResponseCache(django_part, store=ResponseStore())
    path = f"/files/{file.path}"
    for _ in range(2):
        status, headers, body = call_app(kept, path)
        assert (status, body) == (200, b"")
        assert headers["x-accel-redirect"] == [PREFIX + file.path]
    assert django_part.calls == 1
    File.objects.filter(pk=file.pk).delete()
    mark_project_changed(project_id=file.release.project_id)  # as a release deletion does
    status, headers, _ = call_app(kept, path)
    assert status == 404 and "x-accel-redirect" not in headers
