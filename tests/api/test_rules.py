"""Issue 16 point 3: the JSON API and the pages apply one rule each, and say it in one way.
Three rules had drifted apart: how a typed project name finds a project, how far ahead a token
may expire, and whether staff see a request that was never filed. Each is checked here on the
page and on the API together; then that the API keeps to one refusal type and no view module."""

import ast
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

import relatch.api
from relatch.index.models import APIToken
from relatch.index.tokens.services import expiry_too_far, latest_expiry
from relatch.recovery.desk.services import DeskRefusedError
from relatch.recovery.models import ProofKind, RecoveryRequest
from relatch.recovery.proofs.branch_checks import CheckLimitedError
from relatch.recovery.proofs.services import ProofError
from relatch.recovery.requester.services import RequesterError
from relatch.web.refusals import Refusal
from tests.api.test_api import API, bearer, post, token_of
from tests.conftest import sign_in
from tests.index.test_tokens import post_create
from tests.mfa.factor_rows import add_app
from tests.recovery.proof_rows import make_project
from tests.recovery.requests import make_request

pytestmark = pytest.mark.django_db
TYPED = "Spam_Eggs"  # the project is spam-eggs: the same name under PEP 503


@pytest.fixture
def staff(make_user):
    member = make_user(username="dana", is_staff=True)
    add_app(member)
    return member


@pytest.fixture
def spam_eggs(user):
    return make_project(user, "spam-eggs", urls={"Source": "https://github.com/alice/spam-eggs"})


# -- 1. a typed project name -------------------------------------------------------------------


def test_the_desk_page_finds_a_project_by_its_normalised_name(client, staff, user, spam_eggs):
    recovery = make_request(user)
    sign_in(client, staff)
    response = client.post(f"/desk/{recovery.public_id}/proof/",
                           {"kind": ProofKind.REPO_BRANCH, "project": TYPED})
    assert response.status_code == 302
    assert recovery.proofs.get().evidence["project"] == "spam-eggs"


def test_the_api_finds_the_same_project_as_the_page(client, staff, user, spam_eggs):
    """It looked the name up case-insensitively: "Spam_Eggs" found no "spam-eggs"."""
    recovery = make_request(user)
    asked = post(client, f"/desk/requests/{recovery.public_id}/proofs",
                 {"kind": "repo_branch", "project": TYPED}, **bearer(token_of(staff)))
    assert asked.status_code == 201, asked.content
    assert asked.json()["evidence"]["project"] == "spam-eggs"


def test_a_token_is_limited_to_the_project_typed_in_the_api(client, user, spam_eggs):
    add_app(user)
    sign_in(client, user)
    created = post(client, "/account/tokens", {"name": "ci", "project": TYPED})
    assert created.status_code == 201, created.content
    assert created.json()["scope"] == "Project spam-eggs"
    assert APIToken.objects.get().project == spam_eggs


@pytest.mark.parametrize("typed", ["spam-egg", " ", "spam-eggs" + "s" * 200])
def test_an_unknown_project_is_refused_by_both(client, staff, user, spam_eggs, typed):
    recovery = make_request(user)
    asked = post(client, f"/desk/requests/{recovery.public_id}/proofs",
                 {"kind": "repo_branch", "project": typed}, **bearer(token_of(staff)))
    assert asked.status_code in (400, 422)  # 422: longer than the schema allows
    sign_in(client, staff)
    page = client.post(f"/desk/{recovery.public_id}/proof/",
                       {"kind": ProofKind.REPO_BRANCH, "project": typed})
    assert page.status_code == 400
    assert not recovery.proofs.exists()


# -- 2. how far ahead a token may expire ----------------------------------------------------


def test_the_api_refuses_a_token_expiring_in_9999_as_the_page_does(client, user, mail, settings):
    """The cap lived in the page's form only: the API minted a token for 9999. Both refuse
    with one message naming the latest expiry allowed (TOKEN_MAX_DAYS, issue 21)."""
    add_app(user)
    sign_in(client, user)
    refused = post(client, "/account/tokens", {"name": "ci", "expires_at": "9999-12-31T00:00:00Z"})
    assert refused.status_code == 400
    latest = latest_expiry().astimezone(UTC)
    assert refused.json()["detail"].startswith(
        f"A token can work for at most {settings.TOKEN_MAX_DAYS} days: choose an expiry on or "
        f"before {latest:%Y-%m-%d}")
    far = (timezone.now() + timedelta(days=settings.TOKEN_MAX_DAYS + 1)).date().isoformat()
    page = post_create(client, expiry="date", expires_on=far)
    assert page.status_code == 400
    assert expiry_too_far(latest_expiry()).split(" on or before ")[0] in page.text
    assert f"on or before {latest:%Y-%m-%d}" in page.text
    assert not APIToken.objects.exists()


def test_a_token_within_the_cap_is_made_by_the_api(client, user, mail, settings):
    add_app(user)
    sign_in(client, user)
    when = timezone.now() + timedelta(days=settings.TOKEN_MAX_DAYS - 1)
    created = post(client, "/account/tokens", {"name": "ci", "expires_at": when.isoformat()})
    assert created.status_code == 201, created.content
    assert APIToken.objects.get().expires_at == when


# -- 3. a request that was never filed ------------------------------------------------------


def test_an_unconfirmed_request_is_not_found_on_the_desk_page_or_the_api(client, staff, user):
    """The page opened any request by id, the API only filed ones."""
    unfiled = make_request(user, contact_confirmed_at=None)
    api = client.get(f"{API}/desk/requests/{unfiled.public_id}", headers=bearer(token_of(staff)))
    assert api.status_code == 404
    assert api.json() == {"detail": "There is no recovery request with this id."}
    sign_in(client, staff)
    assert client.get(f"/desk/{unfiled.public_id}/").status_code == 404
    assert client.post(f"/desk/{unfiled.public_id}/assign-me/").status_code == 404
    assert RecoveryRequest.objects.get().assigned_to is None


def test_an_unconfirmed_request_is_no_earlier_request_of_the_account(client, staff, user):
    unfiled = make_request(user, contact_confirmed_at=None)
    filed = make_request(user)
    api = client.get(f"{API}/desk/requests/{filed.public_id}", headers=bearer(token_of(staff)))
    assert api.json()["facts"]["earlier_requests"] == []
    sign_in(client, staff)
    assert unfiled.public_id not in client.get(f"/desk/{filed.public_id}/").content.decode()


# -- one refusal type, no view module -------------------------------------------------------


@pytest.mark.parametrize(("refusal", "status"), [
    (DeskRefusedError("no"), 409), (ProofError("no"), 400), (CheckLimitedError("no"), 429),
    (RequesterError("no"), 400), (RequesterError("no", status=429), 429),
])
def test_the_services_refusals_are_refusals_with_their_status(refusal, status):
    assert isinstance(refusal, Refusal)
    assert (refusal.message, refusal.status) == ("no", status)


def test_the_api_imports_no_view_module():
    """The API shares the pages' services, read models and words, never their views."""
    for module in Path(relatch.api.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("relatch"):
                names = [node.module or "", *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("relatch")]
            for name in names:
                assert "views" not in name.split("."), (module.name, name)
