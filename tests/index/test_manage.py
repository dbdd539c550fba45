"""The owner's pages (issue 4, points 1 and 5): "your projects", a project's management page
for its members only, and yanking, un-yanking and deleting releases after re-authentication
(ASVS 7.5.1). Managing needs a second factor (ASVS 6.3.3)."""

from datetime import timedelta
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from relatch.accounts.models import User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import File, Project, Release, Role, UsedFilename
from tests.conftest import CommittingClient, sign_in
from tests.index.project_rows import add_file, make_project, make_release
from tests.mfa.factor_rows import add_app

pytestmark = pytest.mark.django_db
LONG_AGO = timezone.now() - timedelta(days=30)



@pytest.fixture
def project(alice: User, bob: User) -> Project:
    project = make_project("Demo_Project", owners=(alice,), maintainers=(bob,))
    Project.objects.filter(pk=project.pk).update(last_changed_at=LONG_AGO)
    return project


@pytest.fixture
def release(project: Project) -> Release:
    release = make_release(project, "1.0")
    add_file(release, "demo_project-1.0-py3-none-any.whl", b"wheel bytes")
    add_file(release, "demo_project-1.0.tar.gz", b"sdist bytes")
    return release


def page(name: str, project: Project, *args: str) -> str:
    return reverse(f"manage:{name}", args=[project.normalized_name, *args])


def events(user: User, kind: EventKind) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(user=user, kind=kind))


def changed_at(project: Project) -> Any:
    return Project.objects.get(pk=project.pk).last_changed_at


def test_your_projects_lists_roles_and_latest_versions(
    as_alice: CommittingClient, alice: User, bob: User, project: Project
) -> None:
    make_release(project, "1.0", created_at=LONG_AGO)
    make_release(project, "2.0rc1")
    other = make_project("theirs", owners=(bob,))
    make_project("zeta", maintainers=(alice,))
    html = as_alice.get(reverse("manage:projects")).content.decode()
    assert "Demo_Project" in html and "Owner" in html and "2.0rc1" in html
    assert "zeta" in html and "Maintainer" in html
    assert other.name not in html
    assert page("project", project) in html


@pytest.mark.parametrize("target", ["projects", "invitations", "project"])
def test_managing_needs_a_second_factor(
    client: CommittingClient, make_user: Any, target: str
) -> None:
    """Without an app or key: a page that says why and links to set one up."""
    carol = make_user(username="carol")
    project = make_project("carols", owners=(carol,))
    sign_in(client, carol)
    path = page(target, project) if target == "project" else reverse(f"manage:{target}")
    response = client.get(path)
    assert response.status_code == 403
    html = response.content.decode()
    assert "Managing projects needs two-step sign-in." in html
    assert reverse("mfa:overview") in html


def test_an_owner_without_a_second_factor_cannot_yank(
    client: CommittingClient, make_user: Any
) -> None:
    carol = make_user(username="carol")
    release = make_release(make_project("carols", owners=(carol,)), "1.0")
    sign_in(client, carol)
    response = client.post(page("yank", release.project, "1.0"), {"reason": ""})
    assert response.status_code == 403
    release.refresh_from_db()
    assert not release.yanked


def test_members_see_the_page_and_only_owners_see_owner_actions(
    as_alice: CommittingClient, bob: User, project: Project, release: Release
) -> None:
    owner_html = as_alice.get(page("project", project)).content.decode()
    assert "Invite someone" in owner_html and page("yank", project, "1.0") in owner_html
    as_bob = sign_in(Client(), bob)
    maintainer = as_bob.get(page("project", project))
    assert maintainer.status_code == 200
    html = maintainer.content.decode()
    assert "bob (you)" in html and "alice" in html and "1.0" in html
    assert "Invite someone" not in html and page("yank", project, "1.0") not in html


def test_non_members_get_the_same_404_as_for_unknown_projects(
    client: CommittingClient, make_user: Any, project: Project
) -> None:
    mallory = make_user(username="mallory")
    add_app(mallory)
    sign_in(client, mallory)
    assert client.get(page("project", project)).status_code == 404
    assert client.get(reverse("manage:project", args=["no-such"])).status_code == 404
    assert client.post(page("yank", project, "1.0"), {"reason": "x"}).status_code == 404


