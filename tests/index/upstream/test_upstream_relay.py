"""A first download relayed through a real ``relatch serve`` (gunicorn): whole bytes arrive
whole, and bytes that fail their SHA-256 check end the connection short of Content-Length
(the client sees a broken download) with nothing stored."""

import hashlib
import http.client
import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.index.upstream.fake_upstream import FakeUpstream, Route
from tests.index.upstream.upstream_case import JSON, file_entry, json_page
from tests.serving import Server, running_server

pytestmark = [pytest.mark.slow, pytest.mark.own_database]
GOOD = os.urandom(3 * 1024 * 1024 + 7)  # several chunks: some are relayed before the check
BAD = GOOD[:-1] + bytes([GOOD[-1] ^ 1])


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeUpstream, Server]]:
    fake = FakeUpstream()
    files = []
    for name, body in (("good-pkg", GOOD), ("bad-pkg", BAD)):
        filename = f"{name.replace('-', '_')}-1.0-py3-none-any.whl"
        files.append((name, filename))
        fake.routes[f"/dl/{filename}"] = Route(body=body)
        fake.routes[f"/simple/{name}/"] = Route(body=json_page(name, [file_entry(
            filename, f"{fake.base}/dl/{filename}", hashlib.sha256(GOOD).hexdigest())]),
            content_type=JSON)
    with fake.running(), running_server(tmp_path_factory.mktemp("relay"),
                                        RELATCH_UPSTREAM=fake.url) as server:
        yield fake, server


def _file_url(server: Server, name: str) -> str:
    request = urllib.request.Request(  # noqa: S310 — loopback
        f"{server.url}/simple/{name}/", headers={"Accept": JSON})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 — loopback
        return server.url + json.loads(response.read())["files"][0]["url"]


def _stored(server: Server, filename: str) -> list[Path]:
    return list(server.data_dir.rglob(filename))


def test_a_relayed_download_arrives_whole_and_is_stored(
    servers: tuple[FakeUpstream, Server]
) -> None:
    _, server = servers
    url = _file_url(server, "good-pkg")
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 — loopback
        assert response.headers["Content-Length"] == str(len(GOOD))
        assert response.read() == GOOD
    [copy] = _stored(server, "good_pkg-1.0-py3-none-any.whl")
    assert copy.read_bytes() == GOOD


def test_bytes_that_fail_the_check_break_the_download_and_are_not_stored(
    servers: tuple[FakeUpstream, Server]
) -> None:
    _, server = servers
    url = _file_url(server, "bad-pkg")
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 — loopback
        assert response.status == 200
        with pytest.raises((http.client.IncompleteRead, ConnectionError)):
            response.read()
    assert _stored(server, "bad_pkg-1.0-py3-none-any.whl") == []
    assert "refused, not stored" in server.output()
