"""PEP 792 project status (issue 20): owners archive, deprecate and make active again; staff
quarantine, which hides a project from installers (its kept responses too) while its owners
and the staff still see it. The status and its reason are on the simple pages."""

import json
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from relatch.accounts.models import User
from relatch.audit.models import EventKind, SecurityEvent, StaffAction
from relatch.index.manage import status
from relatch.index.manage.releases import yank_release
from relatch.index.models import File, JournalEntry, Project, Role
from relatch.index.simple.response_cache import ResponseCache
from tests.conftest import CommittingClient, sign_in
from tests.index.dists import build_wheel
from tests.index.simple_rows import publish
from tests.index.test_upload import post, refused_with, token_for
from tests.index.wsgi_calls import Counted, call_app
from tests.mfa.factor_rows import add_app

JSON = "application/vnd.pypi.simple.v1+json"
Status = Project.Status


class Metas(HTMLParser):
    """The <meta name=… content=…> pairs of a page."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.found: dict[str, str] = {}
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "meta" and values.get("name"):
            self.found[str(values["name"])] = str(values.get("content"))


@pytest.fixture
def project(alice: User, bob: User) -> Project:
    """sample-pkg 1.0 (a wheel with PEP 658 metadata): alice owns it, bob maintains it."""
    publish(build_wheel(version="1.0"))
    project = Project.objects.get()
    Role.objects.create(project=project, user=alice, kind=Role.Kind.OWNER)
    Role.objects.create(project=project, user=bob, kind=Role.Kind.MAINTAINER)
    return project


@pytest.fixture
def staff(make_user: Any) -> User:
    dana = make_user(username="dana", email="dana@example.org", is_staff=True)
    add_app(dana)
    return dana


def status_page(project: Project) -> str:
    return reverse("manage:status", args=[project.normalized_name])


def quarantine_page(project: Project) -> str:
    return reverse("manage:quarantine", args=[project.normalized_name])


def simple_json(client: Client) -> dict[str, Any]:
    response = client.get("/simple/sample-pkg/", headers={"Accept": JSON})
    assert response.status_code == 200
    return dict(json.loads(response.content))


def simple_metas(client: Client) -> dict[str, str]:
    response = client.get("/simple/sample-pkg/", headers={"Accept": "text/html"})
    assert response.status_code == 200
    return Metas(response.content.decode()).found


def current(project: Project) -> tuple[str, str]:
    project.refresh_from_db()
    return project.status, project.status_reason


@pytest.mark.django_db
def test_an_active_project_says_so_with_api_version_1_4(client: Client, project: Project) -> None:
    document = simple_json(client)
    assert document["meta"]["api-version"] == "1.4"  # PEP 792 needs 1.4
    assert document["project-status"] == {"status": "active"}
    assert simple_metas(client) == {"pypi:repository-version": "1.4",
                                    "pypi:project-status": "active"}


@pytest.mark.django_db
@pytest.mark.parametrize("new", [Status.ARCHIVED, Status.DEPRECATED])
def test_an_owner_sets_a_status_with_a_reason(
    as_alice: CommittingClient, alice: User, bob: User, project: Project, mail: Any, new: str
) -> None:
    before = (project.generation, JournalEntry.objects.count())
    response = as_alice.post(status_page(project), {"status": new, "reason": 'Use "eggs" <2>'})
    assert response.status_code == 302
    assert current(project) == (new, 'Use "eggs" <2>')
    assert project.generation == before[0] + 1
    assert JournalEntry.objects.count() == before[1] + 1  # one change, one serial
    assert project.last_serial == JournalEntry.objects.latest("id").pk
    anonymous = Client()
    assert simple_json(anonymous)["project-status"] == {"status": new, "reason": 'Use "eggs" <2>'}
    metas = simple_metas(anonymous)
    assert metas["pypi:project-status"] == new
    assert metas["pypi:project-status-reason"] == 'Use "eggs" <2>'  # escaped, read back whole
    # Still installable: listed, its file served.
    assert b"sample-pkg" in b"".join(anonymous.get("/simple/").streaming_content)
    assert anonymous.get(f"/files/{File.objects.get().path}").status_code == 200
    [event] = SecurityEvent.objects.filter(user=alice, kind=EventKind.PROJECT_STATUS_CHANGED)
    assert event.details == {"project": "sample-pkg", "old_status": "active", "new_status": new,
                             "reason": 'Use "eggs" <2>'}
    text = mail.text(mail.last("alice@example.org"))
    assert f"alice changed the status of sample-pkg from active to {new}" in text
    assert not mail.to("bob@example.org")  # owners only
    page = anonymous.get("/project/sample-pkg/").content.decode()
    assert f"sample-pkg is {new}" in page and "Use &quot;eggs&quot; &lt;2&gt;" in page


@pytest.mark.django_db
def test_making_it_active_again_drops_the_reason(
    as_alice: CommittingClient, project: Project
) -> None:
    as_alice.post(status_page(project), {"status": "archived", "reason": "done"})
    response = as_alice.post(status_page(project), {"status": "active", "reason": "ignored"})
    assert response.status_code == 302
    assert current(project) == ("active", "")
    assert simple_json(Client())["project-status"] == {"status": "active"}


@pytest.mark.django_db
@pytest.mark.parametrize(("form", "code", "message"), [
    ({"status": "quarantined", "reason": ""}, 400, "Select a valid choice"),
    ({"status": "archived", "reason": "x" * 501}, 400, "at most 500 characters"),
    ({"status": "active", "reason": ""}, 400, "sample-pkg is already active."),
])
def test_bad_input_changes_nothing(
    as_alice: CommittingClient, project: Project, form: dict[str, str], code: int, message: str
) -> None:
    generation = project.generation
    response = as_alice.post(status_page(project), form)
    assert response.status_code == code
    assert message in response.content.decode()
    assert current(project) == ("active", "") and project.generation == generation


@pytest.mark.django_db
def test_a_maintainer_who_is_not_owner_cannot_archive(
    client: CommittingClient, bob: User, project: Project
) -> None:
    sign_in(client, bob)
    page = client.get(status_page(project))
    assert page.status_code == 200 and "Only owners of sample-pkg" in page.content.decode()
    response = client.post(status_page(project), {"status": "archived", "reason": ""})
    assert response.status_code == 403
    assert "Only owners of sample-pkg can change its status." in response.content.decode()
    assert current(project) == ("active", "")
    assert not SecurityEvent.objects.filter(kind=EventKind.PROJECT_STATUS_CHANGED).exists()


@pytest.mark.django_db
def test_a_non_member_gets_the_404_of_an_unknown_project(
    client: CommittingClient, make_user: Any, project: Project
) -> None:
    carol = make_user(username="carol")
    add_app(carol)
    sign_in(client, carol)
    assert client.post(status_page(project), {"status": "archived"}).status_code == 404
    assert current(project) == ("active", "")


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["anonymous", "owner", "maintainer", "staff_without_factor"])
def test_only_staff_reach_the_quarantine_page(
    client: CommittingClient, alice: User, bob: User, make_user: Any, project: Project,
    who: str,
) -> None:
    """A 404 for everyone else, signed in or not: the page does not say it exists."""
    if who == "owner":
        sign_in(client, alice)
    elif who == "maintainer":
        sign_in(client, bob)
    elif who == "staff_without_factor":
        sign_in(client, make_user(username="erin", is_staff=True))
    assert client.get(quarantine_page(project)).status_code == 404
    response = client.post(quarantine_page(project), {"action": "quarantine", "reason": "x"})
    assert response.status_code == 404
    assert current(project) == ("active", "")
    assert not StaffAction.objects.exists()


@pytest.mark.django_db
def test_staff_quarantine_with_a_reason(
    client: CommittingClient, staff: User, alice: User, project: Project, mail: Any
) -> None:
    sign_in(client, staff)
    form = client.get(quarantine_page(project))
    assert form.status_code == 200 and "Quarantine sample-pkg" in form.content.decode()
    response = client.post(quarantine_page(project),
                           {"action": "quarantine", "reason": "Malware in 1.0 (report 7)"})
    assert response.status_code == 302
    assert current(project) == ("quarantined", "Malware in 1.0 (report 7)")
    [action] = StaffAction.objects.all()
    assert (action.staff, action.action, action.reason) == (
        staff, "project:quarantined", "Malware in 1.0 (report 7)")
    assert action.before == {"project": "sample-pkg", "status": "active", "reason": ""}
    assert action.after == {"project": "sample-pkg", "status": "quarantined"}
    [event] = SecurityEvent.objects.filter(user=alice, kind=EventKind.PROJECT_STATUS_CHANGED)
    assert event.details["changed_by"] == "staff: dana"
    assert event.details["new_status"] == "quarantined"
    text = mail.text(mail.last("alice@example.org"))
    assert "The index's staff changed the status of sample-pkg from active to quarantined" in text
    assert "Reason: Malware in 1.0 (report 7)" in text


@pytest.mark.django_db
def test_staff_must_write_a_reason(
    client: CommittingClient, staff: User, project: Project
) -> None:
    sign_in(client, staff)
    response = client.post(quarantine_page(project), {"action": "quarantine", "reason": " "})
    assert response.status_code == 400 and "Write the reason." in response.content.decode()
    assert current(project) == ("active", "") and not StaffAction.objects.exists()


def _quarantine(project: Project, staff: User) -> None:
    status.quarantine(request=None, staff=staff, project=project, reason="Malware")


@pytest.mark.django_db
def test_a_quarantined_project_is_hidden_from_installers(
    client: Client, project: Project, staff: User
) -> None:
    file = File.objects.get()
    _quarantine(project, staff)
    index = b"".join(client.get("/simple/", headers={"Accept": JSON}).streaming_content)
    assert json.loads(index)["projects"] == []
    for path in ("/simple/sample-pkg/", "/pypi/sample-pkg/json", "/pypi/sample-pkg/1.0/json",
                 f"/files/{file.path}", f"/files/{file.path}.metadata"):
        assert client.get(path).status_code == 404, path
    # The home page's recent projects and its people's public profiles leave it out too.
    assert "sample-pkg" not in client.get("/").content.decode()
    for profile in ("/user/alice/", "/user/bob/"):
        response = client.get(profile)
        assert response.status_code == 200 and "sample-pkg" not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(("who", "code"), [
    ("anonymous", 404), ("stranger", 404), ("owner", 200), ("maintainer", 200), ("staff", 200),
])
def test_its_web_page_is_seen_by_its_people_and_staff_only(
    client: CommittingClient, project: Project, staff: User, alice: User, bob: User,
    make_user: Any, who: str, code: int,
) -> None:
    _quarantine(project, staff)
    users = {"stranger": make_user(username="carol"), "owner": alice, "maintainer": bob,
             "staff": staff}
    if who in users:
        sign_in(client, users[who])
    response = client.get("/project/sample-pkg/")
    assert response.status_code == code
    if code == 200:
        page = response.content.decode()
        assert "sample-pkg is quarantined by the index's staff." in page
        assert "Reason: Malware" in page
        assert ("Lift the quarantine" in page) == (who == "staff")


@pytest.mark.django_db
def test_owners_cannot_undo_a_quarantine(
    as_alice: CommittingClient, project: Project, staff: User
) -> None:
    _quarantine(project, staff)
    response = as_alice.post(status_page(project), {"status": "active", "reason": ""})
    assert response.status_code == 403
    assert "only they can change its status" in response.content.decode()
    assert current(project) == ("quarantined", "Malware")


@pytest.mark.django_db
def test_lifting_the_quarantine_brings_it_back(
    client: CommittingClient, project: Project, staff: User
) -> None:
    _quarantine(project, staff)
    sign_in(client, staff)
    response = client.post(quarantine_page(project), {"action": "lift", "reason": "False alarm"})
    assert response.status_code == 302
    assert current(project) == ("active", "")  # the staff's reason stays in their record
    assert [a.action for a in StaffAction.objects.order_by("id")] == [
        "project:quarantined", "project:active"]
    anonymous = Client()
    assert anonymous.get("/pypi/sample-pkg/json").status_code == 200
    assert anonymous.get(f"/files/{File.objects.get().path}").status_code == 200
    assert simple_json(anonymous)["project-status"] == {"status": "active"}
    again = client.post(quarantine_page(project), {"action": "lift", "reason": "twice"})
    assert again.status_code == 400 and "is not quarantined" in again.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(("new", "refused"), [
    (Status.ACTIVE, False), (Status.DEPRECATED, False), (Status.ARCHIVED, True),
    (Status.QUARANTINED, True),
])
def test_archived_and_quarantined_projects_refuse_uploads(
    client: Client, project: Project, alice: User, new: str, refused: bool
) -> None:
    """PEP 792: an index MUST NOT accept uploads to them; through twine's endpoint."""
    Project.objects.filter(pk=project.pk).update(status=new)
    token = token_for(alice)
    response = post(client, build_wheel(version="2.0"), token)
    if refused:
        refused_with(response, 403, f"sample-pkg is {new}")
        assert not File.objects.filter(release__version="2.0").exists()
    else:
        assert response.status_code == 200, response.content
        assert File.objects.filter(release__version="2.0").exists()


