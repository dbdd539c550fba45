"""/simple/ and /simple/<project>/: PEP 503 HTML and PEP 691/700 JSON chosen by ``Accept``,
PEP 592 yanks, PEP 658/714 metadata, redirects, ETags and a fixed number of queries."""

import json
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from relatch.index.changes import mark_project_changed
from relatch.index.models import Project
from relatch.index.simple.negotiation import choose_content_type
from tests.index.dists import build_sdist, build_wheel
from tests.index.simple_rows import publish

JSON = "application/vnd.pypi.simple.v1+json"
HTML = "application/vnd.pypi.simple.v1+html"
PIP_ACCEPT = f"{JSON}, {HTML}; q=0.1, text/html; q=0.01"



class Anchors(HTMLParser):
    """Every <a> of a page: its attributes (entities decoded) and its text."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.links: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open = dict(attrs)

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.links.append((self._open, data))
            self._open = None


def get(client: Client, path: str, accept: str | None = None, **headers: str) -> Any:
    if accept is not None:
        headers["Accept"] = accept
    return client.get(path, headers=headers)


def body(response: Any) -> str:
    data = b"".join(response.streaming_content) if response.streaming else response.content
    return data.decode()


@pytest.mark.parametrize(("accept", "chosen"), [
    ("", "text/html"),
    ("*/*", "text/html"),
    ("text/html", "text/html"),
    ("text/*", "text/html"),
    (JSON, JSON),
    ("application/vnd.pypi.simple.latest+json", JSON),
    ("application/vnd.pypi.simple.latest+html", HTML),
    (HTML, HTML),
    (PIP_ACCEPT, JSON),
    (f"{JSON}; q=0.2, text/html; q=0.9", "text/html"),
    (f"text/html; q=0.5, {HTML}; q=0.5", "text/html"),  # a tie: the client's order decides
    (f"{HTML}, {JSON}", HTML),
    ("*/*, text/html; q=0", HTML),  # the specific q=0 excludes text/html, */* admits the rest
    (f"{JSON}; q=0, */*", "text/html"),
    ("application/json", None),
    ("image/png, text/plain", None),
    (f"{JSON}; q=0", None),
    ("text/html; q=nonsense", None),
    ("garbage", None),
])
def test_negotiation_follows_pep_691(accept: str, chosen: str | None) -> None:
    assert choose_content_type(accept) == chosen


@pytest.mark.django_db
@pytest.mark.parametrize(("accept", "media_type"), [
    (None, "text/html"), (PIP_ACCEPT, JSON), (HTML, HTML), ("text/html", "text/html"),
])
def test_the_chosen_type_is_the_response_type(client: Client, accept: str | None,
                                              media_type: str) -> None:
    publish(build_wheel())
    for path in ("/simple/", "/simple/sample-pkg/"):
        response = get(client, path, accept)
        assert response.status_code == 200
        assert response["Content-Type"].split(";")[0] == media_type
        assert "Accept" in response["Vary"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/simple/", "/simple/sample-pkg/"])
def test_nothing_acceptable_is_406(client: Client, path: str) -> None:
    publish(build_wheel())
    response = get(client, path, "application/json")
    assert response.status_code == 406
    assert JSON in response.content.decode()


@pytest.mark.django_db
def test_format_query_overrides_accept(client: Client) -> None:
    publish(build_wheel())
    response = get(client, f"/simple/sample-pkg/?format={JSON}", "text/html")
    assert response["Content-Type"] == JSON
    assert json.loads(response.content)["name"] == "sample-pkg"


@pytest.mark.django_db
def test_index_lists_every_project_in_html(client: Client) -> None:
    publish(build_wheel("Sample_Pkg"))
    publish(build_wheel("zeta.tool", "2.0"))
    response = get(client, "/simple/")
    assert response.streaming  # 200 000 projects never sit in memory
    assert Anchors(body(response)).links == [
        ({"href": "/simple/sample-pkg/"}, "Sample_Pkg"),
        ({"href": "/simple/zeta-tool/"}, "zeta.tool"),
    ]
    assert '<meta name="pypi:repository-version" content="1.4">' in body(get(client, "/simple/"))


@pytest.mark.django_db
def test_index_lists_every_project_in_json(client: Client) -> None:
    publish(build_wheel("Sample_Pkg"))
    publish(build_wheel("zeta.tool", "2.0"))
    document = json.loads(body(get(client, "/simple/", JSON)))
    assert document == {
        "meta": {"api-version": "1.4"},
        "projects": [{"name": "Sample_Pkg"}, {"name": "zeta.tool"}],
    }


@pytest.mark.django_db
def test_empty_index_is_valid_json(client: Client) -> None:
    assert json.loads(body(get(client, "/simple/", JSON)))["projects"] == []


@pytest.mark.django_db
def test_index_etag_revalidates_and_changes_with_a_new_project(client: Client) -> None:
    publish(build_wheel())
    first = get(client, "/simple/", JSON)
    etag = first["ETag"]
    assert first["Cache-Control"] == "public, max-age=60"
    again = get(client, "/simple/", JSON, **{"If-None-Match": etag})
    assert again.status_code == 304
    assert again["ETag"] == etag
    assert get(client, "/simple/", "text/html")["ETag"] != etag  # each format its own tag
    publish(build_wheel("another"))
    assert get(client, "/simple/", JSON, **{"If-None-Match": etag}).status_code == 200


@pytest.mark.django_db
def test_project_page_html_has_hashes_requires_python_yanks_and_metadata(client: Client) -> None:
    wheel = publish(build_wheel(version="1.0", requires_python=">=3.8,<4"))
    yanked = publish(build_wheel(version="1.1"), yanked_reason='broken <"import">')
    sdist = publish(build_sdist(version="1.0"))
    page = body(get(client, "/simple/sample-pkg/"))
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in page  # PEP 503: HTML-escaped
    links = {text: attrs for attrs, text in Anchors(page).links}
    assert set(links) == {wheel.filename, yanked.filename, sdist.filename}
    assert links[wheel.filename] == {
        "href": f"/files/{wheel.path}#sha256={wheel.sha256_digest}",
        "data-requires-python": ">=3.8,<4",
        "data-dist-info-metadata": f"sha256={wheel.metadata_sha256_digest}",
        "data-core-metadata": f"sha256={wheel.metadata_sha256_digest}",
    }
    assert links[yanked.filename]["data-yanked"] == 'broken <"import">'
    assert "data-yanked" not in links[wheel.filename]
    assert "data-core-metadata" not in links[sdist.filename]  # no PEP 658 file for sdists
    assert "<h1>Links for sample-pkg</h1>" in page


@pytest.mark.django_db
def test_yank_without_reason_is_an_empty_attribute(client: Client) -> None:
    publish(build_wheel(), yanked_reason="")
    [(attrs, _text)] = Anchors(body(get(client, "/simple/sample-pkg/"))).links
    assert attrs["data-yanked"] in ("", None)
    assert "data-yanked" in attrs


@pytest.mark.django_db
def test_project_page_json_per_pep_691_and_700(client: Client) -> None:
    uploaded = timezone.now().replace(microsecond=123456)
    wheel = publish(build_wheel(version="1.0"), uploaded_at=uploaded)
    publish(build_wheel(version="1.1"), yanked_reason="broken")
    publish(build_wheel(version="1.2"), yanked_reason="")
    sdist = publish(build_sdist(version="0.9", requires_python=""))
    document = json.loads(body(get(client, "/simple/sample-pkg/", JSON)))
    assert document["meta"] == {"api-version": "1.4"}
    assert document["name"] == "sample-pkg"
    assert document["versions"] == ["0.9", "1.0", "1.1", "1.2"]  # PEP 440 order
    files = {entry["filename"]: entry for entry in document["files"]}
    assert files[wheel.filename] == {
        "filename": wheel.filename,
        "url": f"/files/{wheel.path}",
        "hashes": {"sha256": wheel.sha256_digest},
        "requires-python": ">=3.8",
        "yanked": False,
        # PEP 714: no "dist-info-metadata" in JSON (pip 22.3 to 23.1 crash on it).
        "core-metadata": {"sha256": wheel.metadata_sha256_digest},
        "size": wheel.size,
        "upload-time": uploaded.strftime("%Y-%m-%dT%H:%M:%S.123456Z"),
    }
    assert files["sample_pkg-1.1-py3-none-any.whl"]["yanked"] == "broken"
    assert files["sample_pkg-1.2-py3-none-any.whl"]["yanked"] is True
    assert files[sdist.filename]["core-metadata"] is False
    assert all("dist-info-metadata" not in entry for entry in document["files"])
    assert "requires-python" not in files[sdist.filename]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "target"), [
    ("/simple/Sample_Pkg/", "/simple/sample-pkg/"),
    ("/simple/sample.pkg/", "/simple/sample-pkg/"),
    ("/simple/SAMPLE--pkg/?format=text/html", "/simple/sample-pkg/?format=text/html"),
    ("/simple/unknown_Name/", "/simple/unknown-name/"),
])
def test_non_normalised_names_redirect(client: Client, path: str, target: str) -> None:
    publish(build_wheel())
    response = get(client, path, JSON)
    assert response.status_code == 301
    assert response["Location"] == target


@pytest.mark.django_db
def test_redirect_lands_on_the_page(client: Client) -> None:
    publish(build_wheel("Sample_Pkg"))
    response = client.get("/simple/Sample_Pkg/", follow=True)
    assert response.redirect_chain == [("/simple/sample-pkg/", 301)]
    assert response.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("accept", [None, JSON])
def test_unknown_project_is_404(client: Client, accept: str | None) -> None:
    publish(build_wheel())
    assert get(client, "/simple/nothing-here/", accept).status_code == 404


@pytest.mark.django_db
def test_project_etag_revalidates_and_changes_when_the_project_changes(client: Client) -> None:
    publish(build_wheel())
    first = get(client, "/simple/sample-pkg/", JSON)
    etag = first["ETag"]
    assert first["Cache-Control"] == "public, max-age=60"
    cached = get(client, "/simple/sample-pkg/", JSON, **{"If-None-Match": f'"other", {etag}'})
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached["ETag"] == etag
    assert get(client, "/simple/sample-pkg/", HTML, **{"If-None-Match": etag}).status_code == 200
    mark_project_changed(project_id=Project.objects.get().pk)  # e.g. a yank
    assert get(client, "/simple/sample-pkg/", JSON, **{"If-None-Match": etag}).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("accept", ["text/html", JSON])
def test_queries_do_not_grow_with_releases(accept: str, django_assert_num_queries: Any) -> None:
    client = Client()  # a plain client: the fixture's also polls the task queue
    publish(build_wheel(version="1.0"))
    with django_assert_num_queries(3 if accept == JSON else 2):
        assert get(client, "/simple/sample-pkg/", accept).status_code == 200
    for minor in range(1, 8):
        publish(build_wheel(version=f"1.{minor}"))
        publish(build_sdist(version=f"1.{minor}"))
    with django_assert_num_queries(3 if accept == JSON else 2):
        assert get(client, "/simple/sample-pkg/", accept).status_code == 200


@pytest.mark.django_db
def test_index_queries_are_fixed(django_assert_num_queries: Any) -> None:
    client = Client()
    for n in range(30):
        publish(build_wheel(f"project-{n}"))
    with django_assert_num_queries(2):
        assert len(Anchors(body(get(client, "/simple/"))).links) == 30


@pytest.mark.django_db
def test_pages_are_public_and_read_only(client: Client, signed_in: Client) -> None:
    publish(build_wheel())
    assert signed_in.get("/simple/sample-pkg/").status_code == 200
    assert client.post("/simple/sample-pkg/").status_code == 405
    assert client.head("/simple/").status_code == 200


@pytest.mark.django_db
def test_a_page_is_built_once_per_change_and_never_served_stale(
    django_assert_num_queries: Any,
) -> None:
    """The body is cached under the ETag: a repeat costs one lookup, and a yank (which bumps
    the project's last change) shows at once."""
    client = Client()
    publish(build_wheel(version="1.0"))
    first = body(get(client, "/simple/sample-pkg/"))
    with django_assert_num_queries(1):  # the project's row only: the page comes from the cache
        assert body(get(client, "/simple/sample-pkg/")) == first
    assert "data-yanked" not in first
    publish(build_wheel(version="1.1"), yanked_reason="broken")
    after = body(get(client, "/simple/sample-pkg/"))
    assert "1.1-py3-none-any.whl" in after and 'data-yanked="broken"' in after