def test_a_name_that_is_not_normalised_redirects(
    as_alice: CommittingClient, project: Project
) -> None:
    response = as_alice.get(reverse("manage:project", args=["Demo.Project"]))
    assert response.status_code == 302 and response["Location"] == page("project", project)


def test_owner_yanks_with_a_reason(
    as_alice: CommittingClient, alice: User, release: Release, mail: Any
) -> None:
    form = as_alice.get(page("yank", release.project, "1.0"))
    assert form.status_code == 200 and "Yank Demo_Project 1.0" in form.content.decode()
    response = as_alice.post(page("yank", release.project, "1.0"), {"reason": "Broken import"})
    assert response.status_code == 302
    release.refresh_from_db()
    assert release.yanked and release.yanked_reason == "Broken import"
    assert changed_at(release.project) > LONG_AGO
    [event] = events(alice, EventKind.RELEASE_YANKED)
    assert event.details == {"project": "Demo_Project", "version": "1.0",
                             "reason": "Broken import"}
    text = mail.text(mail.last("alice@example.org"))
    assert "alice yanked Demo_Project 1.0" in text and "Reason: Broken import" in text
    assert "If this wasn't you" in text  # the actor's own copy
    assert not mail.to("bob@example.org")  # owners only


@pytest.mark.parametrize(("reason", "status", "message"), [
    ("x" * 501, 400, "The reason has at most 500 characters."),
])
def test_bad_yank_input_changes_nothing(
    as_alice: CommittingClient, release: Release, mail: Any, reason: str, status: int,
    message: str,
) -> None:
    response = as_alice.post(page("yank", release.project, "1.0"), {"reason": reason})
    assert response.status_code == status and message in response.content.decode()
    release.refresh_from_db()
    assert not release.yanked and changed_at(release.project) == LONG_AGO
    assert mail.messages == []


def test_yanking_twice_says_so(
    as_alice: CommittingClient, alice: User, release: Release
) -> None:
    as_alice.post(page("yank", release.project, "1.0"), {"reason": "first"})
    response = as_alice.post(page("yank", release.project, "1.0"), {"reason": "second"})
    assert response.status_code == 400
    assert "1.0 is already yanked." in response.content.decode()
    release.refresh_from_db()
    assert release.yanked_reason == "first"
    assert len(events(alice, EventKind.RELEASE_YANKED)) == 1


def test_owner_unyanks(as_alice: CommittingClient, alice: User, release: Release,
                       mail: Any) -> None:
    Release.objects.filter(pk=release.pk).update(yanked=True, yanked_reason="oops")
    response = as_alice.post(page("unyank", release.project, "1.0"))
    assert response.status_code == 302
    release.refresh_from_db()
    assert not release.yanked and release.yanked_reason == ""
    assert changed_at(release.project) > LONG_AGO
    assert len(events(alice, EventKind.RELEASE_UNYANKED)) == 1
    assert "Demo_Project 1.0 was un-yanked" in str(mail.last("alice@example.org")["Subject"])
    again = as_alice.post(page("unyank", release.project, "1.0"))
    assert again.status_code == 400 and "1.0 is not yanked." in again.content.decode()


@pytest.mark.parametrize(("action", "data"), [
    ("yank", {"reason": ""}), ("unyank", {}), ("delete_release", {"confirmation": "1.0"}),
])
def test_release_actions_need_a_fresh_password(
    client: CommittingClient, alice: User, release: Release, action: str,
    data: dict[str, str],
) -> None:
    sign_in(client, alice, reauthenticated=False)
    Release.objects.filter(pk=release.pk).update(yanked=action == "unyank")
    response = client.post(page(action, release.project, "1.0"), data)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("signin:reauthenticate"))
    assert Release.objects.get(pk=release.pk).yanked == (action == "unyank")
    assert changed_at(release.project) == LONG_AGO
    assert not SecurityEvent.objects.filter(kind__startswith="release_").exists()


