"""The publishing pages (issue 21): owners register and remove trusted publishers, any account
adds pending ones. A publisher is a way to publish that needs no password, second factor or
token, so adding one needs an owner with a second factor (ASVS 6.3.3) and a fresh password
(ASVS 7.5.1), a frozen account is refused (DESIGN §5), and every owner is told by mail — a
hijacker who adds a publisher to keep publishing after losing the session must be noticed."""

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from relatch.accounts.freeze import freeze_account
from relatch.accounts.models import User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import APIToken, Project
from relatch.index.trusted.models import TrustedPublisher
from relatch.index.trusted.services import MAX_PENDING_PER_ACCOUNT, MAX_PUBLISHERS_PER_PROJECT
from tests.conftest import CommittingClient, sign_in
from tests.index.project_rows import make_project
from tests.index.trusted.publisher_rows import (
    GITHUB,
    GITLAB,
    ISSUERS,
    SELF_HOSTED_GITLAB,
    minted_token,
    publisher_row,
)
from tests.mfa.factor_rows import add_app

pytestmark = pytest.mark.django_db
GITHUB_FORM = {"issuer": GITHUB, "repository": "Acme/Tool", "workflow": "release.yml",
               "environment": "pypi", "repository_id": "", "owner_id": ""}


@pytest.fixture(autouse=True)
def issuers(settings: Any) -> None:
    """The operator lists GitHub, gitlab.com and a self-hosted GitLab (no network is used:
    these pages only store what the exchange will check)."""
    settings.OIDC_ISSUERS = dict(ISSUERS)


@pytest.fixture
def dave(make_user: Any) -> User:
    """dave, a second owner of the project (with an app)."""
    dave = make_user(username="dave", email="dave@example.org")
    add_app(dave)
    return dave


@pytest.fixture
def project(alice: User, bob: User, dave: User) -> Project:
    """acme-tool: owners alice and dave, maintainer bob."""
    return make_project("acme-tool", owners=(alice, dave), maintainers=(bob,))


def publishing(project: Project) -> str:
    return reverse("manage:publishing", args=[project.normalized_name])


def remove_url(project: Project, publisher: TrustedPublisher) -> str:
    return reverse("manage:remove_publisher", args=[project.normalized_name, publisher.pk])


def kinds(user: User) -> list[str]:
    return list(SecurityEvent.objects.filter(user=user).values_list("kind", flat=True))


def publisher_events(user: User) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(
        user=user, kind__in=[EventKind.TRUSTED_PUBLISHER_ADDED, EventKind.TRUSTED_PUBLISHER_REMOVED]
    ))


def subjects(mail: Any, address: str) -> list[str]:
    return [str(m["Subject"]) for m in mail.to(address)]


# --- adding ------------------------------------------------------------------------------


@pytest.mark.parametrize(("form", "stored", "described", "url"), [
    (GITHUB_FORM, "acme/tool",
     "GitHub Actions: acme/tool, workflow release.yml, environment pypi",
     "https://github.com/acme/tool"),
    ({"issuer": GITLAB, "repository": "Acme/Tools/CLI", "workflow": "ci/release.yaml",
      "repository_id": "4242", "owner_id": "77"}, "acme/tools/cli",
     "GitLab CI/CD: acme/tools/cli, workflow ci/release.yaml", "https://gitlab.com/acme/tools/cli"),
    ({"issuer": SELF_HOSTED_GITLAB, "repository": "team/tool", "workflow": ".gitlab-ci.yml"},
     "team/tool", "GitLab CI/CD at gitlab.example.com: team/tool, workflow .gitlab-ci.yml",
     "https://gitlab.example.com/team/tool"),
])
def test_an_owner_adds_a_publisher_and_every_owner_is_told(
    as_alice: CommittingClient, alice: User, bob: User, dave: User, project: Project, mail: Any,
    form: dict[str, str], stored: str, described: str, url: str,
) -> None:
    response = as_alice.post(publishing(project), form)
    assert response.status_code == 302 and response["Location"] == publishing(project)
    publisher = TrustedPublisher.objects.get(project=project)
    assert publisher.repository == stored and publisher.added_by == alice
    assert publisher.dialect == ISSUERS[form["issuer"]] and publisher.removed_at is None
    assert publisher.repository_id == form.get("repository_id", "")
    [event] = publisher_events(alice)
    assert event.kind == EventKind.TRUSTED_PUBLISHER_ADDED
    assert event.details["project"] == "acme-tool" and event.details["repository"] == stored
    assert event.details["issuer"] == form["issuer"] and event.details["url"] == url
    for address in ("alice@example.org", "dave@example.org"):
        message = mail.last(address)
        assert str(message["Subject"]) == "Trusted publisher added to acme-tool"
        text = mail.text(message)
        assert "alice added a trusted publisher to the project acme-tool" in text
        assert described in text and url in text
        assert f"http://testserver{publishing(project)}" in text  # where to remove it
    assert mail.to("bob@example.org") == []  # maintainers cannot remove it: owners only
    page = as_alice.get(publishing(project)).content.decode()
    assert described in page and f'href="{url}"' in page
    assert remove_url(project, publisher) in page


