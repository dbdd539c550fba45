"""Factories for recovery requests and proofs (the requester pages come later)."""

import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from relatch.accounts.models import User
from relatch.audit.models import SecurityEvent
from relatch.index.models import APIToken, Project, Release, Role
from relatch.recovery.models import ProofKind, RecoveryProof, RecoveryRequest, State
from relatch.recovery.sources import PASSWORD_SET_KINDS
from tests.mfa.factor_rows import add_app

LONG_AGO = timedelta(days=60)


def make_request(user: Any, *, contact: str = "new@example.net", state: State = State.SUBMITTED,
                 **extra: Any) -> RecoveryRequest:
    extra.setdefault("contact_confirmed_at", timezone.now())
    if state == State.IN_WAITING_PERIOD:
        extra.setdefault("wait_started_at", timezone.now())
        extra.setdefault("wait_ends_at", timezone.now() + timedelta(days=7))
    if state == State.ON_HOLD:
        extra.setdefault("held_from", State.AWAITING_PROOF)
    return RecoveryRequest.objects.create(
        public_id=secrets.token_hex(8), link_nonce=secrets.token_hex(8),
        username_claimed=user.username if user else "nobody", user=user, contact_email=contact,
        agreed_to_code_of_conduct=True, acknowledged_review_time=True, state=state, **extra,
    )


def age_password(user: User, *, by: timedelta = LONG_AGO) -> None:
    """The password was set ``by`` ago (at registration), so it counts as knowledge."""
    SecurityEvent.objects.filter(user=user, kind__in=PASSWORD_SET_KINDS).update(
        created_at=timezone.now() - by)
    User.objects.filter(pk=user.pk).update(date_joined=timezone.now() - by)


def _evidence(recovery: RecoveryRequest, kind: ProofKind) -> dict[str, Any]:
    """Evidence for a satisfied proof of ``kind`` that the policy counts (its source made
    long before the request, as an honest owner's would be)."""
    user = recovery.user
    before = recovery.created_at - timedelta(days=1)
    if kind == ProofKind.ACCOUNT_EMAIL:
        return {"address_id": user.emails.filter(verified=True).first().pk}
    if kind == ProofKind.PASSWORD:
        age_password(user)
        return {}
    if kind == ProofKind.API_TOKEN:
        token = APIToken.objects.create(user=user, name="ci", identifier=secrets.token_hex(8),
                                        secret_digest="0" * 64, created_at=before)
        return {"token_id": token.pk}
    if kind == ProofKind.REPO_BRANCH:
        return _declared_repository(user)
    if kind == ProofKind.CO_OWNER:
        return {"vouched_by_id": _co_owner(user).pk}
    return {"enrolled_at": before.isoformat()}


def _declared_repository(user: User, *, kind: str = Role.Kind.MAINTAINER,
                         name: str = "sandwich") -> dict[str, Any]:
    """A project ``user`` has a role in (a maintainer's, so approvals stay at one) whose
    release, uploaded by ``user`` long ago, declares its repository."""
    since = timezone.now() - LONG_AGO
    url = f"https://github.com/{user.username}/{name}"
    project, _ = Project.objects.get_or_create(
        name=f"{user.username}-{name}",
        defaults={"normalized_name": f"{user.username}-{name}", "created_at": since})
    Role.objects.get_or_create(project=project, user=user,
                               defaults={"kind": kind, "created_at": since})
    Release.objects.get_or_create(project=project, canonical_version="1", defaults={
        "version": "1.0", "project_urls": {"Source": url}, "uploader": user,
        "created_at": since})
    return {"project": project.name, "repository": url}


def _co_owner(user: User) -> User:
    from relatch.accounts.provisioning import create_verified_user

    since = timezone.now() - LONG_AGO
    repo = _declared_repository(user, kind=Role.Kind.OWNER, name="shared")
    co_owner = create_verified_user(username=f"co-{secrets.token_hex(3)}",
                                    email=f"co-{secrets.token_hex(3)}@example.org",
                                    password="co-owner password here")
    Role.objects.create(project=Project.objects.get(name=repo["project"]), user=co_owner,
                        kind=Role.Kind.OWNER, created_at=since)
    add_app(co_owner)
    return co_owner


def satisfy(recovery: RecoveryRequest, *kinds: ProofKind) -> None:
    """Satisfied proofs of ``kinds`` whose sources count (see ``_evidence``)."""
    for kind in kinds:
        RecoveryProof.objects.create(request=recovery, kind=kind,
                                     status=RecoveryProof.Status.SATISFIED,
                                     checked_at=timezone.now(),
                                     evidence=_evidence(recovery, kind))


def end_wait(recovery: RecoveryRequest, *, length: timedelta | None = None) -> None:
    """A waiting period of ``length`` (RECOVERY_WAIT) has just run to its end."""
    ended = timezone.now() - timedelta(minutes=1)
    RecoveryRequest.objects.filter(pk=recovery.pk).update(
        wait_started_at=ended - (length or settings.RECOVERY_WAIT), wait_ends_at=ended,
    )
    recovery.refresh_from_db()
