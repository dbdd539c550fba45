"""``next`` is a path on this site or nothing (web/next_url.py): the walls and the factor
set-up pages pass it along, so a crafted link must not make them an open redirect."""

import pytest
from django.test import RequestFactory

from relatch.web.next_url import MAX_NEXT_LENGTH, local_next, requested_next, with_next

ALLOWED = [
    "/manage/invitations/",
    "/account/tokens/new/",
    "/account/two-factor/app/?next=%2Fmanage%2Finvitations%2F",
    "/desk/?state=open&page=2",
]
REFUSED = [
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example/",
    "https://evil.example/",
    "http://testserver/manage/",  # even this site's absolute URL: a path is all we need
    "javascript:alert(1)",
    "manage/invitations/",
    " /manage/",
    "",
    "/" + "a" * MAX_NEXT_LENGTH,
]


@pytest.mark.parametrize("candidate", ALLOWED)
def test_a_local_path_is_kept(candidate: str) -> None:
    assert local_next(candidate) == candidate


@pytest.mark.parametrize("candidate", REFUSED)
def test_anything_that_could_leave_the_site_is_dropped(candidate: str) -> None:
    assert local_next(candidate) == ""


def test_a_form_field_wins_over_the_query_string() -> None:
    request = RequestFactory().post("/x/?next=/from-query/", {"next": "/from-form/"})
    assert requested_next(request) == "/from-form/"
    assert requested_next(RequestFactory().get("/x/?next=//evil.example/")) == ""


@pytest.mark.parametrize(("url", "next_url", "expected"), [
    ("/account/two-factor/", "/manage/invitations/",
     "/account/two-factor/?next=%2Fmanage%2Finvitations%2F"),
    ("/account/two-factor/?a=1", "/x/", "/account/two-factor/?a=1&next=%2Fx%2F"),
    ("/account/two-factor/", "https://evil.example/", "/account/two-factor/"),
    ("/account/two-factor/", "", "/account/two-factor/"),
])
def test_with_next_carries_only_a_safe_next(url: str, next_url: str, expected: str) -> None:
    assert with_next(url, next_url) == expected