def test_the_page_explains_pinning_and_lists_the_operators_issuers(
    as_alice: CommittingClient, project: Project
) -> None:
    html = as_alice.get(publishing(project)).content.decode()
    assert "GitHub Actions (github.com)" in html and "GitLab CI/CD (gitlab.com)" in html
    assert "GitLab CI/CD at gitlab.example.com" in html
    assert "pinned at the first upload" in html
    assert "does not inherit the right to publish" in html


def _owner_without_factor(client: Client, make_user: Any, project: Project) -> None:
    carol = make_user(username="carol")
    project.roles.create(user=carol, kind="owner")
    sign_in(client, carol)


def _stale_password(client: Client, alice: User) -> None:
    sign_in(client, alice, reauthenticated=False)


def _maintainer(client: Client, bob: User) -> None:
    sign_in(client, bob)


def _stranger(client: Client, make_user: Any) -> None:
    mallory = make_user(username="mallory")
    add_app(mallory)
    sign_in(client, mallory)


def _frozen(client: Client, alice: User) -> None:
    sign_in(client, alice)
    freeze_account(user=alice, reason="someone said a recovery request was not theirs")


REFUSALS = {
    "maintainer": (403, "Only owners of acme-tool can see and change its trusted publishers."),
    "stranger": (404, ""),
    "no second factor": (403, "Managing projects needs two-step sign-in."),
    "stale password": (302, ""),
    "frozen": (403, "this account is frozen"),
}


def _as(who: str, client: Client, make_user: Any, alice: User, bob: User,
        project: Project) -> None:
    match who:
        case "maintainer":
            _maintainer(client, bob)
        case "stranger":
            _stranger(client, make_user)
        case "no second factor":
            _owner_without_factor(client, make_user, project)
        case "stale password":
            _stale_password(client, alice)
        case "frozen":
            _frozen(client, alice)


@pytest.mark.parametrize("who", list(REFUSALS))
def test_only_an_owner_with_a_factor_and_a_fresh_password_adds(
    client: CommittingClient, make_user: Any, alice: User, bob: User, project: Project,
    mail: Any, who: str,
) -> None:
    _as(who, client, make_user, alice, bob, project)
    status, text = REFUSALS[who]
    response = client.post(publishing(project), GITHUB_FORM)
    assert response.status_code == status
    assert text in response.content.decode()
    if who == "stale password":
        assert response["Location"].startswith(reverse("signin:reauthenticate"))
    assert not TrustedPublisher.objects.exists()
    assert publisher_events(alice) == [] and publisher_events(bob) == []
    assert mail.messages == []


@pytest.mark.parametrize("who", ["maintainer", "stranger", "no second factor", "stale password"])
def test_only_an_owner_with_a_factor_and_a_fresh_password_removes(
    client: CommittingClient, make_user: Any, alice: User, bob: User, project: Project,
    mail: Any, who: str,
) -> None:
    publisher = publisher_row(added_by=alice, project=project)
    token = minted_token(publisher)
    _as(who, client, make_user, alice, bob, project)
    status, text = REFUSALS[who]
    response = client.post(remove_url(project, publisher), {})
    assert response.status_code == status and text in response.content.decode()
    publisher.refresh_from_db()
    token.refresh_from_db()
    assert publisher.removed_at is None and token.revoked_at is None
    assert publisher_events(alice) == [] and mail.messages == []


def test_a_maintainer_sees_no_publishing_page_and_no_link(
    client: CommittingClient, alice: User, bob: User, project: Project
) -> None:
    publisher_row(added_by=alice, project=project)
    as_bob = sign_in(client, bob)
    response = as_bob.get(publishing(project))
    assert response.status_code == 403
    assert "acme/tool" not in response.content.decode()
    manage = as_bob.get(reverse("manage:project", args=["acme-tool"])).content.decode()
    assert publishing(project) not in manage


