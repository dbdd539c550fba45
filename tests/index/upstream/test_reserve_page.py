"""/manage/reserve/: a signed-in account with a second factor reserves a name; anyone else,
and a taken or invalid name, changes nothing."""

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from relatch.accounts.freeze import freeze_account
from relatch.accounts.models import User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import Project, Role
from tests.conftest import CommittingClient, sign_in
from tests.index.dists import build_wheel
from tests.index.project_rows import make_project
from tests.index.simple_rows import publish

pytestmark = pytest.mark.django_db
URL = "/manage/reserve/"


def _reserved() -> list[str]:
    return list(SecurityEvent.objects.filter(kind=EventKind.UPSTREAM_NAME_RESERVED)
                .values_list("details__project", flat=True))


def test_an_owner_with_a_second_factor_reserves_a_name(
    as_alice: CommittingClient, alice: User
) -> None:
    assert reverse("manage:reserve") == URL
    form = as_alice.get(URL)
    assert form.status_code == 200
    assert 'name="name"' in form.content.decode()
    assert URL in as_alice.get(reverse("manage:projects")).content.decode()
    response = as_alice.post(URL, {"name": "Acme_Tools"}, follow=True)
    assert response.redirect_chain[0] == ("/manage/project/acme-tools/", 302)
    assert "Acme_Tools is reserved" in response.content.decode()
    project = Project.objects.get(normalized_name="acme-tools")
    assert project.name == "Acme_Tools"
    assert Role.objects.get(project=project).user == alice
    assert _reserved() == ["Acme_Tools"]


@pytest.mark.parametrize(("name", "message", "status"), [
    ("taken.name", "&#x27;taken.name&#x27; is already a project here", 400),
    ("no good!", "is not a valid project name", 400),
    ("", "Enter the name to reserve.", 400),
    ("a" * 201, "A project name has at most 200 characters.", 400),
])
def test_a_taken_or_invalid_name_is_refused_with_its_reason(
    as_alice: CommittingClient, name: str, message: str, status: int
) -> None:
    publish(build_wheel("Taken_Name", "1.0"))
    response = as_alice.post(URL, {"name": name})
    assert response.status_code == status
    assert message in response.content.decode()
    assert Project.objects.count() == 1
    assert _reserved() == []


def test_a_private_projects_own_spelling_is_not_shown(as_alice: CommittingClient,
                                                       make_user: Any) -> None:
    make_project("Secret_Thing", owners=(make_user(username="mallory"),))
    html = as_alice.post(URL, {"name": "secret-thing"}).content.decode()
    assert "&#x27;secret-thing&#x27; is already a project here" in html
    assert "Secret_Thing" not in html


@pytest.mark.parametrize("who", ["anonymous", "no second factor", "frozen"])
def test_who_may_not_reserve(client: CommittingClient, make_user: Any, alice: User,
                             who: str) -> None:
    if who == "no second factor":
        sign_in(client, make_user(username="carol"))
    elif who == "frozen":
        sign_in(client, alice)
        freeze_account(user=alice, reason="test")
    response = client.post(URL, {"name": "wanted-name"})
    expected = {"anonymous": 302, "no second factor": 403, "frozen": 400}[who]
    assert response.status_code == expected
    if who == "anonymous":
        assert "/signin" in response["Location"] or "login" in response["Location"]
    if who == "no second factor":
        assert "needs two-step sign-in" in response.content.decode()
    if who == "frozen":
        assert "frozen" in response.content.decode().lower()
    assert not Project.objects.exists()
    assert _reserved() == []


def test_a_post_without_the_csrf_token_is_refused(alice: User) -> None:
    browser = sign_in(Client(enforce_csrf_checks=True), alice)
    assert browser.post(URL, {"name": "wanted-name"}).status_code == 403
    assert not Project.objects.exists()
