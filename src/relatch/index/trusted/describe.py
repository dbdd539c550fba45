"""A trusted publisher in words and as data: for pages, mails, events and the JSON API."""

from typing import Any
from urllib.parse import urlsplit

from relatch.index.trusted.models import TrustedPublisher

# The issuers whose repositories live on a known web host.
_GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


def publisher_data(publisher: TrustedPublisher) -> dict[str, Any]:
    """What events and the JSON API say about a publisher: stable keys, no secrets."""
    return {
        "id": publisher.pk,
        "kind": publisher.dialect,
        "issuer": publisher.issuer,
        "repository": publisher.repository,
        "workflow": publisher.workflow,
        "environment": publisher.environment or None,
        "url": repository_url(publisher),
    }


def repository_url(publisher: TrustedPublisher) -> str | None:
    """The repository's web address, where the issuer's host serves it (GitHub, GitLab and
    self-hosted GitLab; a Forgejo's Actions issuer path is not its web root, so None)."""
    if publisher.issuer == _GITHUB_ISSUER:
        return f"https://github.com/{publisher.repository}"
    if publisher.dialect == TrustedPublisher.Dialect.GITLAB:
        parts = urlsplit(publisher.issuer)
        return f"{parts.scheme}://{parts.netloc}/{publisher.repository}"
    return None


def describe_publisher(publisher: TrustedPublisher) -> str:
    """One line for people: "GitHub Actions: acme/tool, workflow release.yml, environment pypi"
    (the issuer's host is named when it is not the dialect's public one)."""
    where = publisher.get_dialect_display()
    host = urlsplit(publisher.issuer).hostname or publisher.issuer
    if host not in {"token.actions.githubusercontent.com", "gitlab.com"}:
        where = f"{where} at {host}"
    text = f"{where}: {publisher.repository}, workflow {publisher.workflow}"
    if publisher.environment:
        text += f", environment {publisher.environment}"
    return text
