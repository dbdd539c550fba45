"""The publisher services called directly: they apply the same rules as the forms (a caller
other than the page cannot store a publisher the page would refuse), and they limit how often
an account adds (each addition mails every owner)."""

from typing import Any

import pytest

from relatch.accounts.models import User
from relatch.index.models import Project
from relatch.index.trusted import services
from relatch.index.trusted.models import TrustedPublisher
from relatch.index.trusted.services import PublisherError
from tests.index.project_rows import make_project
from tests.index.trusted.publisher_rows import GITHUB, GITLAB, ISSUERS

pytestmark = pytest.mark.django_db
CLAIMS = {"issuer": GITHUB, "repository": "acme/tool", "workflow": "release.yml",
          "environment": "", "repository_id": "", "owner_id": ""}


@pytest.fixture(autouse=True)
def issuers(settings: Any) -> None:
    settings.OIDC_ISSUERS = dict(ISSUERS)


@pytest.fixture
def project(alice: User) -> Project:
    return make_project("acme-tool", owners=(alice,))


@pytest.mark.parametrize(("change", "message"), [
    ({"issuer": "https://token.actions.githubusercontent.com/"}, "Choose where the CI runs"),
    ({"repository": "acme/tool/x"}, "Enter the GitHub repository as owner/name"),
    ({"issuer": GITLAB, "workflow": "../.gitlab-ci.yml"}, "Enter the CI configuration's path"),
    ({"environment": "a\x00b"}, "cannot contain control characters"),
    ({"owner_id": "1e9"}, "The owner id is a number"),
])
def test_the_service_refuses_what_the_form_would(
    alice: User, project: Project, change: dict[str, str], message: str
) -> None:
    with pytest.raises(PublisherError, match=message):
        services.add_publisher(request=None, user=alice, project=project,
                               **{**CLAIMS, **change})
    assert not TrustedPublisher.objects.exists()


def test_the_service_stores_the_repository_lower_case_and_trims(
    alice: User, project: Project
) -> None:
    publisher = services.add_publisher(
        request=None, user=alice, project=project,
        **{**CLAIMS, "repository": " Acme/Tool ", "environment": " PyPI ", "owner_id": " 42 "},
    )
    assert (publisher.repository, publisher.environment, publisher.owner_id) == (
        "acme/tool", "PyPI", "42")


def test_an_account_adds_at_most_twenty_publishers_an_hour(
    alice: User, project: Project
) -> None:
    for n in range(20):
        services.add_publisher(request=None, user=alice, project=project,
                               **{**CLAIMS, "repository": f"acme/tool{n}"})
    other = make_project("other", owners=(alice,))
    with pytest.raises(PublisherError, match="too many trusted publishers") as refused:
        services.add_publisher(request=None, user=alice, project=other, **CLAIMS)
    assert refused.value.status == 429
    assert not other.trusted_publishers.exists()
