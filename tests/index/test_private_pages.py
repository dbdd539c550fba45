"""Private projects on the browser pages (issue 20): the project and version pages, a user's
page and the home page follow the installers' read rules (relatch.index.simple.access). A
visitor without rights to a private project gets the 404 a missing name gets, and its name
and README appear nowhere; with RELATCH_READ_ACCESS=authenticated an anonymous visitor is sent
to sign in. Staff get no way around a private project."""

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from relatch.accounts.models import User
from relatch.index.models import Project, Role
from tests.conftest import CommittingClient, sign_in
from tests.index.test_pages import make_project, make_release

pytestmark = pytest.mark.django_db
SECRET_README = "Hushhush launch plan for the orbital toaster."
PUBLIC_README = "Openly documented widget."
# What must not reach an outsider: the name in every spelling, and the README.
SECRET_MARKS = ("zqx", "hushhush", "orbital toaster")
VIEWERS = ["anonymous", "other-account", "role-holder", "owner", "staff"]
HOLDERS = {"role-holder", "owner"}
SECRET_PAGES = ["/project/zqx-secret/", "/project/zqx-secret/1.0/",
                "/project/zqx-secret/1.0.0/",  # a version spelling that redirects members
                "/project/Zqx_Secret/"]  # a name spelling: redirects everyone (any name does)
