"""The exchange: a CI job's OIDC token for a 15-minute upload token of one project.

``mint_upload_token`` verifies the token (``verify``), finds the publisher its claims name
(``claims``), records its jti (``used_tokens``) and mints an ordinary ``APIToken`` in one
transaction: the upload pipeline then applies every rule it applies to any token (the role of
the account that added the publisher, its second factor, a frozen or disabled account,
revocation, expiry). ``burn_token`` lets the job end its token early.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from relatch.accounts.freeze import is_frozen
from relatch.audit.models import EventKind, Factor
from relatch.audit.services import record_event
from relatch.index.models import APIToken, Project, Role
from relatch.index.tokens import primitive
from relatch.index.tokens.services import event_details, token_spelled_by
from relatch.index.trusted.claims import Identity, identity, ids_fit, matching_publisher
from relatch.index.trusted.describe import describe_publisher, publisher_data
from relatch.index.trusted.errors import ExchangeRefusedError, invalid_publisher
from relatch.index.trusted.models import TrustedPublisher
from relatch.index.trusted.pending import NameTakenError, create_pending_project, drop_pending
from relatch.index.trusted.used_tokens import record_use
from relatch.index.trusted.verify import VerifiedToken, verify_token

logger = logging.getLogger(__name__)

# PyPI's lifetime: long enough for a slow upload of many files, short enough that a token
# printed in a public CI log is worthless soon after.
MINTED_LIFETIME = timedelta(minutes=15)
MAX_TOKEN_NAME = 100  # APIToken.name
UPLOAD_KINDS = (Role.Kind.OWNER, Role.Kind.MAINTAINER)


@dataclass(frozen=True)
class Minted:
    """A minted upload token: its row, its text (shown once, to the CI job) and the publisher
    it was minted for."""

    token: APIToken
    text: str = field(repr=False)
    publisher: TrustedPublisher

    @property
    def expires_at(self) -> datetime:
        assert self.token.expires_at is not None
        return self.token.expires_at


def mint_upload_token(*, request: HttpRequest | None, raw_token: str) -> Minted:
    """Exchange ``raw_token`` (a CI provider's OIDC token) for an upload token.

    Raises ExchangeRefusedError (code and message for the CI log) when the token does not
    verify, was exchanged before, or names no single active publisher whose adder may still
    publish; nothing is minted then. A pending publisher's first exchange creates its project;
    if the name was taken meanwhile the pending publisher is dropped (its owner is told).
    """
    verified = verify_token(raw_token)  # may fetch the issuer's keys: outside the transaction
    who = identity(verified)
    try:
        return _mint(request=request, verified=verified, who=who)
    except NameTakenError as taken:
        # The exchange rolled back (no token, the jti unrecorded); dropping the publisher is
        # its own change, which must stay.
        drop_pending(request=request, publisher_id=taken.publisher_id, reason=taken.reason)
        raise ExchangeRefusedError("invalid-pending-publisher", taken.message) from None


@transaction.atomic
def _mint(*, request: HttpRequest | None, verified: VerifiedToken, who: Identity) -> Minted:
    # First: the replay check; a concurrent exchange of the same token waits here.
    record_use(verified)
    publisher = _locked(matching_publisher(verified, who), who)
    _check_adder(publisher)
    created = publisher.project_id is None
    if created:
        create_pending_project(request=request, publisher=publisher)
    project = publisher.project
    assert project is not None
    _pin(request=request, publisher=publisher, who=who)
    row, text = _new_token(publisher, project)
    publisher.last_used_at = row.created_at
    publisher.save(update_fields=["last_used_at"])
    details = {**publisher_data(publisher), "project": project.name, "token_id": row.pk,
               "expires_at": _iso(row.expires_at), **who.run_details()}
    if created:
        record_event(user=publisher.added_by, kind=EventKind.PROJECT_CREATED, request=request,
                     factor=Factor.TRUSTED_PUBLISHER,
                     details={"project": project.name, "token_id": row.pk,
                              "publisher": publisher_data(publisher)})
    record_event(user=publisher.added_by, kind=EventKind.TRUSTED_PUBLISHER_USED,
                 request=request, factor=Factor.TRUSTED_PUBLISHER, details=details)
    return Minted(token=row, text=text, publisher=publisher)


def _locked(found: TrustedPublisher, who: Identity) -> TrustedPublisher:
    """``found`` read again under its row lock: a removal, a pinning or a pending publisher's
    conversion committed by a concurrent exchange is seen here, not overwritten."""
    publisher = TrustedPublisher.objects.select_for_update().get(pk=found.pk)
    if publisher.removed_at is not None:
        raise invalid_publisher(f"The trusted publisher for {who.describe()} was just removed.")
    if not ids_fit(publisher, who):
        raise invalid_publisher(f"The trusted publisher for {who.describe()} was just tied "
                                "to another repository id.")
    return publisher


def _check_adder(publisher: TrustedPublisher) -> None:
    # The publisher acts for the account that added it: what that account may no longer do,
    # its publisher may not do either (the upload pipeline checks again at upload).
    user = publisher.added_by
    if not user.is_active or is_frozen(user):
        raise invalid_publisher("The account that added this trusted publisher cannot publish "
                                "now (disabled or frozen).")
    if publisher.project_id is not None and not Role.objects.filter(
        project_id=publisher.project_id, user=user, kind__in=UPLOAD_KINDS
    ).exists():
        raise invalid_publisher("The account that added this trusted publisher no longer has "
                                "a role on the project: a project owner must add the publisher "
                                "again.")


def _pin(*, request: HttpRequest | None, publisher: TrustedPublisher, who: Identity) -> None:
    """Tie a publisher to the repository's immutable ids on first use (unless its owner typed
    them), so a repository re-created under the same name is refused later."""
    pinned: dict[str, str] = {}
    if not publisher.repository_id and who.repository_id:
        publisher.repository_id = pinned["repository_id"] = who.repository_id
    if not publisher.owner_id and who.owner_id:
        publisher.owner_id = pinned["owner_id"] = who.owner_id
    if not pinned:
        return
    publisher.save(update_fields=list(pinned))
    record_event(user=publisher.added_by, kind=EventKind.TRUSTED_PUBLISHER_PINNED,
                 request=request, factor=Factor.TRUSTED_PUBLISHER,
                 details={**publisher_data(publisher), **pinned})


def minted_token_name(publisher: TrustedPublisher) -> str:
    """The name a minted token carries, cut to fit ``APIToken.name``."""
    name = f"Trusted publisher: {describe_publisher(publisher)}"
    if len(name) > MAX_TOKEN_NAME:
        name = name[: MAX_TOKEN_NAME - 1] + "…"
    return name


def _new_token(publisher: TrustedPublisher, project: Project) -> tuple[APIToken, str]:
    # No mail and no cap: a release pipeline mints one per job, and the owner learns of each
    # from the project's publishing page and the security history instead.
    text = primitive.new_token()
    now = timezone.now()
    row = APIToken.objects.create(
        user=publisher.added_by, name=minted_token_name(publisher),
        purpose=APIToken.Purpose.UPLOAD,
        identifier=text.identifier, secret_digest=primitive.digest_secret(text.secret),
        project=project, publisher=publisher, created_at=now, expires_at=now + MINTED_LIFETIME,
    )
    return row, text.text


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


@transaction.atomic
def burn_token(*, request: HttpRequest | None, raw: str) -> bool:
    """Revoke ``raw`` if it is a live token minted by a trusted publisher (the job finished
    with it early); whether it was. Any other text changes nothing: the caller answers the
    same either way, so the endpoint tells nobody which tokens exist."""
    try:
        token = token_spelled_by(raw)
    except primitive.MalformedTokenError:
        return False
    if token is None:
        return False
    if token.publisher_id is None:
        # A token the account made is revoked on its tokens page, where its owner is told.
        return False
    now = timezone.now()
    if not APIToken.objects.filter(pk=token.pk, revoked_at__isnull=True,
                                   expires_at__gt=now).update(
        revoked_at=now, revoked_because=APIToken.RevokedBecause.FINISHED
    ):
        return False
    record_event(user=token.user, kind=EventKind.API_TOKEN_REVOKED, request=request,
                 factor=Factor.TRUSTED_PUBLISHER,
                 details={**event_details(token), "reason": APIToken.RevokedBecause.FINISHED})
    return True
