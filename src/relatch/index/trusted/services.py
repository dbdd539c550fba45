"""Owners register and remove trusted publishers; any account adds pending ones.

A publisher is a right to publish that needs no password, second factor or token: someone
who takes over an owner's session and adds one keeps publishing after the owner changes their
password. So adding needs an owner with a second factor and a fresh password (the views), a
frozen account is refused, and every owner of the project is told at once, with what was added,
by whom and where to remove it. Removing only takes the right away: it stays possible for a
frozen account (as revoking a token does, ``relatch.accounts.freeze``), since the real owner
may need it to undo what a hijacker added, and it revokes the publisher's live upload tokens.
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from relatch.accounts import ratelimit
from relatch.accounts.models import User
from relatch.accounts.notices import verified_addresses
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.index.manage.services import (
    ManageError,
    lock_project,
    owners_of,
    require_not_frozen,
    require_owner,
    tell,
)
from relatch.index.models import APIToken, Project
from relatch.index.trusted.describe import describe_publisher, publisher_data, repository_url
from relatch.index.trusted.forms import PublisherFields, publisher_fields
from relatch.index.trusted.models import TrustedPublisher
from relatch.index.upstream.reserve import ReserveRefusedError, check_name
from relatch.web.path_prefix import site_path

# PyPI's limits: a project's publishers are each a way in, and a pending publisher holds a
# name for anyone's first upload, so an account may not sit on many names.
MAX_PUBLISHERS_PER_PROJECT = 20
MAX_PENDING_PER_ACCOUNT = 3
ADD_ACTION = "Adding a trusted publisher"
# Each addition mails every owner: a stolen session must not become a mail cannon (removing
# is never limited: it only takes a way in away).
ADD_LIMIT = "20/hour"
OFF = "Trusted publishing is turned off on this index: its operator lists no OIDC issuer."


class PublisherError(ManageError):
    """A refused change to publishers; ``message`` says why. Nothing was changed."""


def _fields(**typed: str) -> PublisherFields:
    """The same rules as the form's (``forms.publisher_fields``): a service is called by more
    than one page, and nothing that breaks them reaches a row."""
    try:
        return publisher_fields(**typed)
    except ValidationError as error:
        raise PublisherError(" ".join(error.messages)) from error


def _same(publishers: Any, fields: PublisherFields) -> Any:
    same = publishers.filter(removed_at__isnull=True, issuer=fields.issuer,
                             repository=fields.repository, workflow=fields.workflow)
    # GitHub compares environment names without case (as the exchange does, claims.py):
    # "PyPI" beside "pypi" would be the same publisher twice.
    if fields.dialect == TrustedPublisher.Dialect.GITHUB:
        return same.filter(environment__iexact=fields.environment)
    return same.filter(environment=fields.environment)


def _details(publisher: TrustedPublisher, **extra: Any) -> dict[str, Any]:
    """The event's details: the publisher (``publisher_data``), whose project, the ids."""
    return {
        "project": publisher.project.name if publisher.project else publisher.pending_name,
        "pending": publisher.is_pending,
        **publisher_data(publisher),
        "repository_id": publisher.repository_id or None,
        "owner_id": publisher.owner_id or None,
        **extra,
    }


def _mail_context(publisher: TrustedPublisher, actor: User) -> dict[str, Any]:
    if publisher.project is not None:
        page = reverse("manage:publishing", args=[publisher.project.normalized_name])
    else:
        page = reverse("manage:pending_publishing")
    return {
        "project": publisher.project.name if publisher.project else publisher.pending_name,
        "pending": publisher.is_pending,
        "publisher": describe_publisher(publisher),
        "repository_url": repository_url(publisher) or "",
        "repository_id": publisher.repository_id,
        "owner_id": publisher.owner_id,
        "added_by": publisher.added_by.username,
        "by": actor.username,
        # Below base_url, which carries the site's path (relatch.web.path_prefix).
        "publishing_path": site_path(page),
    }


