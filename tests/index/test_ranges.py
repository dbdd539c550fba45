"""/files/ as download managers, resuming installers and caches use it: single byte ranges
(RFC 9110 §14), If-Range (§13.1.5), Last-Modified and If-Modified-Since (§13.1.3, §13.2.2)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils.http import http_date

from relatch.index.models import File
from relatch.index.simple.ranges import UNSATISFIABLE, ByteRange, parse_range
from relatch.index.simple.response_cache import ResponseCache, ResponseStore
from relatch.wsgi import application
from tests.index.dists import build_wheel
from tests.index.simple_rows import publish
from tests.index.wsgi_calls import Counted, call_app

UPLOADED = datetime(2025, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
UPLOADED_HTTP = "Tue, 04 Mar 2025 05:06:07 GMT"


def content(response: Any) -> bytes:
    return b"".join(response.streaming_content)


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-0", ByteRange(0, 0)),
    ("bytes=10-19", ByteRange(10, 19)),
    ("bytes=10-", ByteRange(10, 99)),
    ("bytes=90-500", ByteRange(90, 99)),  # an end past the file is cut to it
    ("bytes=-10", ByteRange(90, 99)),
    ("bytes=-500", ByteRange(0, 99)),  # a suffix longer than the file is all of it
    (" Bytes = 5 - 6 ", ByteRange(5, 6)),  # the unit is case-insensitive; spaces allowed
    ("bytes=100-", UNSATISFIABLE),
    ("bytes=100-200", UNSATISFIABLE),
    ("bytes=-0", UNSATISFIABLE),
    ("bytes=5-2", None),  # invalid: ignored, the whole file
    ("bytes=0-1,5-6", None),  # several ranges: the whole file (RFC 9110 allows ignoring)
    ("bytes=-", None),
    ("bytes=+1-2", None),
    ("items=0-1", None),
    ("bytes=0-99999999999999999999999", None),  # absurd numbers are not parsed
    ("", None),
])
def test_range_header_is_read_as_rfc_9110_says(header: str, expected: object) -> None:
    assert parse_range(header, 100) == expected


def test_every_range_of_an_empty_file_is_unsatisfiable() -> None:
    assert parse_range("bytes=0-", 0) is UNSATISFIABLE
    assert parse_range("bytes=-5", 0) is UNSATISFIABLE


@pytest.fixture
def wheel(db: None) -> tuple[File, bytes]:
    dist = build_wheel(module_source="VALUE = '" + "x" * 5000 + "'\n")
    return publish(dist, uploaded_at=UPLOADED), dist.content


@pytest.mark.parametrize(("header", "start", "end"), [
    ("bytes=0-99", 0, 99),
    ("bytes=100-", 100, None),
    ("bytes=-50", -50, None),
    ("bytes=7-7", 7, 7),
])
def test_a_resumed_download_gets_exactly_the_bytes_it_asks_for(
    client: Client, wheel: tuple[File, bytes], header: str, start: int, end: int | None
) -> None:
    file, data = wheel
    response = client.get(f"/files/{file.path}", headers={"Range": header})
    expected = data[start:] if end is None else data[start:end + 1]
    first = start % len(data)
    assert response.status_code == 206
    assert content(response) == expected
    assert response["Content-Length"] == str(len(expected))
    assert response["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(data)}"
    assert response["Accept-Ranges"] == "bytes"
    assert response["ETag"] == f'"{file.sha256_digest}"'
    assert response["Content-Type"] == "application/octet-stream"


def test_the_pieces_of_a_download_make_the_file(client: Client, wheel: tuple[File, bytes]) -> None:
    file, data = wheel
    middle = len(data) // 2
    head = content(client.get(f"/files/{file.path}", headers={"Range": f"bytes=0-{middle - 1}"}))
    tail = content(client.get(f"/files/{file.path}", headers={"Range": f"bytes={middle}-"}))
    assert head + tail == data


def test_the_metadata_file_has_ranges_too(client: Client, wheel: tuple[File, bytes]) -> None:
    file, _ = wheel
    whole = content(client.get(f"/files/{file.path}.metadata"))
    response = client.get(f"/files/{file.path}.metadata", headers={"Range": "bytes=0-9"})
    assert response.status_code == 206
    assert content(response) == whole[:10]


def test_a_whole_download_says_ranges_are_accepted(
    client: Client, wheel: tuple[File, bytes]
) -> None:
    file, data = wheel
    response = client.get(f"/files/{file.path}")
    assert response.status_code == 200
    assert content(response) == data
    assert response["Accept-Ranges"] == "bytes"
    assert response["Last-Modified"] == UPLOADED_HTTP


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=9-3", "lines=1-2", "bytes=x-"])
def test_ranges_not_honoured_give_the_whole_file(
    client: Client, wheel: tuple[File, bytes], header: str
) -> None:
    file, data = wheel
    response = client.get(f"/files/{file.path}", headers={"Range": header})
    assert response.status_code == 200
    assert content(response) == data
    assert "Content-Range" not in response


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size}-{more}", "bytes=-0"])
def test_a_range_past_the_end_is_416_with_the_size(
    client: Client, wheel: tuple[File, bytes], header: str
) -> None:
    file, data = wheel
    asked = header.format(size=len(data), more=len(data) + 10)
    response = client.get(f"/files/{file.path}", headers={"Range": asked})
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(data)}"
    # A shared cache must not keep the refusal and send it to requests without a Range.
    assert response["Cache-Control"] == "no-store"


def _if_range_values(file: File) -> dict[str, str]:
    return {
        "etag": f'"{file.sha256_digest}"',
        "date": UPLOADED_HTTP,
    }


@pytest.mark.parametrize("kind", ["etag", "date"])
def test_if_range_matching_the_file_gets_the_range(
    client: Client, wheel: tuple[File, bytes], kind: str
) -> None:
    file, data = wheel
    validator = _if_range_values(file)[kind]
    response = client.get(
        f"/files/{file.path}", headers={"Range": "bytes=10-", "If-Range": validator}
    )
    assert response.status_code == 206
    assert content(response) == data[10:]


@pytest.mark.parametrize("validator", [
    '"0000000000000000000000000000000000000000000000000000000000000000"',  # another file
    "W/\"{digest}\"",  # weak tags never match for ranges (strong comparison)
    "Tue, 04 Mar 2025 05:06:08 GMT",  # another date
    "not a date",
])
def test_if_range_not_matching_gets_the_whole_file(
    client: Client, wheel: tuple[File, bytes], validator: str
) -> None:
    """The client holds other bytes than these: a slice glued to them would be corrupt."""
    file, data = wheel
    response = client.get(f"/files/{file.path}", headers={
        "Range": "bytes=10-", "If-Range": validator.format(digest=file.sha256_digest),
    })
    assert response.status_code == 200
    assert content(response) == data


def test_head_with_a_range_answers_for_the_whole_file(
    client: Client, wheel: tuple[File, bytes]
) -> None:
    """RFC 9110 §14.2 defines ranges for GET only."""
    file, data = wheel
    response = client.head(f"/files/{file.path}", headers={"Range": "bytes=0-9"})
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(data))
    assert response["Accept-Ranges"] == "bytes"
    assert response["Last-Modified"] == UPLOADED_HTTP


@pytest.mark.parametrize(("since", "status"), [
    (UPLOADED_HTTP, 304),
    (http_date((UPLOADED + timedelta(days=1)).timestamp()), 304),
    (http_date((UPLOADED - timedelta(seconds=1)).timestamp()), 200),
    ("yesterday", 200),  # not a date: ignored
])
def test_if_modified_since_on_a_file(
    client: Client, wheel: tuple[File, bytes], since: str, status: int
) -> None:
    file, _ = wheel
    response = client.get(f"/files/{file.path}", headers={"If-Modified-Since": since})
    assert response.status_code == status
    assert response["ETag"] == f'"{file.sha256_digest}"'


def test_if_none_match_decides_over_if_modified_since(
    client: Client, wheel: tuple[File, bytes]
) -> None:
    """RFC 9110 §13.2.2: a date is not consulted when the client sends a tag."""
    file, data = wheel
    response = client.get(f"/files/{file.path}", headers={
        "If-None-Match": '"another"', "If-Modified-Since": UPLOADED_HTTP,
    })
    assert response.status_code == 200
    assert content(response) == data


def test_a_matching_tag_is_304_even_with_a_range(
    client: Client, wheel: tuple[File, bytes]
) -> None:
    file, _ = wheel
    response = client.get(f"/files/{file.path}", headers={
        "If-None-Match": f'"{file.sha256_digest}"', "Range": "bytes=0-9",
    })
    assert response.status_code == 304


@pytest.mark.django_db(transaction=True)
def test_kept_responses_never_answer_a_range() -> None:
    """The whole-response cache keeps the plain GET, and still sends a Range (and any other
    conditional request) to Django."""
    dist = build_wheel()
    file = publish(dist)
    django_part = Counted(application.app)
    kept = ResponseCache(django_part, store=ResponseStore())
    path = f"/files/{file.path}"
    assert call_app(kept, path)[2] == dist.content
    assert call_app(kept, path)[2] == dist.content
    assert django_part.calls == 1  # the second was sent from what was kept
    status, headers, body = call_app(kept, path, range="bytes=3-5")
    assert (status, body) == (206, dist.content[3:6])
    assert headers["content-range"] == [f"bytes 3-5/{len(dist.content)}"]
    status, _, body = call_app(kept, path, if_modified_since=http_date(2**31))
    assert (status, body) == (304, b"")
    assert django_part.calls == 3
