"""Tokens that clean up after themselves, on the account's side (issue 21): old tokens without
expiry keep working and say so, tokens a trusted publisher minted stay off the account's list,
its cap and its revoke button, and the list shows where each token was last used from."""

from datetime import UTC, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from relatch.accounts.models import User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import APIToken, Project, Role, TrustedPublisher
from relatch.index.tokens import primitive, services
from relatch.index.tokens.queries import describe_client
from tests.conftest import CommittingClient, sign_in
from tests.index.read_tokens import make_token, token_header
from tests.index.test_tokens import LIST, revoke_url, service_token
from tests.mfa.factor_rows import add_app

API = "/api/v1"
PIP = "pip/24.0 {\"ci\":null,\"cpu\":\"x86_64\"}"
TWINE = ("twine/6.1.0 requests/2.32.3 requests-toolbelt/1.0.0 urllib3/2.2.3 CPython/3.12.3 "
         "Linux/6.8.0")


@pytest.fixture
def alice(user: User) -> User:
    add_app(user)
    return user


def minted_token(user: User, *, name: str = "sample-pkg") -> APIToken:
    """A token as the OIDC exchange mints it: one project, 15 minutes, ``publisher`` set."""
    project = Project.objects.create(name=name, normalized_name=name)
    Role.objects.create(project=project, user=user, kind=Role.Kind.OWNER)
    publisher = TrustedPublisher.objects.create(
        project=project, added_by=user, issuer="https://token.actions.githubusercontent.com",
        dialect="github", repository="alice/sample-pkg", workflow="release.yml",
    )
    text = primitive.new_token()
    return APIToken.objects.create(
        user=user, name="Trusted publisher: alice/sample-pkg", identifier=text.identifier,
        secret_digest=primitive.digest_secret(text.secret), project=project,
        publisher=publisher, expires_at=timezone.now() + timedelta(minutes=15),
    )


def api_post(client: Client, path: str, data: dict[str, Any] | None = None) -> Any:
    return client.post(f"{API}{path}", data or {}, content_type="application/json")


# --- Tokens from before expiry -------------------------------------------------------------


def test_a_token_made_before_tokens_expired_keeps_working_and_says_so(
    signed_in: Client, alice: User
) -> None:
    text = make_token(alice, purpose=APIToken.Purpose.UPLOAD)  # expires_at None, as before
    assert services.authenticate_token(raw=text).expires_at is None
    listing = signed_in.get(LIST)
    assert "Never expires (made before tokens expired)" in listing.text
    assert "Working" in listing.text
    api = signed_in.get(f"{API}/account/tokens").json()
    assert api[0]["expires_at"] is None


def test_the_list_states_the_rules(signed_in: Client, alice: User) -> None:
    text = signed_in.get(LIST).text
    assert "New tokens expire after 90 days unless you choose another date" in text
    assert "A token unused for 180 days is\n  disabled" in text


# --- Minted tokens -------------------------------------------------------------------------


def test_minted_tokens_are_not_listed_on_the_page_or_in_the_api(
    signed_in: Client, alice: User
) -> None:
    service_token(alice, name="laptop")
    minted = minted_token(alice)
    page = signed_in.get(LIST).text
    assert "laptop" in page
    assert minted.name not in page
    assert minted.identifier not in page
    assert revoke_url(minted.pk) not in page
    listed = signed_in.get(f"{API}/account/tokens").json()
    assert [t["name"] for t in listed] == ["laptop"]


def test_minted_tokens_do_not_count_against_the_cap(alice: User) -> None:
    APIToken.objects.bulk_create(
        APIToken(user=alice, name=f"t{i}", identifier=f"id{i:04d}", secret_digest="0" * 64)
        for i in range(services.MAX_LIVE_TOKENS - 1)
    )
    for n in range(3):
        minted_token(alice, name=f"pkg-{n}")
    assert services.live_tokens(alice).count() == services.MAX_LIVE_TOKENS - 1
    service_token(alice, name="the fiftieth")  # the minted ones took no place
    with pytest.raises(services.TokenError, match="already have 50 working tokens"):
        service_token(alice, name="one too many")


