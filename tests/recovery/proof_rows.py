"""Rows for the proof tests: projects with metadata, requests asking for proofs, and a way to
run a service the way a request does (on-commit work, then the mail queue)."""

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


def make_project(user: User, name: str = "sandwich", *, kind: str = Role.Kind.OWNER,
                 urls: dict[str, str] | None = None, author_email: str = "") -> Project:
    project, _ = Project.objects.get_or_create(name=name, defaults={"normalized_name": name})
    Role.objects.create(project=project, user=user, kind=kind)
    if urls is not None or author_email:
        Release.objects.create(project=project, version="1.0", canonical_version="1",
                               project_urls=urls or {}, author_email=author_email,
                               created_at=timezone.now())
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
