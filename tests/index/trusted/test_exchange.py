"""The OIDC token exchange (PyPI's /_/oidc/ endpoints) against issuers on loopback over real
TLS: what a CI job that may publish gets, and the upload it makes with it."""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from django.test import Client
from django.utils import timezone

from relatch.accounts.models import User
from relatch.audit.models import EventKind, Factor, SecurityEvent
from relatch.index.models import APIToken, File, Project, Role
from relatch.index.tokens.services import create_token
from relatch.index.trusted import exchange_views
from relatch.index.trusted.models import TrustedPublisher, UsedOIDCToken
from relatch.index.trusted.used_tokens import prune_used_tokens
from relatch.index.trusted.verify import LEEWAY, MAX_TOKEN_LENGTH
from tests.conftest import Mailbox
from tests.index.dists import build_wheel
from tests.index.test_upload import post as upload
from tests.index.trusted.conftest import AUDIENCE, make_publisher
from tests.index.trusted.exchanging import (
    AUDIENCE_URL,
    burn,
    mint,
    minted_text,
    no_token_minted,
    refused,
)
from tests.oidc_issuer import FakeIssuer, new_key


@dataclass
class Dialect:
    """One CI provider: its issuer, the publisher row and the claims of a matching job."""

    issuer: FakeIssuer
    kind: str
    repository: str
    workflow: str

    def claims(self, **overrides: Any) -> dict[str, Any]:
        if self.kind == "gitlab":
            return self.issuer.gitlab_claims(project_path=self.repository, audience=AUDIENCE,
                                             ci_config_path=self.workflow, **overrides)
        return self.issuer.github_claims(repository=self.repository, workflow=self.workflow,
                                         audience=AUDIENCE, **overrides)

    def token(self, **overrides: Any) -> str:
        return self.issuer.sign(self.claims(**overrides))

    def publisher(self, user: User, project: Project | None = None,
                  **fields: Any) -> TrustedPublisher:
        return make_publisher(issuer=self.issuer, added_by=user, project=project,
                              dialect=self.kind, repository=self.repository,
                              workflow=self.workflow, **fields)


@pytest.fixture(params=["github", "gitlab"])
def dialect(request: pytest.FixtureRequest, oidc_settings: Any, github_issuer: FakeIssuer,
            gitlab_issuer: FakeIssuer) -> Dialect:
    if request.param == "gitlab":
        return Dialect(gitlab_issuer, "gitlab", "acme/tools/tool", "ci/release.gitlab-ci.yml")
    return Dialect(github_issuer, "github", "Acme/Tool", "release.yml")


@pytest.fixture
def github(oidc_settings: Any, github_issuer: FakeIssuer) -> Dialect:
    return Dialect(github_issuer, "github", "acme/tool", "release.yml")


def test_the_audience_is_the_one_configured(client: Client, oidc_settings: Any) -> None:
    response = client.get(AUDIENCE_URL)
    assert response.status_code == 200
    assert response.json() == {"audience": AUDIENCE}


def test_without_issuers_trusted_publishing_is_off(client: Client, settings: Any,
                                                   github: Dialect) -> None:
    settings.OIDC_ISSUERS = {}
    response = client.get(AUDIENCE_URL)
    assert response.status_code == 403
    assert response.json() == {"message": "Trusted publishing functionality not enabled"}
    refused(mint(client, github.token()), "not-enabled", "not enabled")


def test_a_publisher_mints_a_15_minute_token_that_uploads(
    client: Client, dialect: Dialect, ci_owner: User, ci_project: Project, mail: Mailbox
) -> None:
    publisher = dialect.publisher(ci_owner, ci_project)
    claims = dialect.claims()
    before = time.time()
    response = mint(client, dialect.issuer.sign(claims))
    text = minted_text(response)
    assert text.startswith("relatch-")
    assert before + 900 - 5 <= response.json()["expires"] <= time.time() + 900 + 1
    assert response["Cache-Control"] == "no-store"
    row = APIToken.objects.get(publisher=publisher)
    assert (row.user, row.project, row.purpose) == (ci_owner, ci_project, "upload")
    assert row.name.startswith("Trusted publisher: ")
    # Minted tokens send no mail (a pipeline mints one per job).
    assert mail.to("carol@example.org") == []

    used = SecurityEvent.objects.get(user=ci_owner, kind=EventKind.TRUSTED_PUBLISHER_USED)
    assert used.factor == Factor.TRUSTED_PUBLISHER
    run_id = claims["run_id"] if dialect.kind == "github" else claims["pipeline_id"]
    assert used.details["token_id"] == row.pk
    assert used.details["run_id"] == run_id and used.details["sha"] == claims["sha"]
    assert used.details["repository"] == dialect.repository.lower()
    publisher.refresh_from_db()
    assert publisher.last_used_at is not None
    # First use ties the publisher to the repository's immutable ids.
    ids = ("1001", "2002") if dialect.kind == "github" else ("3003", "4004")
    assert (publisher.repository_id, publisher.owner_id) == ids
    assert SecurityEvent.objects.filter(user=ci_owner,
                                        kind=EventKind.TRUSTED_PUBLISHER_PINNED).count() == 1

    answer = upload(client, build_wheel("acme-tool", "1.0"), text)
    assert answer.status_code == 200, answer.content
    assert File.objects.filter(release__project=ci_project).count() == 1