def test_the_owners_manage_page_links_to_publishing(
    as_alice: CommittingClient, project: Project
) -> None:
    html = as_alice.get(reverse("manage:project", args=["acme-tool"])).content.decode()
    assert publishing(project) in html
    projects = as_alice.get(reverse("manage:projects")).content.decode()
    assert reverse("manage:pending_publishing") in projects


BAD_INPUT = [
    ("repository", {"repository": "acme"}, "Enter the GitHub repository as owner/name"),
    ("repository", {"repository": "acme/tool/extra"}, "Enter the GitHub repository as owner/name"),
    ("repository", {"repository": "ac_me/tool"}, "Enter the GitHub repository as owner/name"),
    ("repository", {"repository": "acme/.."}, "Enter the GitHub repository as owner/name"),
    ("repository", {"repository": "https://github.com/acme/tool"},
     "Enter the GitHub repository as owner/name"),
    ("repository", {"issuer": GITLAB, "repository": "acme",
                    "workflow": ".gitlab-ci.yml"}, "Enter the GitLab project&#x27;s path"),
    ("repository", {"issuer": GITLAB, "repository": "acme/../tool",
                    "workflow": ".gitlab-ci.yml"}, "Enter the GitLab project&#x27;s path"),
    ("workflow", {"workflow": ".github/workflows/release.yml"},
     "Enter the workflow&#x27;s file name only"),
    ("workflow", {"workflow": "release.sh"}, "Enter the workflow&#x27;s file name only"),
    ("workflow", {"issuer": GITLAB, "repository": "acme/tool", "workflow": "/.gitlab-ci.yml"},
     "Enter the CI configuration&#x27;s path"),
    ("workflow", {"issuer": GITLAB, "repository": "acme/tool", "workflow": "ci/../x.yml"},
     "Enter the CI configuration&#x27;s path"),
    ("workflow", {"issuer": GITLAB, "repository": "acme/tool", "workflow": "ci/release.txt"},
     "Enter the CI configuration&#x27;s path"),
    ("environment", {"environment": "e" * 101}, "The environment has at most 100 characters."),
    ("environment", {"environment": "pypi\nprod"}, "cannot contain control characters"),
    ("environment", {"environment": "py\u200bpi"}, "cannot contain control characters"),
    ("repository_id", {"repository_id": "12ab"}, "The repository id is a number"),
    ("owner_id", {"owner_id": "-1"}, "The owner id is a number"),
    ("issuer", {"issuer": "https://evil.example"}, "Choose where the CI runs from the list."),
]


@pytest.mark.parametrize(("field", "change", "message"), BAD_INPUT)
def test_claims_that_break_the_rules_are_refused_beside_their_field(
    as_alice: CommittingClient, alice: User, project: Project, mail: Any, field: str,
    change: dict[str, str], message: str,
) -> None:
    response = as_alice.post(publishing(project), {**GITHUB_FORM, **change})
    assert response.status_code == 400
    html = response.content.decode()
    assert f'id="id_{field}_error"' in html and message in html
    assert not TrustedPublisher.objects.exists()
    assert publisher_events(alice) == [] and mail.messages == []


def test_a_duplicate_is_refused(
    as_alice: CommittingClient, alice: User, project: Project, mail: Any
) -> None:
    publisher_row(added_by=alice, project=project, environment="PyPI")
    # "Acme/Tool" and "pypi": the same publisher (GitHub ignores the case of both).
    response = as_alice.post(publishing(project), GITHUB_FORM)
    assert response.status_code == 400
    assert "This publisher is already registered for acme-tool." in response.content.decode()
    assert TrustedPublisher.objects.count() == 1 and mail.messages == []


def test_a_removed_publisher_can_be_added_again(
    as_alice: CommittingClient, alice: User, project: Project
) -> None:
    old = publisher_row(added_by=alice, project=project, environment="pypi")
    assert as_alice.post(remove_url(project, old), {}).status_code == 302
    assert as_alice.post(publishing(project), GITHUB_FORM).status_code == 302
    assert project.trusted_publishers.filter(removed_at__isnull=True).count() == 1


