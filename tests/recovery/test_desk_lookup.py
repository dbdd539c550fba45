"""The desk's user search, /desk/users/ (issue 7 §1): staff find an account by exact username,
exact address or the start of a username, with what they check first, in a fixed number of
queries (ASVS 8.2.1: staff only, like the rest of the desk)."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import resolve
from django.utils import timezone

from relatch.accounts.models import Email, User
from relatch.audit.models import StaffAction
from relatch.index.models import APIToken, Project, Role
from relatch.index.tokens.services import create_token
from relatch.recovery.desk import lookup
from relatch.recovery.desk.forms import NO_CONTROL_CHARACTERS
from relatch.recovery.models import RecoveryRequest, State
from tests.conftest import sign_in
from tests.mfa.factor_rows import add_app, add_codes, add_key
from tests.recovery.requests import make_request

pytestmark = pytest.mark.django_db

LABEL = "Username or email address"


def search(desk, query):
    response = desk.get("/desk/users/", {"q": query})
    assert response.status_code == 200
    return response


def found(response):
    return [m.user.username for m in response.context["matches"]]


def rows_of(page):
    return re.findall(r"<tr>\s*<td><strong>([^<]+)</strong>", page)


# --- who may search ---------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "?q=alice"])
@pytest.mark.parametrize("who", ["anonymous", "normal user"])
def test_people_without_the_role_get_the_desks_404(client, user, who, query):
    if who == "normal user":
        add_app(user)
        sign_in(client, user)
    response = client.get("/desk/users/" + query)
    assert response.status_code == 404
    assert "alice@example.org" not in response.content.decode()


def test_staff_without_a_second_factor_are_refused(client, make_user, user):
    staff = make_user(username="dana", is_staff=True)
    sign_in(client, staff)
    response = client.get("/desk/users/", {"q": "alice"})
    assert response.status_code == 403
    assert "two-step sign-in" in response.content.decode()
    assert "alice@example.org" not in response.content.decode()


def test_users_is_the_search_and_not_a_request_named_users(desk, user):
    """``<str:public_id>/`` would match "users": the search's route comes first."""
    RecoveryRequest.objects.filter(pk=make_request(user).pk).update(public_id="users")
    assert resolve("/desk/users/").url_name == "users"
    page = desk.get("/desk/users/").content.decode()
    assert LABEL in page
    assert "recovery" not in desk.get("/desk/users/").context


def test_the_queue_links_to_the_search_and_the_search_back(desk):
    assert 'href="/desk/users/"' in desk.get("/desk/").content.decode()
    assert 'href="/desk/"' in desk.get("/desk/users/").content.decode()


# --- matching ---------------------------------------------------------------------------------


def test_an_empty_query_shows_only_the_form(desk, user):
    for response in (desk.get("/desk/users/"), search(desk, ""), search(desk, "   ")):
        page = response.content.decode()
        assert f'<label for="id_q">{LABEL}</label>' in page
        assert response.context["matches"] is None
        assert "alice" not in page.split("</form>")[1]


@pytest.mark.parametrize("query", ["alice", "ALICE", "  Alice "])
def test_an_exact_username_matches_ignoring_case(desk, user, query):
    response = search(desk, query)
    assert found(response) == ["alice"]
    assert "<td>username</td>" in response.content.decode()


@pytest.mark.parametrize(("query", "verified", "shown"), [
    ("alice@example.org", True, "verified"),
    ("ALICE.OLD@Example.NET", False, "unverified"),
])
def test_any_address_of_the_account_matches_and_says_whether_it_is_verified(
    desk, user, query, verified, shown
):
    Email.objects.create(user=user, address="alice.old@example.net")
    response = search(desk, query)
    assert found(response) == ["alice"]
    matched = query.strip().lower()
    assert f"address {matched} ({shown})" in response.content.decode()
    assert response.context["matches"][0].matched_address.verified is verified


def test_an_unverified_address_claimed_by_several_accounts_lists_them_all(desk, make_user):
    make_user(username="owner", email="shared@example.org")
    make_user(username="squatter", email="shared@example.org", verified=False)
    assert sorted(found(search(desk, "shared@example.org"))) == ["owner", "squatter"]


def test_exact_matches_come_first_then_prefixes_in_username_order(desk, make_user):
    for name in ["abcd", "Abc", "abcB", "abca", "xabc"]:
        make_user(username=name)
    response = search(desk, "abc")
    assert found(response) == ["Abc", "abca", "abcB", "abcd"]
    assert rows_of(response.content.decode()) == ["Abc", "abca", "abcB", "abcd"]


