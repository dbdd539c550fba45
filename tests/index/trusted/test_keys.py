"""The issuers' keys: fetched over verified TLS from the discovery document's jwks_uri,
cached, refetched when the issuer rotates, and never fetched more than once a minute for
made-up key ids."""

from typing import Any

import pytest
from django.test import Client

from relatch.accounts.models import User
from relatch.index.models import Project
from relatch.index.trusted import issuers
from tests.index.trusted.conftest import AUDIENCE, make_publisher
from tests.index.trusted.exchanging import mint, minted_text, no_token_minted, refused
from tests.oidc_issuer import FakeIssuer
from tests.serving import wait_for
from tests.tls import TestCA


@pytest.fixture
def publisher_token(oidc_settings: Any, github_issuer: FakeIssuer, ci_owner: User,
                    ci_project: Project) -> Any:
    make_publisher(issuer=github_issuer, added_by=ci_owner, project=ci_project)

    def token(**sign: Any) -> str:
        claims = github_issuer.github_claims(repository="acme/tool", workflow="release.yml",
                                             audience=AUDIENCE)
        return github_issuer.sign(claims, **sign)

    return token


def test_keys_are_fetched_once_and_kept(client: Client, github_issuer: FakeIssuer,
                                        publisher_token: Any) -> None:
    for _ in range(3):
        minted_text(mint(client, publisher_token()))
    assert (github_issuer.discovery_fetches, github_issuer.jwks_fetches) == (1, 1)


def test_a_rotated_key_is_fetched_and_made_up_kids_do_not_hammer_the_issuer(
    client: Client, github_issuer: FakeIssuer, publisher_token: Any
) -> None:
    minted_text(mint(client, publisher_token()))
    github_issuer.rotate_key()
    # The new key is not in the cached set: one refetch finds it.
    minted_text(mint(client, publisher_token()))
    assert github_issuer.jwks_fetches == 2
    # A flood of unknown kids within the minute: refused, the issuer not asked again.
    for n in range(10):
        refused(mint(client, publisher_token(kid=f"bogus-{n}")), "invalid-token",
                f"'bogus-{n}'", "does not publish")
    assert github_issuer.jwks_fetches == 2


def test_a_key_the_issuer_retired_is_refused_after_the_refetch(
    client: Client, github_issuer: FakeIssuer, publisher_token: Any
) -> None:
    old = github_issuer.current_kid
    old_key = github_issuer.keys[old].key
    minted_text(mint(client, publisher_token()))
    github_issuer.rotate_key()  # the old key leaves the JWKS
    minted_text(mint(client, publisher_token()))  # refetch: only the new key now
    refused(mint(client, publisher_token(kid=old, key=old_key)), "invalid-token",
            "does not publish")


@pytest.mark.parametrize(("change", "fragment"), [
    ({"discovery_overrides": {"issuer": "https://token.actions.githubusercontent.com"}},
     "names another issuer"),
    ({"discovery_overrides": {"jwks_uri": "http://127.0.0.1:9/jwks"}}, "no https jwks_uri"),
    ({"jwks_body": b'{"keys": [' + b'{"kty": "RSA"},' * 20_000 + b"{}]}"}, "more than"),
    ({"jwks_body": b"<html>"}, "did not send JSON"),
    ({"jwks_body": b'{"keys": [{"kty": "oct", "kid": "K", "k": "c2VjcmV0"}]}'},
     "does not publish"),
])
def test_an_issuer_whose_documents_are_wrong_lends_no_keys(
    client: Client, github_issuer: FakeIssuer, publisher_token: Any, change: dict[str, Any],
    fragment: str
) -> None:
    for name, value in change.items():
        setattr(github_issuer, name, value)
    refused(mint(client, publisher_token(kid="K") if "oct" in str(change) else
                 publisher_token()), "invalid-token", fragment)
    no_token_minted()


def test_an_issuer_whose_certificate_we_do_not_trust_is_not_asked(
    client: Client, github_issuer: FakeIssuer, publisher_token: Any,
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another CA's certificate only: the issuer's own chain is not trusted.
    monkeypatch.setenv("SSL_CERT_FILE", str(TestCA(tmp_path / "other").ca_file))
    refused(mint(client, publisher_token()), "invalid-token",
            "could not fetch the signing keys", "ConnectError")
    assert github_issuer.discovery_fetches == 0
    # The server's thread notes the failed handshake a moment after the client gave up.
    assert wait_for(lambda: github_issuer.server.tls_failures >= 1, 5)
    no_token_minted()


def test_an_unreachable_issuer_is_not_waited_for_again_at_once(
    client: Client, github_issuer: FakeIssuer, publisher_token: Any
) -> None:
    token = publisher_token()
    github_issuer.stop()
    refused(mint(client, token), "invalid-token", "could not fetch", "try again in a minute")
    # Remembered for FAILURE_MEMORY seconds: the next request fails at once.
    refused(mint(client, token), "invalid-token", "could not fetch")
    assert issuers.FAILURE_MEMORY <= 60