def test_a_project_at_its_cap_takes_no_more(
    as_alice: CommittingClient, alice: User, project: Project, mail: Any
) -> None:
    for n in range(MAX_PUBLISHERS_PER_PROJECT):
        publisher_row(added_by=alice, project=project, repository=f"acme/tool{n}")
    page = as_alice.get(publishing(project)).content.decode()
    assert "the most a project can have" in page and "Add the publisher" not in page
    response = as_alice.post(publishing(project), GITHUB_FORM)
    assert response.status_code == 400
    assert f"acme-tool already has {MAX_PUBLISHERS_PER_PROJECT} trusted publishers" in (
        response.content.decode())
    assert project.trusted_publishers.count() == MAX_PUBLISHERS_PER_PROJECT
    assert mail.messages == []


def test_with_no_issuer_listed_nothing_can_be_added(
    settings: Any, as_alice: CommittingClient, project: Project
) -> None:
    settings.OIDC_ISSUERS = {}
    assert "Trusted publishing is turned off" in as_alice.get(publishing(project)).content.decode()
    response = as_alice.post(publishing(project), GITHUB_FORM)
    assert response.status_code == 400 and not TrustedPublisher.objects.exists()


def test_the_form_needs_the_csrf_token(alice: User, project: Project) -> None:
    browser = sign_in(Client(enforce_csrf_checks=True), alice)
    assert browser.post(publishing(project), GITHUB_FORM).status_code == 403
    assert not TrustedPublisher.objects.exists()


# --- removing ----------------------------------------------------------------------------


def test_removing_revokes_the_publishers_live_tokens_and_tells_every_owner(
    as_alice: CommittingClient, alice: User, dave: User, project: Project, mail: Any
) -> None:
    publisher = publisher_row(added_by=dave, project=project)
    live = minted_token(publisher)
    expired = minted_token(publisher, expires_in=-timedelta(minutes=1))
    finished = minted_token(publisher, revoked=True)
    other = minted_token(publisher_row(added_by=dave, project=project, repository="acme/docs"))
    response = as_alice.post(remove_url(project, publisher), {})
    assert response.status_code == 302 and response["Location"] == publishing(project)
    publisher.refresh_from_db()
    assert publisher.removed_at is not None  # kept: files still name it
    for token in (live, expired, finished, other):
        token.refresh_from_db()
    assert live.revoked_at is not None
    assert live.revoked_because == APIToken.RevokedBecause.PUBLISHER_REMOVED
    assert expired.revoked_at is None  # it stopped working on its own
    assert finished.revoked_because == APIToken.RevokedBecause.FINISHED
    assert other.revoked_at is None
    [event] = publisher_events(alice)
    assert event.kind == EventKind.TRUSTED_PUBLISHER_REMOVED
    assert event.details["repository"] == "acme/tool" and event.details["revoked_tokens"] == 1
    for address in ("alice@example.org", "dave@example.org"):
        assert "Trusted publisher removed from acme-tool" in subjects(mail, address)
    text = mail.text(mail.last("dave@example.org"))
    assert "alice removed a trusted publisher from the project acme-tool" in text
    assert "GitHub Actions: acme/tool, workflow release.yml" in text
    assert "Its 1 upload token that still worked was revoked." in text
    page = as_alice.get(publishing(project)).content.decode()
    assert "Removed the trusted publisher GitHub Actions: acme/tool" in page
    assert remove_url(project, publisher) not in page and "acme/docs" in page


def test_another_projects_publisher_cannot_be_removed_from_here(
    as_alice: CommittingClient, alice: User, make_user: Any, project: Project, mail: Any
) -> None:
    """alice owns both projects: the id in the URL must belong to the project in the URL."""
    theirs = make_project("other-tool", owners=(alice,))
    publisher = publisher_row(added_by=alice, project=theirs)
    response = as_alice.post(remove_url(project, publisher), {})
    assert response.status_code == 404
    assert "acme-tool has no such trusted publisher." in response.content.decode()
    publisher.refresh_from_db()
    assert publisher.removed_at is None and mail.messages == []


def test_removing_twice_says_it_is_gone(
    as_alice: CommittingClient, alice: User, project: Project
) -> None:
    publisher = publisher_row(added_by=alice, project=project)
    assert as_alice.post(remove_url(project, publisher), {}).status_code == 302
    assert as_alice.post(remove_url(project, publisher), {}).status_code == 404
    assert len(publisher_events(alice)) == 1


