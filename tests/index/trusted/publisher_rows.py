"""Rows for the publishing pages' tests: publishers and the upload tokens their exchange
mints, made directly (the exchange that mints them has tests of its own)."""

import secrets
from datetime import timedelta

from django.utils import timezone

from relatch.accounts.models import User
from relatch.index.models import APIToken, Project
from relatch.index.names import normalize_project_name
from relatch.index.tokens.primitive import digest_secret, new_token
from relatch.index.trusted.exchange import minted_token_name
from relatch.index.trusted.models import TrustedPublisher

GITHUB = "https://token.actions.githubusercontent.com"
GITLAB = "https://gitlab.com"
SELF_HOSTED_GITLAB = "https://gitlab.example.com"
ISSUERS = {GITHUB: "github", GITLAB: "gitlab", SELF_HOSTED_GITLAB: "gitlab"}


def publisher_row(
    *, added_by: User, project: Project | None = None, pending_name: str = "",
    issuer: str = GITHUB, repository: str = "acme/tool", workflow: str = "release.yml",
    environment: str = "",
) -> TrustedPublisher:
    """A publisher (pending when ``pending_name`` is given instead of ``project``)."""
    return TrustedPublisher.objects.create(
        project=project, added_by=added_by, pending_name=pending_name,
        pending_normalized_name=normalize_project_name(pending_name) if pending_name else "",
        issuer=issuer, dialect=ISSUERS[issuer], repository=repository.lower(),
        workflow=workflow, environment=environment,
    )


def minted_token(
    publisher: TrustedPublisher, *, expires_in: timedelta = timedelta(minutes=15),
    revoked: bool = False,
) -> APIToken:
    """An upload token as the OIDC exchange mints it (an ordinary APIToken row)."""
    assert publisher.project is not None
    now = timezone.now()
    return APIToken.objects.create(
        user=publisher.added_by, project=publisher.project, publisher=publisher,
        name=minted_token_name(publisher),
        identifier=secrets.token_hex(8), secret_digest="0" * 64, purpose=APIToken.Purpose.UPLOAD,
        created_at=now - timedelta(minutes=1), expires_at=now + expires_in,
        revoked_at=now if revoked else None,
        revoked_because=APIToken.RevokedBecause.FINISHED if revoked else "",
    )


def mint(publisher: TrustedPublisher, *, minutes: int = 15) -> tuple[APIToken, str]:
    """A token as the OIDC exchange mints it for ``publisher``, usable: the row and its text."""
    text = new_token()
    assert publisher.project is not None
    row = APIToken.objects.create(
        user=publisher.added_by, name=minted_token_name(publisher),
        purpose=APIToken.Purpose.UPLOAD, identifier=text.identifier,
        secret_digest=digest_secret(text.secret), project=publisher.project,
        publisher=publisher, expires_at=timezone.now() + timedelta(minutes=minutes),
    )
    return row, text.text