@pytest.mark.parametrize(("query", "expected"), [
    ("ab", []),  # too short for a prefix
    ("abc", ["abc1", "abc2"]),
    ("a_c", ["a_c1"]),  # "_" is itself, not any character
    ("abc%", []),  # "%" is itself: no username has one
    ("ab_", []),
    ("abc1x", []),
])
def test_a_prefix_needs_three_characters_and_wildcards_match_only_themselves(
    desk, make_user, query, expected
):
    for name in ["abc1", "abc2", "a_c1", "abd1", "abx1"]:
        make_user(username=name)
    assert found(search(desk, query)) == expected


def test_a_short_query_without_a_match_says_why(desk, make_user):
    make_user(username="abc1")
    page = search(desk, "ab").content.decode()
    assert "No account for “ab”" in page
    assert "from 3 characters on" in page


def test_at_most_25_results_the_exact_match_first(desk, make_user):
    make_user(username="bulk")
    for n in range(30):
        make_user(username=f"bulk{n:02d}")
    response = search(desk, "bulk")
    assert found(response) == ["bulk"] + [f"bulk{n:02d}" for n in range(24)]
    assert "Showing the first 25 matches" in response.content.decode()


# --- refused queries --------------------------------------------------------------------------


def queries_of(desk, query):
    with CaptureQueriesContext(connection) as captured:
        response = desk.get("/desk/users/", {"q": query})
    return response, len(captured)


@pytest.mark.parametrize(("query", "message"), [
    ("a" * 243 + "@example.org", "A username or address has at most 254 characters."),
    ("alice\x00", NO_CONTROL_CHARACTERS),
    ("al\x01ice", NO_CONTROL_CHARACTERS),
    ("alice\tsmith", NO_CONTROL_CHARACTERS),
])
def test_a_refused_query_is_a_field_error_and_runs_no_search(desk, user, query, message):
    _, form_only = queries_of(desk, "")
    response, count = queries_of(desk, query)
    assert response.status_code == 200
    assert response.context["matches"] is None
    page = response.content.decode()
    assert f'<div class="error" id="id_q_error"><p>{message}</p></div>' in page
    assert count == form_only


def test_the_longest_address_is_searched(desk, user):
    longest = "a" * 64 + "@" + "b" * 185 + ".org"
    assert len(longest) == 254
    Email.objects.create(user=user, address=longest)
    assert found(search(desk, longest)) == ["alice"]


# --- what a result shows ----------------------------------------------------------------------


def test_a_result_shows_what_staff_check_first(desk, user, make_user):
    User.objects.filter(pk=user.pk).update(date_joined=timezone.now() - timedelta(days=400))
    Email.objects.create(user=user, address="alice.old@example.net")
    add_app(user)
    add_key(user, "Blue key")
    add_key(user, "Spare key")
    add_codes(user, used=2, total=8)
    for n, kind in enumerate([Role.Kind.OWNER, Role.Kind.OWNER, Role.Kind.MAINTAINER]):
        project = Project.objects.create(name=f"P{n}", normalized_name=f"p{n}")
        Role.objects.create(project=project, user=user, kind=kind)
    waiting = make_request(user, state=State.AWAITING_PROOF)
    make_request(user, state=State.DENIED)  # closed
    never_filed = make_request(user, contact_confirmed_at=None)
    page = search(desk, "alice").content.decode()

    assert "<strong>alice</strong><br>Alice Liddell" in page
    assert (timezone.now() - timedelta(days=400)).strftime("%Y-%m-%d") in page
    assert "alice@example.org — verified, primary" in page
    assert "alice.old@example.net — unverified" in page
    assert "Authenticator app: yes" in page and "Security keys: 2" in page
    assert "Recovery codes: 6 unused" in page
    assert "owns 2, maintains 1" in page
    link = f'<a href="/desk/{waiting.public_id}/">{waiting.public_id}</a>'
    assert f"{link} — Waiting for proof" in page
    assert never_filed.public_id not in page
    assert re.findall(r'href="/desk/([^"/]+)/"', page) == [waiting.public_id]
    assert ">active<" in page


def test_an_account_without_factors_and_inactive_says_so(desk, make_user):
    User.objects.filter(pk=make_user(username="quiet").pk).update(is_active=False)
    page = search(desk, "quiet").content.decode()
    assert "Authenticator app: none" in page and "Security keys: 0" in page
    assert "Recovery codes: none" in page
    assert "owns 0, maintains 0" in page
    assert "inactive" in page