@transaction.atomic
def add_publisher(
    *, request: HttpRequest | None, user: User, project: Project, issuer: str, repository: str,
    workflow: str, environment: str, repository_id: str, owner_id: str,
) -> TrustedPublisher:
    """Register a publisher for ``project`` (owners only). Records TRUSTED_PUBLISHER_ADDED
    on ``user`` and mails every owner of the project. PublisherError (or ManageError) for a
    frozen account, a non-owner, an unlisted issuer, claims that break the rules, a duplicate
    or a project at its cap."""
    require_not_frozen(user=user, action=ADD_ACTION)
    project = lock_project(project)  # two forms sent at once cannot both pass the cap
    require_owner(user=user, project=project, action="add trusted publishers")
    fields = _fields(issuer=issuer, repository=repository, workflow=workflow,
                     environment=environment, repository_id=repository_id, owner_id=owner_id)
    active = project.trusted_publishers.filter(removed_at__isnull=True)
    if _same(active, fields).exists():
        raise PublisherError(f"This publisher is already registered for {project.name}. "
                             "Nothing was added.")
    if active.count() >= MAX_PUBLISHERS_PER_PROJECT:
        raise PublisherError(
            f"{project.name} already has {MAX_PUBLISHERS_PER_PROJECT} trusted publishers, the "
            "most a project can have. Remove one it no longer uses first."
        )
    publisher = _create(project=project, user=user, fields=fields, pending_name="")
    record_event(user=user, kind=EventKind.TRUSTED_PUBLISHER_ADDED, request=request,
                 details=_details(publisher))
    tell(users=owners_of(project), template="trusted_publisher_added", actor=user,
         context=_mail_context(publisher, user))
    return publisher


def _create(*, project: Project | None, user: User, fields: PublisherFields,
            pending_name: str) -> TrustedPublisher:
    if not ratelimit.hit(scope="trusted-publisher-add", key=str(user.pk), limit=ADD_LIMIT):
        raise PublisherError("You added too many trusted publishers in the last hour. "
                             "Try later.", status=429)
    try:
        with transaction.atomic():
            return TrustedPublisher.objects.create(
                project=project, added_by=user, pending_name=pending_name,
                pending_normalized_name=check_name(pending_name) if pending_name else "",
                issuer=fields.issuer, dialect=fields.dialect, repository=fields.repository,
                workflow=fields.workflow, environment=fields.environment,
                repository_id=fields.repository_id, owner_id=fields.owner_id,
            )
    except IntegrityError as exc:  # the unique constraints: the same form sent twice at once
        raise PublisherError("This publisher is already registered. Nothing was added.") from exc


@transaction.atomic
def add_pending_publisher(
    *, request: HttpRequest | None, user: User, project_name: str, issuer: str,
    repository: str, workflow: str, environment: str, repository_id: str, owner_id: str,
) -> TrustedPublisher:
    """Register a pending publisher: its first upload creates ``project_name``, owned by
    ``user``. Refuses a frozen account, an account without a verified address (it would never
    hear what its publisher does), a name that is invalid or already a project here, the same
    publisher already pending for the name, and an account at its cap. Records
    TRUSTED_PUBLISHER_ADDED and mails the account."""
    require_not_frozen(user=user, action=ADD_ACTION)
    User.objects.select_for_update().filter(pk=user.pk).first()  # serialise the cap check
    if not verified_addresses(user):
        raise PublisherError("Verify an email address of your account first: it is told "
                             "about every publish of the project.")
    try:
        normalized = check_name(project_name.strip())
    except ReserveRefusedError as refusal:
        raise PublisherError(refusal.message) from refusal
    fields = _fields(issuer=issuer, repository=repository, workflow=workflow,
                     environment=environment, repository_id=repository_id, owner_id=owner_id)
    if Project.objects.filter(normalized_name=normalized).exists():
        # The name as typed, not the project's own: a private project's spelling stays hidden.
        raise PublisherError(
            f"'{project_name.strip()}' is already a project here: a pending publisher only "
            "creates a new project. If you own it, add the publisher on its Publishing page."
        )
    pending = TrustedPublisher.objects.filter(project__isnull=True)
    if _same(pending.filter(pending_normalized_name=normalized), fields).exists():
        raise PublisherError(f"This publisher is already pending for '{project_name.strip()}'. "
                             "Nothing was added.")
    if pending.filter(added_by=user, removed_at__isnull=True).count() >= MAX_PENDING_PER_ACCOUNT:
        raise PublisherError(
            f"You already have {MAX_PENDING_PER_ACCOUNT} pending publishers, the most an "
            "account can have. Remove one, or publish with it, first."
        )
    publisher = _create(project=None, user=user, fields=fields, pending_name=project_name.strip())
    record_event(user=user, kind=EventKind.TRUSTED_PUBLISHER_ADDED, request=request,
                 details=_details(publisher))
    tell(users=[user], template="trusted_publisher_added", actor=user,
         context=_mail_context(publisher, user))
    return publisher