def test_the_token_is_scoped_to_the_publishers_project(
    client: Client, github: Dialect, ci_owner: User, ci_project: Project
) -> None:
    Project.objects.create(name="other", normalized_name="other")
    Role.objects.create(project=Project.objects.get(name="other"), user=ci_owner,
                        kind=Role.Kind.OWNER)
    github.publisher(ci_owner, ci_project)
    text = minted_text(mint(client, github.token()))
    answer = upload(client, build_wheel("other", "1.0"), text)
    assert answer.status_code == 403


def test_a_replayed_token_is_refused(client: Client, dialect: Dialect, ci_owner: User,
                                     ci_project: Project) -> None:
    dialect.publisher(ci_owner, ci_project)
    token = dialect.token()
    minted_text(mint(client, token))
    refused(mint(client, token), "invalid-token", "already exchanged")
    assert APIToken.objects.filter(publisher__isnull=False).count() == 1
    # The lock lasts past every moment the token could still verify.
    used = UsedOIDCToken.objects.get()
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert used.keep_until > datetime.fromtimestamp(exp, tz=UTC) + timedelta(seconds=LEEWAY)


def test_expired_replay_records_are_pruned(client: Client, github: Dialect, ci_owner: User,
                                           ci_project: Project) -> None:
    github.publisher(ci_owner, ci_project)
    minted_text(mint(client, github.token()))
    assert prune_used_tokens() == 0
    assert prune_used_tokens(now=timezone.now() + timedelta(hours=1)) == 1
    assert not UsedOIDCToken.objects.exists()


def now() -> int:
    return int(time.time())


# (publisher fields, claim overrides or a token maker, code, description fragments)
Case = tuple[dict[str, Any], Callable[[Dialect], str], str, tuple[str, ...]]


def _claims(**overrides: Any) -> Callable[[Dialect], str]:
    return lambda d: d.token(**overrides)


def _wrong_repository(d: Dialect) -> str:
    if d.kind == "gitlab":
        host = d.issuer.url.split("://")[1]
        return d.issuer.sign(d.issuer.gitlab_claims(
            project_path="acme/tools/other", audience=AUDIENCE, ci_config_path=d.workflow,
            ci_config_ref_uri=f"{host}/acme/tools/other//{d.workflow}@refs/heads/main"))
    return d.issuer.sign(d.issuer.github_claims(repository="acme/other", workflow=d.workflow,
                                                audience=AUDIENCE))


def _wrong_workflow(d: Dialect) -> str:
    if d.kind == "gitlab":
        return d.issuer.sign(d.issuer.gitlab_claims(project_path=d.repository,
                                                    audience=AUDIENCE,
                                                    ci_config_path=".gitlab-ci.yml"))
    return d.issuer.sign(d.issuer.github_claims(repository=d.repository, workflow="test.yml",
                                                audience=AUDIENCE))


def _signed_by_stranger(d: Dialect) -> str:
    return d.issuer.sign(d.claims(), key=new_key())


def _unlisted_issuer(d: Dialect) -> str:
    return d.issuer.sign(d.claims(iss="https://token.example.net"))


