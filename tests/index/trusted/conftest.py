"""Fixtures for trusted publishing: a test CA, OIDC issuers on loopback over real TLS, and
publisher rows made directly (the pages that add them have tests of their own)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relatch.accounts.models import User
from relatch.index.models import Project
from relatch.index.names import normalize_project_name
from relatch.index.trusted.models import TrustedPublisher
from tests.index.project_rows import make_project
from tests.mfa.factor_rows import add_app
from tests.oidc_issuer import FakeIssuer
from tests.tls import TestCA


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """One CA for the run; its certificate is what SSL_CERT_FILE names in the tests."""
    return TestCA(Path(tmp_path_factory.mktemp("test-ca")))


@pytest.fixture
def trust_test_ca(test_ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> TestCA:
    """Relatch's outbound HTTPS (ssl.create_default_context()) trusts the test CA, and only
    it, for this test."""
    monkeypatch.setenv("SSL_CERT_FILE", str(test_ca.ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return test_ca


@pytest.fixture
def github_issuer(trust_test_ca: TestCA) -> Iterator[FakeIssuer]:
    """An issuer on loopback speaking GitHub Actions' claims (listed by ``oidc_settings``)."""
    with FakeIssuer(trust_test_ca).running() as issuer:
        yield issuer


@pytest.fixture
def gitlab_issuer(trust_test_ca: TestCA) -> Iterator[FakeIssuer]:
    """An issuer on loopback speaking GitLab CI's claims (listed by ``oidc_settings``)."""
    with FakeIssuer(trust_test_ca).running() as issuer:
        yield issuer


AUDIENCE = "relatch.test"


@pytest.fixture
def oidc_settings(settings: Any, github_issuer: FakeIssuer,
                  gitlab_issuer: FakeIssuer) -> Any:
    """Trusted publishing on, with the two loopback issuers as the only listed ones."""
    settings.OIDC_ISSUERS = {github_issuer.url: "github", gitlab_issuer.url: "gitlab"}
    settings.OIDC_AUDIENCE = AUDIENCE
    return settings


@pytest.fixture
def ci_owner(make_user: Any) -> User:
    """carol, with an authenticator app (uploading needs a second factor on the account)."""
    carol: User = make_user(username="carol", email="carol@example.org")
    add_app(carol)
    return carol


@pytest.fixture
def ci_project(ci_owner: User) -> Project:
    """acme-tool, owned by carol."""
    return make_project("acme-tool", owners=(ci_owner,))


def make_publisher(*, issuer: FakeIssuer | str, added_by: User, project: Project | None = None,
                   pending_name: str = "", dialect: str = "github",
                   repository: str = "acme/tool", workflow: str = "release.yml",
                   environment: str = "", repository_id: str = "",
                   owner_id: str = "") -> TrustedPublisher:
    """A publisher row (pending when ``pending_name`` is given instead of ``project``)."""
    return TrustedPublisher.objects.create(
        project=project, added_by=added_by,
        pending_name=pending_name,
        pending_normalized_name=normalize_project_name(pending_name) if pending_name else "",
        issuer=issuer if isinstance(issuer, str) else issuer.url,
        dialect=dialect, repository=repository.lower(), workflow=workflow,
        environment=environment, repository_id=repository_id, owner_id=owner_id,
    )