@pytest.mark.parametrize("where", ["page", "api"])
def test_revoking_a_minted_token_from_the_account_is_not_found(
    signed_in: Client, alice: User, where: str
) -> None:
    """The project's publishing page owns minted tokens; the account's revoke does not reach
    them (the same answer as another account's token)."""
    minted = minted_token(alice)
    if where == "page":
        response = signed_in.post(revoke_url(minted.pk))
        assert response.status_code == 404
        assert "That is not one of your API tokens. Nothing was changed." in response.text
    else:
        response = api_post(signed_in, f"/account/tokens/{minted.pk}/revoke")
        assert response.status_code == 404
        assert response.json() == {"detail": "There is no such token on your account."}
    minted.refresh_from_db()
    assert minted.revoked_at is None
    assert not SecurityEvent.objects.filter(kind=EventKind.API_TOKEN_REVOKED).exists()


@pytest.mark.parametrize("where", ["page", "api"])
def test_revoking_says_the_owner_did_it(signed_in: Client, alice: User, where: str) -> None:
    row, _ = service_token(alice, name="old laptop")
    if where == "page":
        assert signed_in.post(revoke_url(row.pk)).status_code == 302
        assert "Token “old laptop” revoked" in signed_in.get(LIST).text
    else:
        answer = api_post(signed_in, f"/account/tokens/{row.pk}/revoke")
        assert answer.status_code == 200
        assert answer.json()["revoked_because"] == "owner"
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert row.revoked_because == APIToken.RevokedBecause.OWNER


# --- Last use ------------------------------------------------------------------------------


def test_last_use_shows_when_from_where_and_with_what(
    client: CommittingClient, alice: User, settings: Any
) -> None:
    """A leaked token used from elsewhere stands out: the page names the address and the
    program of its last use, in the site's <time> format."""
    settings.RELATCH_PROXY_COUNT = 0
    text = make_token(alice)
    reader = Client()
    answer = reader.get("/simple/", HTTP_AUTHORIZATION=token_header(text), HTTP_USER_AGENT=PIP,
                        REMOTE_ADDR="203.0.113.7")
    assert answer.status_code == 200
    row = APIToken.objects.get()
    assert (row.last_used_ip, row.last_used_user_agent) == ("203.0.113.7", PIP)
    assert row.last_used_at is not None
    sign_in(client, alice)
    page = client.get(LIST).text
    exact = row.last_used_at.astimezone(UTC)
    assert (f'Last used <time datetime="{exact.isoformat()}" '
            f'title="{exact:%Y-%m-%d %H:%M:%S} UTC">just now</time> from 203.0.113.7, '
            "pip 24.0") in page
    [line] = client.get(f"{API}/account/tokens").json()
    assert line["last_used_ip"] == "203.0.113.7"
    assert line["last_used_user_agent"] == PIP
    assert line["last_used_client"] == "pip 24.0"


def test_a_long_user_agent_is_cut_at_512_characters(alice: User, rf: Any) -> None:
    row, _ = service_token(alice)
    request = rf.get("/legacy/", HTTP_USER_AGENT="x/1 " + "y" * 2000, REMOTE_ADDR="2001:db8::1")
    services.note_token_use(request=request, token=row)
    row.refresh_from_db()
    assert len(row.last_used_user_agent) == 512
    assert row.last_used_ip == "2001:db8::1"


@pytest.mark.parametrize(
    ("agent", "words"),
    [
        (TWINE, "twine 6.1.0 on Linux 6"),
        ('uv/0.5.11 {"installer":{"name":"uv"}}', "uv 0.5.11"),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
         "Firefox 140 on Linux"),
        ("", "no user agent sent"),
        ("<script>alert(1)</script>", "Unknown browser"),
    ],
)
def test_programs_are_named_as_people_recognise_them(agent: str, words: str) -> None:
    assert describe_client(agent) == words