DENIALS: dict[str, Case] = {
    "wrong repository": ({}, _wrong_repository, "invalid-publisher",
                         ("No trusted publisher here for repository acme",)),
    "wrong workflow": ({}, _wrong_workflow, "invalid-publisher",
                       ("name another workflow",)),
    "wrong environment": ({"environment": "pypi"}, _claims(environment="staging"),
                          "invalid-publisher", ("environment staging",
                                                "require another environment")),
    "no environment where one is required": ({"environment": "pypi"}, _claims(),
                                             "invalid-publisher", ("no environment",)),
    "expired": ({}, lambda d: d.token(iat=now() - 400, nbf=now() - 400, exp=now() - 100),
                "invalid-token", ("expired", "fresh one")),
    # Times read when the test runs, not when the table is built (collection can come minutes
    # before the test on a long run).
    "not yet valid": ({}, lambda d: d.token(nbf=now() + 120), "invalid-token",
                      ("not valid before",)),
    "issued in the future": ({}, lambda d: d.token(iat=now() + 120), "invalid-token",
                             ("in the future",)),
    "wrong audience": ({}, _claims(aud="pypi"), "invalid-token",
                       ("audience 'pypi'", f"this index's '{AUDIENCE}'")),
    "missing jti": ({}, _claims(jti=None), "invalid-token", ("no 'jti' claim",)),
    "missing exp": ({}, _claims(exp=None), "invalid-token", ("no 'exp' claim",)),
    "unknown key id": ({}, lambda d: d.issuer.sign(d.claims(), kid="retired-2019"),
                       "invalid-token", ("'retired-2019'", "does not publish")),
    "known key id, another key": ({}, _signed_by_stranger, "invalid-token",
                                  ("signature does not verify",)),
    "alg none": ({}, lambda d: d.issuer.sign(d.claims(), alg="none"), "invalid-token",
                 ("algorithm 'none' is not accepted",)),
    "HS256 keyed with the public key": (
        {}, lambda d: d.issuer.sign(d.claims(), alg="HS256", key=d.issuer.public_pem()),
        "invalid-token", ("algorithm 'HS256' is not accepted",)),
    "issuer not listed": ({}, _unlisted_issuer, "invalid-token",
                          ("'https://token.example.net' is not one this index trusts",)),
    "re-created repository": ({"repository_id": "1001-pinned"}, _claims(), "invalid-publisher",
                              ("was tied to id 1001-pinned", "deleted and re-created")),
    "other owner": ({"owner_id": "77"}, _claims(), "invalid-publisher",
                    ("owner's id", "tied to owner's id 77")),
}


@pytest.mark.parametrize("case", DENIALS.values(), ids=DENIALS.keys())
def test_each_mismatch_is_refused_with_no_token(client: Client, dialect: Dialect,
                                                ci_owner: User, ci_project: Project,
                                                case: Case) -> None:
    fields, make_token, code, fragments = case
    dialect.publisher(ci_owner, ci_project, **fields)
    refused(mint(client, make_token(dialect)), code, *fragments)
    no_token_minted()
    assert not SecurityEvent.objects.filter(kind=EventKind.TRUSTED_PUBLISHER_USED).exists()


def test_a_publisher_matching_within_the_leeway_is_accepted(
    client: Client, github: Dialect, ci_owner: User, ci_project: Project
) -> None:
    """Clocks a few seconds apart are not an attack."""
    github.publisher(ci_owner, ci_project)
    minted_text(mint(client, github.token(nbf=now() + 10, iat=now() + 10)))
    minted_text(mint(client, github.token(exp=now() - 10)))


@pytest.mark.parametrize(("body", "fragment"), [
    (b"not json", "must be JSON"),
    (b"[1, 2]", "must be JSON"),
    (b'{"jwt": "x"}', "must be JSON"),
    (b'{"token": 7}', "must be JSON"),
    (b"{" + b" " * 40_000 + b"}", "larger than"),
])
def test_a_malformed_payload_is_refused(client: Client, github: Dialect, body: bytes,
                                        fragment: str) -> None:
    refused(mint(client, body=body), "invalid-payload", fragment)


@pytest.mark.parametrize(("token", "fragment"), [
    ("not.a.jwt", "not a JWT"),
    ("x" * (MAX_TOKEN_LENGTH + 1), "longer than"),
])
def test_a_token_that_is_no_jwt_is_refused(client: Client, github: Dialect, token: str,
                                           fragment: str) -> None:
    refused(mint(client, token), "invalid-token", fragment)


def test_the_environment_is_compared_case_insensitively_on_github(
    client: Client, github: Dialect, ci_owner: User, ci_project: Project
) -> None:
    github.publisher(ci_owner, ci_project, environment="PyPI")
    minted_text(mint(client, github.token(environment="pypi")))


def test_a_reusable_workflow_of_another_repository_is_refused(
    client: Client, github: Dialect, ci_owner: User, ci_project: Project
) -> None:
    github.publisher(ci_owner, ci_project)
    token = github.token(job_workflow_ref="evil/ci/.github/workflows/release.yml@refs/heads/main")
    refused(mint(client, token), "invalid-publisher", "is not a workflow of repository acme/tool")
    no_token_minted()