def test_a_frozen_owner_may_still_remove_a_publisher(
    as_alice: CommittingClient, alice: User, project: Project
) -> None:
    """Removing only takes a way in away (as revoking a token): the real owner of a frozen
    account may need it to undo what a hijacker added."""
    publisher = publisher_row(added_by=alice, project=project)
    freeze_account(user=alice, reason="test")
    assert as_alice.post(remove_url(project, publisher), {}).status_code == 302
    publisher.refresh_from_db()
    assert publisher.removed_at is not None


def test_opening_the_remove_url_changes_nothing(
    as_alice: CommittingClient, alice: User, project: Project
) -> None:
    publisher = publisher_row(added_by=alice, project=project)
    response = as_alice.get(remove_url(project, publisher))
    assert response.status_code == 302 and response["Location"] == publishing(project)
    publisher.refresh_from_db()
    assert publisher.removed_at is None


def test_the_page_shows_the_recent_minted_tokens(
    as_alice: CommittingClient, alice: User, project: Project
) -> None:
    publisher = publisher_row(added_by=alice, project=project)
    minted_token(publisher)
    minted_token(publisher, revoked=True)
    html = as_alice.get(publishing(project)).content.decode()
    assert "Its latest upload tokens" in html
    assert "Working" in html and "Revoked by the job that used it" in html


# --- pending publishers ------------------------------------------------------------------


def pending_page() -> str:
    return reverse("manage:pending_publishing")


def remove_pending_url(publisher: TrustedPublisher) -> str:
    return reverse("manage:remove_pending_publisher", args=[publisher.pk])


def test_an_account_adds_and_removes_a_pending_publisher(
    as_alice: CommittingClient, alice: User, mail: Any
) -> None:
    response = as_alice.post(pending_page(), {**GITHUB_FORM, "project_name": "New_Tool"})
    assert response.status_code == 302
    publisher = TrustedPublisher.objects.get()
    assert publisher.is_pending and publisher.pending_name == "New_Tool"
    assert publisher.pending_normalized_name == "new-tool" and publisher.added_by == alice
    [event] = publisher_events(alice)
    assert event.details["project"] == "New_Tool" and event.details["pending"] is True
    message = mail.last("alice@example.org")
    assert str(message["Subject"]) == "Pending trusted publisher added for New_Tool"
    assert "The first upload it makes creates New_Tool, owned by alice." in mail.text(message)
    html = as_alice.get(pending_page()).content.decode()
    assert "New_Tool" in html and remove_pending_url(publisher) in html
    assert as_alice.post(remove_pending_url(publisher), {}).status_code == 302
    publisher.refresh_from_db()
    assert publisher.removed_at is not None
    assert kinds(alice).count(EventKind.TRUSTED_PUBLISHER_REMOVED) == 1
    assert "Pending trusted publisher removed for New_Tool" in subjects(mail, "alice@example.org")


@pytest.mark.parametrize("name", ["acme-tool", "ACME_tool", "acme.tool"])
def test_a_pending_publisher_cannot_name_an_existing_project(
    as_alice: CommittingClient, alice: User, project: Project, mail: Any, name: str
) -> None:
    response = as_alice.post(pending_page(), {**GITHUB_FORM, "project_name": name})
    assert response.status_code == 400
    assert f"&#x27;{name}&#x27; is already a project here" in response.content.decode()
    assert not TrustedPublisher.objects.exists() and mail.messages == []


def test_a_private_projects_spelling_is_not_shown(
    as_alice: CommittingClient, make_user: Any
) -> None:
    make_project("Secret_Thing", owners=(make_user(username="erin"),))
    html = as_alice.post(pending_page(), {**GITHUB_FORM, "project_name": "secret-thing"}
                         ).content.decode()
    assert "is already a project here" in html and "Secret_Thing" not in html


def test_a_pending_name_must_be_a_valid_project_name(as_alice: CommittingClient) -> None:
    response = as_alice.post(pending_page(), {**GITHUB_FORM, "project_name": "-bad name-"})
    assert response.status_code == 400
    assert "is not a valid project name" in response.content.decode()
    assert not TrustedPublisher.objects.exists()


def test_the_same_pending_publisher_twice_is_refused(
    as_alice: CommittingClient, alice: User, make_user: Any
) -> None:
    publisher_row(added_by=make_user(username="erin"), pending_name="new-tool",
                  environment="pypi")
    response = as_alice.post(pending_page(), {**GITHUB_FORM, "project_name": "New.Tool"})
    assert response.status_code == 400
    assert "This publisher is already pending for &#x27;New.Tool&#x27;." in (
        response.content.decode())
    assert TrustedPublisher.objects.count() == 1


