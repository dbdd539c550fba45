"""The upstream index behind Relatch's URL (issue 20 §2), against a loopback upstream that
answers what each test says (tests/index/upstream/fake_upstream.py) through the Django test
client: pages kept and revalidated, files fetched once and checked, the dependency-confusion
rule, failures. Never the internet: the upstream is on 127.0.0.1."""

import hashlib
import logging
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import Project, Role, UpstreamFile, UpstreamPage
from relatch.index.simple.documents import API_VERSION
from relatch.index.simple.response_cache import page_marker
from relatch.index.upload.imports import import_distribution
from relatch.index.upload.validation import UploadRefusedError
from relatch.index.upstream.services import UpstreamHashMismatchError
from tests.index.dists import build_wheel
from tests.index.simple_rows import publish
from tests.index.upstream.fake_upstream import FakeUpstream, Route
from tests.index.upstream.upstream_case import JSON, METADATA, WHEEL
from tests.index.upstream.upstream_case import age_page as _age_page
from tests.index.upstream.upstream_case import download as _download
from tests.index.upstream.upstream_case import file_url as _file_url
from tests.index.upstream.upstream_case import page as _page
from tests.serving import relatch_env


def test_a_name_only_upstream_is_served_with_links_to_relatch(
    client: Client, upstream: FakeUpstream
) -> None:
    response = _page(client, "up-pkg")
    assert response.status_code == 200
    assert response["X-Relatch-Upstream"] == "fresh"
    page = response.json()
    assert page["meta"]["api-version"] == API_VERSION  # PEP 700 fields all present
    [entry] = page["files"]  # the file without a SHA-256 is left out
    assert entry["url"] == f"/files/upstream/up-pkg/{WHEEL.sha256}/{WHEEL.filename}"
    assert entry["hashes"] == {"sha256": WHEEL.sha256}
    assert entry["requires-python"] == ">=3.8"
    assert entry["core-metadata"] == {"sha256": hashlib.sha256(METADATA).hexdigest()}
    assert page["versions"] == ["0.9", "1.0"] or page["versions"] == ["1.0"]
    html = _page(client, "up-pkg", "text/html").content.decode()
    assert f'href="/files/upstream/up-pkg/{WHEEL.sha256}/{WHEEL.filename}#sha256=' in html
    assert 'data-requires-python="&gt;=3.8"' in html
    assert "up_pkg-0.9.tar.gz" not in html
    # Asked for PEP 691 JSON first, and fetched once for both forms (the page is kept).
    [seen] = upstream.requests_for("/simple/up-pkg/")
    assert seen.headers["Accept"].startswith(JSON)
    assert UpstreamPage.objects.get().etag == '"v1"'


def test_an_html_only_upstream_is_read(client: Client, upstream: FakeUpstream) -> None:
    href = f"../../dl/{WHEEL.filename}#sha256={WHEEL.sha256}"
    upstream.routes["/simple/html-pkg/"] = Route(
        body=(f'<html><body><a href="{href}" data-requires-python="&gt;=3.9" '
              f'data-yanked="broken">{WHEEL.filename}</a>'
              '<a href="../../dl/x-1.0.tar.gz">x-1.0.tar.gz</a></body></html>').encode(),
        content_type="text/html",
    )
    page = _page(client, "html-pkg").json()
    assert page["meta"]["api-version"] == "1.0"  # no sizes nor upload times from HTML
    [entry] = page["files"]
    assert entry["yanked"] == "broken"
    assert entry["requires-python"] == ">=3.9"
    assert entry["core-metadata"] is False
    response, data = _download(client, entry["url"])
    assert response.status_code == 200
    assert data == WHEEL.content


