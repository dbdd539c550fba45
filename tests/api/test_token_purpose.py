"""POST /api/v1/account/tokens with ``purpose`` (issue 20): read tokens through the API, with
the tokens page's rules. A read token reads the index (HTTP Basic, as pip and uv send it) and
cannot upload; an upload token made the same way cannot read; a private project's name is not
confirmed to an account without a role on it."""

from typing import Any

import pytest
from django.test import Client

from relatch.accounts.models import User
from relatch.index.models import APIToken, File, Project, Role
from tests.api.test_api import API, post
from tests.conftest import sign_in
from tests.index.dists import build_wheel
from tests.index.read_tokens import token_header
from tests.index.simple_rows import own_sample_pkg
from tests.index.test_upload import post as upload
from tests.mfa.factor_rows import add_app

pytestmark = pytest.mark.django_db
PAGE = "/simple/sample-pkg/"


@pytest.fixture
def alice(user: User, files_dir: Any, settings: Any) -> User:
    """alice, owner of sample-pkg, with a second factor, on an index every read of which
    needs a reader."""
    settings.READ_ACCESS = "authenticated"
    add_app(user)
    return own_sample_pkg(user)


def made(client: Any, **body: Any) -> dict[str, Any]:
    response = post(client, "/account/tokens", {"name": "ci", **body})
    assert response.status_code == 201, response.content
    created: dict[str, Any] = response.json()
    return created


def test_a_read_token_made_through_the_api_reads_and_cannot_upload(client: Any, alice: User
                                                                   ) -> None:
    sign_in(client, alice)
    created = made(client, purpose="read")
    assert created["purpose"] == "read"
    assert APIToken.objects.get().purpose == APIToken.Purpose.READ
    header = token_header(created["token"])
    installer = Client()
    assert installer.get(PAGE).status_code == 401
    page = installer.get(PAGE, headers={"Authorization": header})
    assert page.status_code == 200 and b"sample_pkg-1.0" in page.content
    dist = build_wheel(version="9.0")
    refused = upload(installer, dist, created["token"])
    assert refused.status_code == 403
    assert not File.objects.filter(filename=dist.filename).exists()


def test_without_a_purpose_the_api_makes_an_upload_token_which_does_not_read(
    client: Any, alice: User
) -> None:
    sign_in(client, alice)
    created = made(client)
    assert created["purpose"] == "upload"
    header = token_header(created["token"])
    assert Client().get(PAGE, headers={"Authorization": header}).status_code == 401
    dist = build_wheel(version="9.0")
    assert upload(Client(), dist, created["token"]).status_code == 200
    assert File.objects.filter(filename=dist.filename).exists()


@pytest.mark.parametrize("purpose", ["staff", "READ", "", "install", None, 1])
def test_an_unknown_purpose_is_refused_and_makes_nothing(client: Any, alice: User,
                                                         make_user: Any, purpose: Any) -> None:
    """Staff tokens are never made here, not even by staff."""
    User.objects.filter(pk=alice.pk).update(is_staff=True)
    sign_in(client, alice)
    response = post(client, "/account/tokens", {"name": "ci", "purpose": purpose})
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list | str)
    assert not APIToken.objects.exists()


def test_a_read_token_limited_to_a_project_reads_only_it(client: Any, alice: User) -> None:
    sign_in(client, alice)
    created = made(client, purpose="read", project="Sample_Pkg")
    assert created["scope"] == "Project sample-pkg"
    header = {"Authorization": token_header(created["token"])}
    assert Client().get(PAGE, headers=header).status_code == 200


def test_the_schema_offers_upload_and_read(client: Any) -> None:
    schema = client.get(f"{API}/openapi.json").json()
    purpose = schema["components"]["schemas"]["TokenIn"]["properties"]["purpose"]
    assert purpose["enum"] == ["upload", "read"] and purpose["default"] == "upload"


def test_a_private_name_is_not_confirmed_to_an_account_without_a_role(
    client: Any, alice: User, make_user: Any
) -> None:
    """bob asks for a token limited to alice's private project: the answer is the one a
    missing name gets, not "you have no role on it"."""
    Project.objects.update(private=True)
    bob = make_user(username="bob")
    add_app(bob)
    Role.objects.create(project=Project.objects.create(name="bobs", normalized_name="bobs"),
                        user=bob, kind=Role.Kind.OWNER)
    sign_in(client, bob)
    for typed in ("sample-pkg", "no-such-pkg"):
        response = post(client, "/account/tokens", {"name": "ci", "purpose": "read",
                                                     "project": typed})
        assert response.status_code == 400
        assert response.json() == {"detail": "There is no project with that name."}
    assert not APIToken.objects.exists()