# Kept responses (relatch.index.simple.response_cache): a page or file kept before the
# quarantine is never sent after it. The services commit, as in production.


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("path", "accept"), [
    ("/simple/", JSON), ("/simple/sample-pkg/", JSON), ("/simple/sample-pkg/", "text/html"),
    ("FILE", "*/*"), ("FILE.metadata", "*/*"),
])
def test_a_kept_response_is_not_served_after_the_quarantine(
    project: Project, staff: User, app: ResponseCache, django_part: Counted, path: str,
    accept: str,
) -> None:
    file = File.objects.get()
    path = path.replace("FILE", f"/files/{file.path}")
    before = call_app(app, path, accept=accept)
    assert before[0] == 200 and call_app(app, path, accept=accept) == before
    assert django_part.calls == 1  # kept
    _quarantine(project, staff)
    after = call_app(app, path, accept=accept)
    if path == "/simple/":
        assert after[0] == 200 and b"sample-pkg" not in after[2]
    else:
        assert after[0] == 404
    assert django_part.calls == 2


@pytest.mark.django_db(transaction=True)
def test_a_kept_index_never_carries_an_old_serial(
    project: Project, alice: User, app: ResponseCache, django_part: Counted
) -> None:
    """/simple/'s list does not change with a yank, but its X-PyPI-Last-Serial does."""
    first = call_app(app, "/simple/", accept=JSON)
    assert call_app(app, "/simple/", accept=JSON) == first
    yank_release(request=None, owner=alice, project=project, version="1.0", reason="")
    after = call_app(app, "/simple/", accept=JSON)
    serial = JournalEntry.objects.latest("id").pk
    assert int(after[1]["x-pypi-last-serial"][0]) == serial
    assert int(first[1]["x-pypi-last-serial"][0]) < serial
    assert after[2] == first[2] and after[1]["etag"] == first[1]["etag"]  # the same list
    assert django_part.calls == 2
    page = call_app(app, "/simple/sample-pkg/", accept=JSON)
    assert int(page[1]["x-pypi-last-serial"][0]) == serial