def test_first_download_fetches_checks_and_stores_later_ones_stay_local(
    client: Client, upstream: FakeUpstream, files_dir: Path
) -> None:
    url = _file_url(client)
    response, data = _download(client, url)
    assert response.status_code == 200
    assert data == WHEEL.content
    assert response["ETag"] == f'"{WHEEL.sha256}"'
    row = UpstreamFile.objects.get()
    assert (row.sha256, row.size, row.project_name) == (WHEEL.sha256, len(WHEEL.content),
                                                        "up-pkg")
    assert (files_dir / row.storage_name).read_bytes() == WHEEL.content
    assert len(upstream.requests_for("/dl/")) == 1
    # The upstream's bytes go away: the stored copy is served, the upstream not asked.
    del upstream.routes[f"/dl/{WHEEL.filename}"]
    response, data = _download(client, url)
    assert (response.status_code, data) == (200, WHEEL.content)
    assert len(upstream.requests_for("/dl/")) == 1


def test_pep_658_metadata_is_fetched_checked_and_stored(
    client: Client, upstream: FakeUpstream
) -> None:
    response, data = _download(client, _file_url(client) + ".metadata")
    assert response.status_code == 200
    assert data == METADATA
    assert response["Content-Type"].startswith("text/plain")
    assert UpstreamFile.objects.get().url_path.endswith(".whl.metadata")


def _tampered(wheel: bytes, same_length: bool) -> bytes:
    if not same_length:
        return wheel + b"backdoor"
    return wheel[:50] + bytes([wheel[50] ^ 1]) + wheel[51:]


@pytest.mark.parametrize("same_length", [True, False])
def test_bytes_that_do_not_match_the_page_are_refused_and_not_stored(
    client: Client, upstream: FakeUpstream, files_dir: Path, caplog: Any, same_length: bool
) -> None:
    """A first download is relayed as it is fetched: bytes that fail their check end it
    short of its Content-Length (the server aborts the connection: the last chunk is held
    back until the check), and nothing is stored. A Range request is not relayed: a 502."""
    upstream.routes[f"/dl/{WHEEL.filename}"] = Route(body=_tampered(WHEEL.content, same_length))
    url = _file_url(client)
    with caplog.at_level(logging.ERROR, logger="relatch.index.upstream"):
        response = client.get(url)
        assert response.status_code == 200  # the headers went out before the body was read
        received = bytearray()
        with pytest.raises(UpstreamHashMismatchError, match="refused and not stored"):
            for chunk in response.streaming_content:
                received += chunk
    assert len(received) < int(response["Content-Length"])
    assert not UpstreamFile.objects.exists()
    assert not list((files_dir / "upstream").rglob("*.whl")) if files_dir.exists() else True
    assert "refused, not stored" in caplog.text
    # Asked again (a Range: stored first, then sliced), the upstream is asked again (nothing
    # was kept), and refused with a reason.
    again = client.get(url, headers={"Range": "bytes=0-9"})
    assert again.status_code == 502
    assert b"SHA-256" in again.content and b"refused and not stored" in again.content
    assert len(upstream.requests_for("/dl/")) == 2
    assert not UpstreamFile.objects.exists()


def test_a_first_download_is_relayed_then_stored(
    client: Client, upstream: FakeUpstream, files_dir: Path
) -> None:
    response = client.get(_file_url(client))
    assert (response.status_code, response["Content-Length"]) == (200, str(len(WHEEL.content)))
    assert response.streaming
    assert not UpstreamFile.objects.exists()  # nothing stored before the bytes were checked
    assert b"".join(response.streaming_content) == WHEEL.content
    row = UpstreamFile.objects.get()
    assert (files_dir / row.storage_name).read_bytes() == WHEEL.content


def test_an_upstream_without_a_length_is_fetched_whole_first(
    client: Client, upstream: FakeUpstream
) -> None:
    upstream.routes[f"/dl/{WHEEL.filename}"] = Route(body=WHEEL.content, chunked=True)
    response, data = _download(client, _file_url(client))
    assert (response.status_code, data) == (200, WHEEL.content)
    assert "Last-Modified" in response  # served from the stored copy, not relayed
    assert UpstreamFile.objects.get().size == len(WHEEL.content)


