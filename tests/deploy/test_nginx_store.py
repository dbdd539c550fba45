"""Files kept in an S3 bucket and sent by nginx (deploy/nginx.conf's ``/internal-store/``):
two real ``relatch serve`` hosts with ``RELATCH_FILES_URL`` on a real S3 server (SeaweedFS)
and ``RELATCH_ACCEL_REDIRECT=/internal-store/``. Relatch checks every request and presigns the
object's URL for one answer; nginx fetches it from the store without the client's credentials
and answers with Relatch's validators."""

import re
from collections.abc import Iterator

import pytest

from tests import private_postgres
from tests.deploy import nginx as nginx_runner
from tests.deploy.test_nginx import (
    Deployment,
    big_wheel,
    deployed,
    file_path,
    make_private,
    published,
)
from tests.index.read_tokens import server_read_token, token_header
from tests.s3store import S3Store, running_seaweedfs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.own_database,
    pytest.mark.skipif(bool(nginx_runner.available()), reason=nginx_runner.available()),
    pytest.mark.skipif(bool(private_postgres.available()), reason=private_postgres.available()),
]

STORE_ACCEL = "/internal-store/"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Store]:
    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as running:
        yield running


@pytest.fixture(scope="module")
def deployment(store: S3Store, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Deployment]:
    settings = {**store.env("nginx"), "RELATCH_ACCEL_REDIRECT": STORE_ACCEL}
    with deployed(tmp_path_factory.mktemp("deployment"), store=store.endpoint.split("//")[1],
                  **settings) as made:
        yield made


def test_nginx_sends_bucket_files_with_relatchs_validators(
    deployment: Deployment, store: S3Store
) -> None:
    wheel = big_wheel("store-demo")
    uploaded = deployment.twine(wheel)
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    stored = file_path(deployment, wheel.filename)
    assert store.objects(f"nginx/{stored}") == {
        f"nginx/{stored}": len(wheel.content), f"nginx/{stored}.metadata": len(wheel.metadata)}
    path = "/files/" + stored

    served = deployment.get(path)
    assert served.status == 200 and served.body == wheel.content
    assert served.headers["etag"] == f'"{wheel.sha256}"'
    assert served.headers["content-type"] == "application/octet-stream"
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert not any(name.startswith("x-amz-") for name in served.headers)
    # Asked directly, a host answers with no byte and where nginx fetches it from.
    direct = deployment.direct(deployment.hosts[0], path)
    assert direct.status == 200 and direct.body == b""
    target = direct.headers["x-accel-redirect"]
    assert target.startswith(f"{STORE_ACCEL}{wheel.sha256}/{store.bucket}/nginx/{stored}?")
    assert "X-Amz-Signature=" in target
    logged = [line for line in deployment.nginx.access_lines() if f"GET {path} " in line]
    # Two upstreams answered it, a host and then the store: the bytes came from the store.
    store_address = store.endpoint.split("//")[1]
    assert logged and re.search(rf"upstream=\S+ : {store_address} upstream_status=200 : 200 ",
                                logged[-1]), logged

    # A resumed download: the store sends the slice Relatch allowed, whatever If-Range the
    # client sent (the store's own ETag differs; nginx does not pass it on).
    part = deployment.get(path, Range="bytes=1000-50999", **{"If-Range": f'"{wheel.sha256}"'})
    assert part.status == 206 and part.body == wheel.content[1000:51000]
    assert part.headers["content-range"] == f"bytes 1000-50999/{len(wheel.content)}"
    assert deployment.get(path, **{"If-None-Match": f'"{wheel.sha256}"'}).status == 304

    # The internal location is nginx's alone, and a replayed target is refused.
    assert deployment.get(target).status == 404
    assert deployment.get(re.sub(r"X-Amz-Signature=\w+", "X-Amz-Signature=0", target)
                          ).status == 404


def test_a_private_bucket_file_needs_a_reader_and_stays_out_of_shared_caches(
    deployment: Deployment
) -> None:
    wheel = big_wheel("hidden-store-demo")
    path = published(deployment, wheel)
    make_private(deployment, "hidden-store-demo")

    anonymous = deployment.get(path)
    assert anonymous.status == 401 and wheel.content not in anonymous.body
    # The reader's token reaches Relatch, which allows it; the store never sees it (it
    # would refuse a request signed twice), and the answer is the reader's alone.
    reader = token_header(server_read_token(deployment.hosts[0], "maria"))
    allowed = deployment.get(path, Authorization=reader)
    assert allowed.status == 200 and allowed.body == wheel.content
    assert allowed.headers["cache-control"] == "private, max-age=31536000, immutable"


def test_a_store_that_fails_is_said_plainly(deployment: Deployment, store: S3Store) -> None:
    path = published(deployment, big_wheel("gone-store-demo"))
    stored = path.removeprefix("/files/")
    # The object lost behind Relatch's back: nginx's fetch fails, and the client is told it
    # is the store, not shown the store's error document.
    store.client().delete_object(Bucket=store.bucket, Key=f"nginx/{stored}")
    answer = deployment.get(path)
    assert answer.status == 503, answer
    assert answer.body == b"The file store is unavailable; try again shortly.\n"
    assert answer.headers["retry-after"] == "10"
    assert answer.headers["cache-control"] == "no-store"
