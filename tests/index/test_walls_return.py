"""Every two-step wall returns to the task that raised it (issue 19): the invitations, the
owner's pages, the token form, the mail queue, the recovery desk. The wall links to setting up
a factor with ``next``; the invitation mail says what accepting needs first."""

from typing import Any
from urllib.parse import quote

import pytest
from django.urls import reverse

from relatch.accounts.models import User
from relatch.index.models import Project
from tests.conftest import CommittingClient, sign_in
from tests.index.project_rows import make_project

pytestmark = pytest.mark.django_db

OVERVIEW = reverse("mfa:overview")


def setup_link(next_url: str) -> str:
    return f'href="{OVERVIEW}?next={quote(next_url, safe="")}"'


@pytest.fixture
def carol(make_user: Any) -> User:
    """An account without a second factor, signed in below."""
    return make_user(username="carol")


@pytest.mark.parametrize(("method", "path", "task"), [
    ("get", "/manage/projects/", "/manage/projects/"),
    ("get", "/manage/invitations/", "/manage/invitations/"),
    ("get", "/manage/project/carols/", "/manage/project/carols/"),
    # An answer to an invitation (POST only) comes back to the list where it is sent again.
    ("post", "/manage/invitations/1/accept/", "/manage/invitations/"),
    ("get", "/account/tokens/new/", "/account/tokens/new/"),
])
def test_a_wall_links_to_setting_up_a_factor_and_back(
    client: CommittingClient, carol: User, method: str, path: str, task: str
) -> None:
    make_project("carols", owners=(carol,))
    sign_in(client, carol)
    response = getattr(client, method)(path)
    assert response.status_code == 403
    assert setup_link(task) in response.content.decode()


def test_the_token_list_links_back_to_the_token_form(client: CommittingClient, carol: User):
    sign_in(client, carol)
    html = client.get(reverse("tokens:list")).content.decode()
    assert setup_link(reverse("tokens:create")) in html


@pytest.mark.parametrize(("method", "path", "task"), [
    ("get", "/staff/mail/", "/staff/mail/"),
    ("get", "/desk/?state=submitted", "/desk/?state=submitted"),
    ("get", "/desk/users/", "/desk/users/"),
    # A form sent to the desk comes back to the queue, where it can be found again.
    ("post", "/desk/users/", "/desk/"),
])
def test_the_staff_walls_return_to_the_staff_page(
    client: CommittingClient, make_user: Any, method: str, path: str, task: str
) -> None:
    staff = make_user(username="sam", is_staff=True)
    sign_in(client, staff)
    response = getattr(client, method)(path)
    assert response.status_code == 403
    assert setup_link(task) in response.content.decode()


@pytest.fixture
def project(alice: User) -> Project:
    return make_project("Demo_Project", owners=(alice,))


def invite(client: CommittingClient, project: Project, username: str) -> Any:
    url = reverse("manage:invite", args=[project.normalized_name])
    return client.post(url, {"username": username, "kind": "maintainer"})


def test_the_invitation_mail_says_a_factor_comes_first(
    as_alice: CommittingClient, project: Project, carol: User, mail: Any, settings: Any
) -> None:
    assert invite(as_alice, project, "carol").status_code == 302
    message = mail.last("carol@example.org")
    link = f"{settings.BASE_URL}{OVERVIEW}?next=%2Fmanage%2Finvitations%2F"
    for text in (mail.text(message), mail.html(message)):
        assert "Accepting needs two-step sign-in first" in text
        assert link in text
        assert f"{settings.BASE_URL}/manage/invitations/" in text


def test_an_invitee_with_a_factor_is_not_told_to_set_one_up(
    as_alice: CommittingClient, project: Project, bob: User, mail: Any
) -> None:
    invite(as_alice, project, "bob")
    text = mail.text(mail.last("bob@example.org"))
    assert "two-step" not in text and "/manage/invitations/" in text