@pytest.mark.parametrize(("action", "data"), [
    ("yank", {"reason": ""}), ("unyank", {}), ("delete_release", {"confirmation": "1.0"}),
])
def test_maintainers_cannot_yank_or_delete(
    bob: User, release: Release, mail: Any, action: str, data: dict[str, str],
) -> None:
    as_bob = sign_in(CommittingClient(), bob)
    response = as_bob.post(page(action, release.project, "1.0"), data)
    assert response.status_code == 403
    assert "Only owners of Demo_Project can" in response.content.decode()
    assert Release.objects.filter(pk=release.pk, yanked=False).exists()
    assert File.objects.count() == 2 and mail.messages == []


def test_owner_deletes_a_release_and_its_files(
    as_alice: CommittingClient, alice: User, release: Release, mail: Any
) -> None:
    paths = [f.path for f in release.files.all()]
    wheel = release.files.get(packagetype="bdist_wheel").path
    assert all(default_storage.exists(p) for p in [*paths, f"{wheel}.metadata"])
    form = as_alice.get(page("delete_release", release.project, "1.0"))
    assert "Type <code>1.0</code> to confirm." in form.content.decode()
    response = as_alice.post(page("delete_release", release.project, "1.0"),
                             {"confirmation": "1.0"})
    assert response.status_code == 302
    assert not Release.objects.filter(pk=release.pk).exists()
    assert not File.objects.exists()
    assert not any(default_storage.exists(p) for p in [*paths, f"{wheel}.metadata"])
    # The names stay taken: installers may have cached the old bytes under them.
    assert UsedFilename.objects.count() == 2
    assert changed_at(release.project) > LONG_AGO
    [event] = events(alice, EventKind.RELEASE_DELETED)
    assert event.details["files"] == "demo_project-1.0-py3-none-any.whl, demo_project-1.0.tar.gz"
    assert "Demo_Project 1.0 was deleted" in str(mail.last("alice@example.org")["Subject"])


@pytest.mark.parametrize(("confirmation", "message"), [
    ("", "Type the version to confirm. Nothing was deleted."),
    ("1.0.0", "type the version exactly as shown: 1.0. Nothing was deleted."),
    ("Demo_Project", "type the version exactly as shown: 1.0. Nothing was deleted."),
    ("x" * 101, "at most 100 characters"),
])
def test_a_wrong_confirmation_deletes_nothing(
    as_alice: CommittingClient, release: Release, mail: Any, confirmation: str, message: str
) -> None:
    response = as_alice.post(page("delete_release", release.project, "1.0"),
                             {"confirmation": confirmation})
    assert response.status_code == 400 and message in response.content.decode()
    assert Release.objects.filter(pk=release.pk).exists() and File.objects.count() == 2
    assert all(default_storage.exists(f.path) for f in File.objects.all())
    assert changed_at(release.project) == LONG_AGO and mail.messages == []


def test_deleting_twice_says_it_is_gone(
    as_alice: CommittingClient, alice: User, release: Release
) -> None:
    url = page("delete_release", release.project, "1.0")
    as_alice.post(url, {"confirmation": "1.0"})
    response = as_alice.post(url, {"confirmation": "1.0"})
    assert response.status_code == 404
    assert "has no release 1.0 (it may have been deleted already)" in response.content.decode()
    assert len(events(alice, EventKind.RELEASE_DELETED)) == 1


def test_a_post_without_the_csrf_token_is_refused(alice: User, release: Release) -> None:
    browser = sign_in(Client(enforce_csrf_checks=True), alice)
    response = browser.post(page("yank", release.project, "1.0"), {"reason": "x"})
    assert response.status_code == 403
    assert not Release.objects.get(pk=release.pk).yanked


def test_pending_invitations_are_shown_on_your_projects(
    as_alice: CommittingClient, alice: User, bob: User
) -> None:
    theirs = make_project("theirs", owners=(bob,))
    theirs.invitations.create(invitee=alice, inviter=bob, kind=Role.Kind.MAINTAINER,
                              expires_at=timezone.now() + timedelta(days=1))
    html = as_alice.get(reverse("manage:projects")).content.decode()
    assert "You have 1 pending invitation." in html