def test_publishers_of_two_projects_for_one_workflow_are_refused(
    client: Client, github: Dialect, ci_owner: User, ci_project: Project
) -> None:
    other = Project.objects.create(name="acme-extra", normalized_name="acme-extra")
    Role.objects.create(project=other, user=ci_owner, kind=Role.Kind.OWNER)
    github.publisher(ci_owner, ci_project)
    github.publisher(ci_owner, other)
    refused(mint(client, github.token()), "invalid-publisher",
            "matches trusted publishers of 2 projects", "remove the extra publishers")
    no_token_minted()


def test_a_removed_publisher_mints_nothing(client: Client, github: Dialect, ci_owner: User,
                                           ci_project: Project) -> None:
    github.publisher(ci_owner, ci_project)
    TrustedPublisher.objects.update(removed_at=timezone.now())
    refused(mint(client, github.token()), "invalid-publisher", "No trusted publisher here")


def test_the_minted_token_stops_working_after_15_minutes(
    client: Client, github: Dialect, ci_owner: User, ci_project: Project
) -> None:
    github.publisher(ci_owner, ci_project)
    text = minted_text(mint(client, github.token()))
    row = APIToken.objects.get(publisher__isnull=False)
    assert row.expires_at is not None
    assert timedelta(minutes=14) < row.expires_at - row.created_at <= timedelta(minutes=15)
    # Its 15 minutes are over (moved in the database rather than waited for).
    APIToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    answer = upload(client, build_wheel("acme-tool", "1.0"), text)
    assert answer.status_code == 403
    assert "expired" in answer.content.decode()


def test_a_publisher_whose_adder_lost_the_role_cannot_upload(
    client: Client, github: Dialect, ci_owner: User, ci_project: Project
) -> None:
    github.publisher(ci_owner, ci_project)
    text = minted_text(mint(client, github.token()))
    Role.objects.filter(user=ci_owner, project=ci_project).delete()
    # A token minted before the role went uploads nothing …
    answer = upload(client, build_wheel("acme-tool", "1.0"), text)
    assert answer.status_code == 403
    assert not File.objects.exists()
    # … and no new one is minted.
    refused(mint(client, github.token()), "invalid-publisher", "no longer has a role")
    assert APIToken.objects.filter(publisher__isnull=False).count() == 1


def test_a_frozen_adder_mints_nothing(client: Client, github: Dialect, ci_owner: User,
                                      ci_project: Project) -> None:
    github.publisher(ci_owner, ci_project)
    User.objects.filter(pk=ci_owner.pk).update(is_frozen=True)
    refused(mint(client, github.token()), "invalid-publisher", "cannot publish now")
    no_token_minted()


def test_burning_revokes_the_minted_token(client: Client, github: Dialect, ci_owner: User,
                                          ci_project: Project) -> None:
    github.publisher(ci_owner, ci_project)
    text = minted_text(mint(client, github.token()))
    response = burn(client, text)
    assert response.status_code == 202
    row = APIToken.objects.get(publisher__isnull=False)
    assert row.revoked_at is not None and row.revoked_because == "finished"
    answer = upload(client, build_wheel("acme-tool", "1.0"), text)
    assert answer.status_code == 403 and "revoked" in answer.content.decode()
    # Again, or anything else: the same answer, nothing changes.
    assert burn(client, text).status_code == 202
    assert burn(client, "relatch-garbage").status_code == 202
    assert client.post("/_/oidc/burn-token", data=b"{", content_type="application/json"
                       ).status_code == 202


def test_burning_leaves_a_token_the_account_made(client: Client, ci_owner: User,
                                                 ci_project: Project, oidc_settings: Any) -> None:
    row, text = create_token(request=None, user=ci_owner, name="ci", project=ci_project)
    assert burn(client, text).status_code == 202
    row.refresh_from_db()
    assert row.revoked_at is None


def test_the_exchange_is_rate_limited_per_address(
    client: Client, github: Dialect, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exchange_views, "MINT_LIMIT", "3/minute")
    for _ in range(3):
        refused(mint(client, "not.a.jwt"), "invalid-token")
    response = mint(client, github.token())
    assert response.status_code == 429
    assert response["Retry-After"]
    assert response.json()["errors"][0]["code"] == "rate-limited"


def test_the_endpoints_take_no_other_method(client: Client, github: Dialect) -> None:
    assert client.get("/_/oidc/mint-token").status_code == 405
    assert client.get("/_/oidc/burn-token").status_code == 405
    assert client.post(AUDIENCE_URL).status_code == 405