def test_searching_records_nothing(desk, user):
    search(desk, "alice")
    assert not StaffAction.objects.exists()


# --- a fixed number of queries ----------------------------------------------------------------


def well_furnished(make_user, prefix, count):
    """``count`` accounts named ``prefix``0…, each with everything a result shows."""
    for n in range(count):
        user = make_user(username=f"{prefix}{n}")
        Email.objects.create(user=user, address=f"{prefix}{n}@old.example")
        add_app(user)
        add_key(user, "key")
        add_codes(user, used=1, total=3)
        project = Project.objects.create(name=f"{prefix}{n}", normalized_name=f"{prefix}{n}")
        Role.objects.create(project=project, user=user, kind=Role.Kind.OWNER)
        make_request(user)
        make_request(user, state=State.AWAITING_APPROVAL)


def test_the_page_runs_as_many_queries_for_20_results_as_for_1(desk, make_user):
    well_furnished(make_user, "solo", 1)
    well_furnished(make_user, "many", 20)
    queries_of(desk, "")  # the session's first-request work, out of the way
    one, for_one = queries_of(desk, "solo")
    twenty, for_twenty = queries_of(desk, "many")
    assert len(rows_of(one.content.decode())) == 1
    assert len(rows_of(twenty.content.decode())) == 20
    assert twenty.content.decode().count("Waiting for staff approval") == 20
    assert for_one == for_twenty


@pytest.mark.parametrize("count", [1, 20])
def test_the_search_itself_is_five_queries(make_user, count):
    """Exact username, prefix, the accounts with their counts, their addresses, their open
    requests."""
    well_furnished(make_user, "acme", count)
    with CaptureQueriesContext(connection) as captured:
        matches = lookup.find_accounts("acme")
    assert len(matches) == count
    assert all(len(m.open_requests) == 2 and m.factors.security_keys == 1 for m in matches)
    assert len(captured) == 5


# --- the same search in the staff API ---------------------------------------------------------


def api_search(client, token, query):
    return client.get("/api/v1/desk/users", {"q": query},
                      headers={"Authorization": f"Bearer {token}"})


def token_of(user, purpose=APIToken.Purpose.STAFF):
    row, text = create_token(request=None, user=user, name="desk", project=None,
                             expires_at=None)
    APIToken.objects.filter(pk=row.pk).update(purpose=purpose)
    return text


@pytest.fixture
def staff_token(make_user):
    staff = make_user(username="dana", is_staff=True)
    add_app(staff)
    return token_of(staff)


def test_the_api_finds_accounts_as_the_page_does(client, staff_token, user, make_user):
    Email.objects.create(user=user, address="alice.old@example.net")
    add_key(user, "Blue key")
    waiting = make_request(user, state=State.AWAITING_PROOF)
    make_user(username="alicia")
    response = api_search(client, staff_token, "ALI")
    assert response.status_code == 200
    assert [m["username"] for m in response.json()] == ["alice", "alicia"]
    alice = response.json()[0]
    assert alice["matched_by"] == "prefix" and alice["name"] == "Alice Liddell"
    assert alice["addresses"] == [
        {"address": "alice@example.org", "verified": True, "primary": True},
        {"address": "alice.old@example.net", "verified": False, "primary": False},
    ]
    assert alice["factors"] == {"authenticator_app": False, "security_keys": 1,
                                "recovery_codes_left": None}
    assert [r["public_id"] for r in alice["open_requests"]] == [waiting.public_id]
    by_address = api_search(client, staff_token, "Alice.Old@example.net").json()
    assert by_address[0]["matched_address"] == {"address": "alice.old@example.net",
                                                "verified": False, "primary": False}


@pytest.mark.parametrize("query", ["a" * 255, "alice\x00", "al\x1bice"])
def test_the_api_refuses_what_the_form_refuses(client, staff_token, user, query):
    response = api_search(client, staff_token, query)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("q: ")
    assert "alice@example.org" not in response.content.decode()


@pytest.mark.parametrize("who", ["upload token", "not staff"])
def test_the_api_search_is_for_staff_tokens_only(client, make_user, user, who):
    if who == "upload token":
        staff = make_user(username="dana", is_staff=True)
        add_app(staff)
        token = token_of(staff, APIToken.Purpose.UPLOAD)
    else:
        add_app(user)
        token = token_of(user)
    response = api_search(client, token, "alice")
    assert response.status_code in (401, 403)
    assert "alice@example.org" not in response.content.decode()