def test_a_file_not_on_the_kept_page_is_never_fetched(
    client: Client, upstream: FakeUpstream
) -> None:
    _page(client, "up-pkg")
    other = "0" * 64
    for path in (f"/files/upstream/up-pkg/{other}/{WHEEL.filename}",
                 f"/files/upstream/up-pkg/{WHEEL.sha256}/other-1.0.whl",
                 f"/files/upstream/Up_Pkg/{WHEEL.sha256}/{WHEEL.filename}",
                 f"/files/upstream/up-pkg/{WHEEL.sha256}/../{WHEEL.filename}"):
        assert client.get(path).status_code == 404, path
    assert upstream.requests_for("/dl/") == []


def test_revalidation_sends_if_none_match_and_a_304_keeps_the_page(
    client: Client, upstream: FakeUpstream
) -> None:
    first = _page(client, "up-pkg")
    _age_page("up-pkg")
    again = _page(client, "up-pkg")
    assert again.status_code == 200
    assert again["X-Relatch-Upstream"] == "fresh"
    assert again.content == first.content
    seen = upstream.requests_for("/simple/up-pkg/")
    assert len(seen) == 2
    assert seen[1].headers["If-None-Match"] == '"v1"'
    assert timezone.now() - UpstreamPage.objects.get().fetched_at < timedelta(seconds=60)
    # A client's own revalidation of Relatch's page: a 304 from Relatch.
    assert _page(client, "up-pkg", **{"If-None-Match": first["ETag"]}).status_code == 304


@pytest.mark.parametrize("failure", [
    Route(500, b"oops"), Route(503, b"down"), Route(403, b"no"),
    Route(302, headers={"Location": "file:///etc/passwd"}),
    Route(200, b"{not json", JSON),
])
def test_an_upstream_failure_serves_the_kept_page_marked_stale(
    client: Client, upstream: FakeUpstream, failure: Route, caplog: Any
) -> None:
    kept = _page(client, "up-pkg").content
    upstream.routes["/simple/up-pkg/"] = failure
    _age_page("up-pkg")
    with caplog.at_level(logging.WARNING, logger="relatch.index.upstream"):
        response = _page(client, "up-pkg")
    assert response.status_code == 200
    assert response["X-Relatch-Upstream"] == "stale"
    assert response.content == kept
    assert "serving the page kept since" in caplog.text


def test_an_upstream_that_is_down_with_nothing_kept_is_a_502(
    client: Client, settings: Any, caplog: Any
) -> None:
    settings.UPSTREAM_URL = "http://127.0.0.1:9/simple/"  # nothing listens on port 9
    with caplog.at_level(logging.WARNING, logger="relatch.index.upstream"):
        response = _page(client, "up-pkg")
    assert response.status_code == 502
    assert "did not answer for 'up-pkg'" in response.content.decode()
    assert response["Content-Type"].startswith("text/plain")
    assert "nothing kept to serve" in caplog.text


def test_an_upstream_404_is_a_404_and_forgets_the_kept_page(
    client: Client, upstream: FakeUpstream
) -> None:
    assert _page(client, "no-such-pkg").status_code == 404
    _page(client, "up-pkg")
    del upstream.routes["/simple/up-pkg/"]
    _age_page("up-pkg")
    assert _page(client, "up-pkg").status_code == 404
    assert not UpstreamPage.objects.exists()


def test_a_local_name_never_mixes_with_the_upstream(
    client: Client, upstream: FakeUpstream
) -> None:
    """The attack: the upstream holds a higher version of a name published here. Relatch
    serves only its own files and never asks the upstream about the name."""
    local = build_wheel("up-pkg", "0.1", module_source="VALUE = 'local'\n")
    publish(local)
    page = _page(client, "up-pkg").json()
    assert [f["filename"] for f in page["files"]] == [local.filename]
    assert "X-Relatch-Upstream" not in _page(client, "up-pkg")
    # Even the upstream's file URL, guessed, is not fetched for a local name.
    url = f"/files/upstream/up-pkg/{WHEEL.sha256}/{WHEEL.filename}"
    assert client.get(url).status_code == 404
    assert upstream.seen == []