def revoke_minted_tokens(publisher: TrustedPublisher) -> int:
    """Revoke the publisher's upload tokens that still work: a job that got one just before
    the removal must not publish for up to 15 more minutes."""
    now = timezone.now()
    return APIToken.objects.filter(
        publisher=publisher, revoked_at__isnull=True, expires_at__gt=now,
    ).update(revoked_at=now, revoked_because=APIToken.RevokedBecause.PUBLISHER_REMOVED)


def _mark_removed(publisher: TrustedPublisher) -> None:
    # Conditional: of two racing removals, only one records and mails.
    now = timezone.now()
    if not TrustedPublisher.objects.filter(pk=publisher.pk, removed_at__isnull=True).update(
        removed_at=now
    ):
        raise PublisherError("This publisher was already removed.", status=404)
    publisher.removed_at = now


@transaction.atomic
def remove_publisher(
    *, request: HttpRequest | None, user: User, project: Project, publisher_id: int
) -> TrustedPublisher:
    """Remove one of ``project``'s publishers (owners only; soft: ``removed_at``) and revoke
    its live minted tokens. PublisherError 404 for an id that is not an active publisher of
    this project. Records TRUSTED_PUBLISHER_REMOVED on ``user`` and mails every owner."""
    project = lock_project(project)
    require_owner(user=user, project=project, action="remove trusted publishers")
    publisher = (
        project.trusted_publishers.select_related("project", "added_by")
        .filter(pk=publisher_id, removed_at__isnull=True).first()
    )
    if publisher is None:
        raise PublisherError(f"{project.name} has no such trusted publisher.", status=404)
    _mark_removed(publisher)
    revoked = revoke_minted_tokens(publisher)
    record_event(user=user, kind=EventKind.TRUSTED_PUBLISHER_REMOVED, request=request,
                 details=_details(publisher, revoked_tokens=revoked))
    tell(users=owners_of(project), template="trusted_publisher_removed", actor=user,
         context={**_mail_context(publisher, user), "revoked_tokens": revoked})
    return publisher


@transaction.atomic
def remove_pending_publisher(
    *, request: HttpRequest | None, user: User, publisher_id: int
) -> TrustedPublisher:
    """Remove one of ``user``'s pending publishers. PublisherError 404 when it is not a
    pending publisher of theirs (another account's, already removed, or already used: it
    made its project, and is removed on that project's Publishing page)."""
    # Locked: the first upload may turn it into a project's publisher at this very moment.
    publisher = (
        TrustedPublisher.objects.select_for_update().select_related("added_by")
        .filter(pk=publisher_id, added_by=user, project__isnull=True, removed_at__isnull=True)
        .first()
    )
    if publisher is None:
        raise PublisherError("You have no such pending publisher.", status=404)
    _mark_removed(publisher)
    record_event(user=user, kind=EventKind.TRUSTED_PUBLISHER_REMOVED, request=request,
                 details=_details(publisher))
    tell(users=[user], template="trusted_publisher_removed", actor=user,
         context={**_mail_context(publisher, user), "revoked_tokens": 0})
    return publisher
