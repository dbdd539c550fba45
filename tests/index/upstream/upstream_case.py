"""What the upstream tests share: a loopback upstream holding up-pkg 1.0 (the ``upstream``
fixture, in conftest.py) and helpers to read Relatch's pages and files through the test
client."""

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils import timezone

from relatch.index.models import UpstreamPage
from tests.index.dists import build_wheel
from tests.index.upstream.fake_upstream import FakeUpstream, Route

JSON = "application/vnd.pypi.simple.v1+json"
PIP_ACCEPT = f"{JSON}, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
WHEEL = build_wheel("up-pkg", "1.0", module_source="VALUE = 'upstream'\n")
METADATA = WHEEL.metadata.encode()


def json_page(name: str, files: list[dict[str, Any]]) -> bytes:
    return json.dumps({"meta": {"api-version": "1.1"}, "name": name, "files": files}).encode()


def file_entry(filename: str, url: str, sha256: str | None, **extra: Any) -> dict[str, Any]:
    return {"filename": filename, "url": url, "hashes": {"sha256": sha256} if sha256 else {},
            "yanked": False, **extra}


def upstream_with_up_pkg(settings: Any) -> Iterator[FakeUpstream]:
    """A loopback upstream with up-pkg 1.0 (wheel, PEP 658 metadata) and a file without a
    hash, as Relatch's upstream."""
    fake = FakeUpstream()
    fake.routes["/simple/up-pkg/"] = Route(
        body=json_page("up-pkg", [
            file_entry(WHEEL.filename, f"{fake.base}/dl/{WHEEL.filename}", WHEEL.sha256,
                       size=len(WHEEL.content), **{"upload-time": "2025-01-02T03:04:05Z"},
                       **{"requires-python": ">=3.8", "core-metadata": {
                           "sha256": hashlib.sha256(METADATA).hexdigest()}}),
            file_entry("up_pkg-0.9.tar.gz", f"{fake.base}/dl/up_pkg-0.9.tar.gz", None),
        ]),
        content_type=JSON, etag='"v1"',
    )
    fake.routes[f"/dl/{WHEEL.filename}"] = Route(body=WHEEL.content)
    fake.routes[f"/dl/{WHEEL.filename}.metadata"] = Route(body=METADATA)
    settings.UPSTREAM_URL = fake.url
    settings.UPSTREAM_PAGE_SECONDS = 600
    with fake.running():
        yield fake


def page(client: Client, name: str, accept: str = PIP_ACCEPT, **headers: str) -> Any:
    return client.get(f"/simple/{name}/", headers={"Accept": accept, **headers})


def download(client: Client, url: str) -> Any:
    response = client.get(url)
    data = b"".join(response.streaming_content) if response.streaming else response.content
    return response, data


def file_url(client: Client) -> str:
    return str(page(client, "up-pkg").json()["files"][0]["url"])


def age_page(name: str, seconds: int = 3600) -> None:
    UpstreamPage.objects.filter(normalized_name=name).update(
        fetched_at=timezone.now() - timedelta(seconds=seconds))