def test_a_reserved_name_is_never_fetched_and_its_owner_uploads_to_it(
    client: Client, upstream: FakeUpstream, user: Any, make_user: Any, tmp_path: Path
) -> None:
    call_command("index_reserve_name", "Up_Pkg", "--owner", "alice")
    project = Project.objects.get(normalized_name="up-pkg")
    assert project.name == "Up_Pkg"
    assert Role.objects.get(project=project).user == user
    event = SecurityEvent.objects.get(kind=EventKind.UPSTREAM_NAME_RESERVED)
    assert (event.user, event.details["project"]) == (user, "Up_Pkg")
    response = _page(client, "up-pkg")
    assert response.status_code == 200
    assert response.json()["files"] == []
    assert "Links for Up_Pkg" in _page(client, "up-pkg", "text/html").content.decode()
    listing = client.get("/simple/")
    assert "Up_Pkg" in b"".join(listing.streaming_content).decode()
    assert client.get("/project/up-pkg/").status_code == 200
    # Its owner publishes to it like to any project of theirs; another account cannot.
    mine = build_wheel("up-pkg", "5.0", module_source="VALUE = 'ours'\n")
    (tmp_path / mine.filename).write_bytes(mine.content)
    import_distribution(source=tmp_path / mine.filename, owner=user)
    theirs = build_wheel("up-pkg", "6.0")
    (tmp_path / theirs.filename).write_bytes(theirs.content)
    with pytest.raises(UploadRefusedError, match="not allowed to upload"):
        import_distribution(source=tmp_path / theirs.filename, owner=make_user(username="eve"))
    files = [f["filename"] for f in _page(client, "up-pkg").json()["files"]]
    assert files == [mine.filename]
    assert upstream.seen == []


def test_reserving_refuses_a_taken_or_invalid_name(client: Client, user: Any) -> None:
    publish(build_wheel("taken", "1.0"))
    for name, message in (("taken", "already a project here"),
                          ("no good!", "not a valid project name")):
        with pytest.raises(Exception, match=message):
            call_command("index_reserve_name", name, "--owner", "alice")
    assert Project.objects.count() == 1
    assert not SecurityEvent.objects.filter(kind=EventKind.UPSTREAM_NAME_RESERVED).exists()


def test_no_upstream_configured_is_a_plain_404(client: Client, settings: Any) -> None:
    settings.UPSTREAM_URL = ""
    assert _page(client, "up-pkg").status_code == 404
    assert client.get(f"/files/upstream/up-pkg/{WHEEL.sha256}/{WHEEL.filename}"
                      ).status_code == 404


def test_upstream_answers_never_enter_the_whole_response_cache(
    client: Client, upstream: FakeUpstream
) -> None:
    """The cache serves kept responses without the view: a page or file whose name is not
    local has no marker, so it is always answered by the view (which revalidates)."""
    url = _file_url(client)
    assert _download(client, url)[0].status_code == 200
    assert page_marker("/simple/up-pkg/") is None
    assert page_marker(url) is None


def _settings_run(tmp_path: Path, **env: str | None) -> subprocess.CompletedProcess[str]:
    environment = relatch_env(tmp_path / "data", RELATCH_SECRET_KEY="k" * 50)
    for name, value in env.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    code = "import relatch.settings as s; print(repr(s.UPSTREAM_URL))"
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.mark.slow
@pytest.mark.parametrize(("value", "expected"), [
    (None, "'https://pypi.org/simple/'"),
    ("", "''"),
    ("http://user:pw@mirror.example:8080/root/pypi/+simple/",
     "'http://user:pw@mirror.example:8080/root/pypi/+simple/'"),
])
def test_the_upstream_setting(tmp_path: Path, value: str | None, expected: str) -> None:
    done = _settings_run(tmp_path, RELATCH_UPSTREAM=value)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


@pytest.mark.slow
@pytest.mark.parametrize("value", [
    "ftp://mirror.example/simple/", "https://pypi.org/simple", "file:///srv/simple/", "pypi",
])
def test_a_bad_upstream_setting_stops_the_start(tmp_path: Path, value: str) -> None:
    done = _settings_run(tmp_path, RELATCH_UPSTREAM=value)
    assert done.returncode != 0
    assert "RELATCH_UPSTREAM must be an http(s) URL ending in /" in done.stderr