LIST_PAGES = ["/", "/user/alice/", "/user/maria/"]
LOGIN = reverse("signin:login")
# Random per response: a masked CSRF token could hold "zqx" by chance.
_PER_RESPONSE = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]*"|nonce="[^"]*"')


@pytest.fixture
def people(make_user: Any) -> dict[str, User]:
    """alice owns zqx-secret (private) and open-widget; maria maintains zqx-secret; bob has
    no role; dana is staff without a role."""
    alice = make_user(username="alice")
    maria = make_user(username="maria")
    secret = make_project("Zqx_Secret", private=True)
    make_release(secret, "1.0", summary="Zqx summary", description=SECRET_README,
                 description_content_type="text/plain")
    widget = make_project("open-widget")
    make_release(widget, "2.0", description=PUBLIC_README, description_content_type="text/plain")
    Role.objects.create(project=secret, user=alice, kind=Role.Kind.OWNER)
    Role.objects.create(project=widget, user=alice, kind=Role.Kind.OWNER)
    Role.objects.create(project=secret, user=maria, kind=Role.Kind.MAINTAINER)
    return {"owner": alice, "role-holder": maria, "other-account": make_user(username="bob"),
            "staff": make_user(username="dana", is_staff=True)}


@pytest.fixture(params=["public", "authenticated"])
def mode(request: Any, settings: Any) -> str:
    settings.READ_ACCESS = request.param
    return str(request.param)


def browser(viewer: str, people: dict[str, User]) -> CommittingClient:
    client = CommittingClient()
    if viewer != "anonymous":
        sign_in(client, people[viewer])
    return client


def text_of(response: Any) -> str:
    return response.content.decode().lower()


def assert_nothing_told(response: Any) -> None:
    body = _PER_RESPONSE.sub(b"", response.content).decode().lower()
    for mark in SECRET_MARKS:
        assert mark not in body, (mark, response.status_code)


def assert_sent_to_sign_in(response: Any, path: str) -> None:
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == LOGIN
    assert parse_qs(location.query) == {"next": [path]}
    assert response.content == b""


def assert_private(response: Any) -> None:
    assert "private" in response["Cache-Control"]
    assert "Cookie" in response["Vary"]


@pytest.mark.parametrize("viewer", VIEWERS)
@pytest.mark.parametrize("path", SECRET_PAGES)
def test_a_private_project_page_is_shown_to_its_people_only(
    people: dict[str, User], mode: str, viewer: str, path: str
) -> None:
    response = browser(viewer, people).get(path)
    if viewer == "anonymous" and mode == "authenticated":
        assert_sent_to_sign_in(response, path)
    elif path == "/project/Zqx_Secret/":  # before any lookup: tells nothing
        assert response.status_code == 301
        assert response["Location"] == "/project/zqx-secret/"
    elif viewer not in HOLDERS:
        assert response.status_code == 404  # not 403: the same as a name that does not exist
        assert_nothing_told(response)
    elif path.endswith("1.0.0/"):
        assert response.status_code == 301
        assert response["Location"] == "/project/zqx-secret/1.0/"
    else:
        assert response.status_code == 200
        body = text_of(response)
        assert "zqx_secret" in body and SECRET_README.lower() in body
        assert_private(response)


@pytest.mark.parametrize(("read_access", "viewer"), [
    ("public", "anonymous"), ("public", "other-account"), ("public", "staff"),
    ("authenticated", "other-account"), ("authenticated", "staff"),
])
def test_an_outsiders_404_is_the_one_a_missing_name_gets(
    people: dict[str, User], settings: Any, read_access: str, viewer: str
) -> None:
    settings.READ_ACCESS = read_access
    client = browser(viewer, people)
    secret = client.get("/project/zqx-secret/")
    missing = client.get("/project/zqx-missing/")
    assert secret.status_code == missing.status_code == 404
    assert _unmasked(secret.content, b"zqx-secret") == _unmasked(missing.content, b"zqx-missing")


def _unmasked(body: bytes, path_name: bytes) -> bytes:
    """The body without what differs per response anyway (CSRF masks, CSP nonces) and the
    name that was asked for."""
    return _PER_RESPONSE.sub(b"", body.replace(path_name, b""))


@pytest.mark.parametrize("viewer", VIEWERS)
@pytest.mark.parametrize("path", LIST_PAGES)
def test_lists_name_a_private_project_to_its_people_only(
    people: dict[str, User], mode: str, viewer: str, path: str
) -> None:
    response = browser(viewer, people).get(path)
    if viewer == "anonymous" and mode == "authenticated":
        assert_sent_to_sign_in(response, path)
        return
    assert response.status_code == 200
    body = text_of(response)
    assert 'href="/project/open-widget/"' in body or path == "/user/maria/"
    if viewer in HOLDERS:
        assert 'href="/project/zqx-secret/"' in body and ">zqx_secret<" in body
    else:
        assert_nothing_told(response)


@pytest.mark.parametrize("viewer", ["anonymous", "other-account", "staff"])
def test_a_public_project_page_in_each_mode(people: dict[str, User], mode: str, viewer: str
                                            ) -> None:
    response = browser(viewer, people).get("/project/open-widget/")
    if viewer == "anonymous" and mode == "authenticated":
        assert_sent_to_sign_in(response, "/project/open-widget/")
        return
    assert response.status_code == 200
    assert PUBLIC_README.lower() in text_of(response)
    if mode == "authenticated":
        assert_private(response)  # what needed a sign-in is kept by no shared cache


def test_a_public_page_for_anyone_is_not_marked_private(people: dict[str, User]) -> None:
    response = CommittingClient().get("/project/open-widget/")
    assert response.status_code == 200
    assert "private" not in response.get("Cache-Control", "")


def test_after_signing_in_the_visitor_comes_back_to_the_page(people: dict[str, User],
                                                             settings: Any) -> None:
    settings.READ_ACCESS = "authenticated"
    client = CommittingClient()
    assert_sent_to_sign_in(client.get("/project/zqx-secret/1.0/"), "/project/zqx-secret/1.0/")
    sign_in(client, people["role-holder"])
    assert client.get("/project/zqx-secret/1.0/").status_code == 200


def test_a_removed_role_hides_the_project_at_once(people: dict[str, User]) -> None:
    client = browser("role-holder", people)
    assert client.get("/project/zqx-secret/").status_code == 200
    Role.objects.filter(user=people["role-holder"]).delete()
    response = client.get("/project/zqx-secret/")
    assert response.status_code == 404
    assert_nothing_told(response)
    assert "zqx" not in text_of(client.get("/user/alice/"))


@pytest.mark.parametrize(("viewer", "status"), [
    ("anonymous", 404), ("other-account", 404), ("staff", 404), ("role-holder", 200),
])
def test_a_quarantined_private_project_is_for_its_people_only(
    people: dict[str, User], viewer: str, status: int
) -> None:
    """H1's quarantine rule lets staff see a quarantined project; not a private one."""
    Project.objects.filter(normalized_name="zqx-secret").update(
        status=Project.Status.QUARANTINED)
    response = browser(viewer, people).get("/project/zqx-secret/")
    assert response.status_code == status
    if status == 404:
        assert_nothing_told(response)


def test_staff_still_see_a_quarantined_public_project(people: dict[str, User]) -> None:
    Project.objects.filter(normalized_name="open-widget").update(
        status=Project.Status.QUARANTINED)
    assert browser("staff", people).get("/project/open-widget/").status_code == 200
    assert browser("other-account", people).get("/project/open-widget/").status_code == 404
    assert "open-widget" not in text_of(browser("other-account", people).get("/"))
