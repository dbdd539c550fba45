"""Rows for the proof tests: projects with metadata, requests asking for proofs, and a way to
run a service the way a request does (on-commit work, then the mail queue)."""

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.test import TestCase
from django.utils import timezone

from relatch.accounts.models import User
from relatch.index.models import Project, Release, Role
from relatch.recovery.models import RecoveryProof, RecoveryRequest, State
from relatch.recovery.proofs import services
from tests.conftest import run_pending_tasks
from tests.recovery.requests import make_request

# Long enough before any request that the repository a release declares counts (DESIGN §5).
DECLARED_LONG_AGO = timedelta(days=60)


def make_project(user: User, name: str = "sandwich", *, kind: str = Role.Kind.OWNER,
                 urls: dict[str, str] | None = None, author_email: str = "",
                 uploader: User | None = None, age: timedelta = DECLARED_LONG_AGO) -> Project:
    """A project ``user`` has a role in since ``age`` ago; with ``urls`` or ``author_email``,
    a release uploaded ``age`` ago by ``uploader`` (default: ``user``) that declares them."""
    since = timezone.now() - age
    project, _ = Project.objects.get_or_create(name=name, defaults={"normalized_name": name,
                                                                    "created_at": since})
    Role.objects.create(project=project, user=user, kind=kind, created_at=since)
    if urls is not None or author_email:
        version = str(project.releases.count() + 1)
        Release.objects.create(project=project, version=f"{version}.0",
                               canonical_version=version, project_urls=urls or {},
                               author_email=author_email, uploader=uploader or user,
                               created_at=since)
    return project


def committed(func: Any, **kwargs: Any) -> Any:
    """Call a service as a view would: its transaction commits, queued mail is delivered."""
    with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
        result = func(**kwargs)
    run_pending_tasks()
    return result


def asked(user: User, staff: User, kind: str, *, state: State = State.AWAITING_PROOF,
          project: Project | None = None, **extra: Any) -> tuple[RecoveryRequest, RecoveryProof]:
    recovery = make_request(user, state=state, **extra)
    proof = committed(services.request_proof, recovery=recovery, kind=kind, staff=staff,
                      project=project)
    return recovery, proof