def test_another_publisher_may_be_pending_for_the_same_name(
    as_alice: CommittingClient, make_user: Any
) -> None:
    """As on PyPI: the first to publish creates the project; the others are dropped then."""
    publisher_row(added_by=make_user(username="erin"), pending_name="new-tool")
    form = {**GITHUB_FORM, "repository": "alice/new-tool", "project_name": "new-tool"}
    assert as_alice.post(pending_page(), form).status_code == 302
    assert TrustedPublisher.objects.count() == 2


def test_an_account_has_at_most_three_pending_publishers(
    as_alice: CommittingClient, alice: User, mail: Any
) -> None:
    for n in range(MAX_PENDING_PER_ACCOUNT):
        publisher_row(added_by=alice, pending_name=f"tool-{n}")
    response = as_alice.post(pending_page(), {**GITHUB_FORM, "project_name": "one-more"})
    assert response.status_code == 400
    assert f"You already have {MAX_PENDING_PER_ACCOUNT} pending publishers" in (
        response.content.decode())
    assert TrustedPublisher.objects.count() == MAX_PENDING_PER_ACCOUNT and mail.messages == []


@pytest.mark.parametrize("who", ["no second factor", "stale password", "frozen"])
def test_adding_a_pending_publisher_needs_what_adding_one_does(
    client: CommittingClient, make_user: Any, alice: User, bob: User, project: Project,
    mail: Any, who: str,
) -> None:
    _as(who, client, make_user, alice, bob, project)
    status, text = REFUSALS[who]
    response = client.post(pending_page(), {**GITHUB_FORM, "project_name": "new-tool"})
    assert response.status_code == status and text in response.content.decode()
    assert not TrustedPublisher.objects.exists() and mail.messages == []


def test_another_accounts_pending_publisher_cannot_be_removed(
    as_alice: CommittingClient, make_user: Any
) -> None:
    theirs = publisher_row(added_by=make_user(username="erin"), pending_name="new-tool")
    response = as_alice.post(remove_pending_url(theirs), {})
    assert response.status_code == 404
    assert "You have no such pending publisher." in response.content.decode()
    theirs.refresh_from_db()
    assert theirs.removed_at is None


def test_a_used_pending_publisher_is_removed_on_its_projects_page(
    as_alice: CommittingClient, alice: User, project: Project
) -> None:
    """Once its upload made the project, it is the project's publisher: the pending page's
    removal (which tells only its adder) no longer applies to it."""
    used = publisher_row(added_by=alice, project=project)
    assert as_alice.post(remove_pending_url(used), {}).status_code == 404
    used.refresh_from_db()
    assert used.removed_at is None


def test_the_pending_page_says_when_the_name_was_taken(
    as_alice: CommittingClient, alice: User, project: Project
) -> None:
    publisher_row(added_by=alice, pending_name="acme-tool")
    html = as_alice.get(pending_page()).content.decode()
    assert "A project named acme-tool exists now" in html


# --- the project's history of publishes --------------------------------------------------


def test_the_manage_page_says_how_each_file_was_published(
    client: CommittingClient, alice: User, bob: User, project: Project
) -> None:
    """Every member sees it: the project's history of publishes (issue 21, attribution)."""
    from tests.index.project_rows import add_file, make_release

    release = make_release(project, "1.0")
    publisher = publisher_row(added_by=alice, project=project)
    by_ci = add_file(release, "acme_tool-1.0-py3-none-any.whl", b"wheel")
    by_ci.uploader, by_ci.trusted_publisher = alice, publisher
    by_ci.upload_token = minted_token(publisher)
    by_ci.save()
    by_hand = add_file(release, "acme_tool-1.0.tar.gz", b"sdist")
    by_hand.uploader = bob
    by_hand.upload_token = APIToken.objects.create(
        user=bob, name="ci", identifier="handmade0001", secret_digest="0" * 64,
    )
    by_hand.save()
    html = sign_in(client, bob).get(reverse("manage:project", args=["acme-tool"])
                                    ).content.decode()
    assert "uploaded by GitHub Actions: acme/tool, workflow release.yml" in html
    assert "uploaded by bob with token “ci”" in html
