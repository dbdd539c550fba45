"""The frame every page gets from its area (web/layout.py): the account navigation marks the page
a person is on, sign-in and recovery pages stay one calm column, the desk is for staff."""

import re
from typing import Any

import pytest

from tests.conftest import sign_in

pytestmark = pytest.mark.django_db

ACCOUNT_PAGES = [
    ("/account/", "Overview"),
    ("/account/emails/", "Email addresses"),
    ("/account/password/", "Password"),
    ("/account/two-factor/", "Two-step sign-in"),
    ("/account/sessions/", "Sessions and devices"),
    ("/account/history/", "Security history"),
    ("/account/tokens/", "API tokens"),
    ("/manage/projects/", "Your projects"),
]


def current_nav_item(html: str) -> list[str]:
    return re.findall(r'<a href="[^"]+" aria-current="page">([^<]+)</a>', html)


@pytest.mark.parametrize(("path", "label"), ACCOUNT_PAGES)
def test_each_account_page_marks_itself_in_the_account_navigation(
    signed_in: Any, path: str, label: str
) -> None:
    html = signed_in.get(path).content.decode()
    assert 'class="area-account"' in html
    assert '<nav class="account-nav" aria-label="Account">' in html
    assert current_nav_item(html) == [label]


@pytest.mark.parametrize("path", [
    "/account/login/", "/account/register/", "/account/reset/", "/recovery/request/",
])
def test_sign_in_and_recovery_pages_are_one_column_without_account_navigation(
    client: Any, path: str
) -> None:
    html = client.get(path).content.decode()
    assert 'class="area-entry"' in html
    assert "account-nav" not in html
    assert "Get back into your account" in html  # the footer's way out when locked out


def test_the_desk_link_is_shown_to_staff_only(client: Any, make_user: Any) -> None:
    member = make_user(username="member", email="member@example.org")
    staff = make_user(username="staff", email="staff@example.org", is_staff=True)
    sign_in(client, member)
    assert "Recovery desk" not in client.get("/account/").content.decode()
    sign_in(client, staff)
    assert "Recovery desk" in client.get("/account/").content.decode()
