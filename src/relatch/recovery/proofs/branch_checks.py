"""Repository checks of repo_branch proofs, run by the worker (DESIGN §3, §5).

A web request only asks for a check (``request_check``): it never runs git, so a repository
host that never answers cannot hold the server's threads (nine such checks once made every
page wait 18 s). The ``check_branch`` task runs ``git ls-remote`` in the worker, bounded three
ways: at most REPOSITORY_CHECK_WORKERS checks at once across processes (slots in the shared
cache), HOST_LIMIT checks a minute per host (so Relatch cannot be made to hammer a forge),
and REPOSITORY_CHECK_TIMEOUT seconds each (git.ls_remote kills git). A requester may ask for
REQUESTER_LIMIT checks of one request an hour; the periodic pass re-checks by itself.
"""

import functools
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.tasks import task
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from relatch.accounts import ratelimit
from relatch.recovery.models import ProofKind, RecoveryProof
from relatch.recovery.proofs import git, services
from relatch.recovery.proofs.outcomes import OPEN_STATES, settle
from relatch.recovery.proofs.services import ProofError

Status = RecoveryProof.Status
REQUESTER_SCOPE = "recovery-branch-check"
REQUESTER_CHECKS = 6
REQUESTER_LIMIT = f"{REQUESTER_CHECKS}/hour"
HOST_SCOPE = "repository-host"
HOST_LIMIT = "30/minute"
SLOT_KEY = "relatch:repository-check:slot:{}"
SLOT_RETRY = timedelta(seconds=5)
HOST_RETRY = timedelta(seconds=20)
# A check queued longer ago than this is taken as lost (a worker died): a new one may queue.
QUEUED_STALE_AFTER = timedelta(minutes=15)
CHECKING = "We are checking the repository now; this page shows the result in a moment."
ALREADY_CHECKING = "The repository is being checked; this page shows the result in a moment."
WAITING_FOR_HOST = "waiting for the host"
# What the requester reads about the last check of a pending proof.
RESULT_WORDS = {
    "branch absent": "The branch is not in the repository yet. Push it, then check again.",
    "no answer": "The repository did not answer. Relatch tries again by itself; you can also "
                 "check again.",
    WAITING_FOR_HOST: "Many checks are waiting for this repository's host; yours runs soon.",
}


class CheckLimitedError(ProofError):
    """Too many checks asked for (a 429); ``message`` says when to try again."""

    status = 429


@dataclass(frozen=True)
class CheckShown:
    """What the proof page and the API say about a branch proof's checks."""

    checking: bool
    result: str = ""
    words: str = ""
    checked_at: datetime | None = None


def shown(proof: RecoveryProof) -> CheckShown:
    """Whether a check is queued or running ("Checking the repository…"); else the last
    check's result, in the words the page shows."""
    evidence = proof.evidence if isinstance(proof.evidence, dict) else {}
    if evidence.get("check_queued_at"):
        return CheckShown(checking=True)
    result = str(evidence.get("last_result", ""))
    return CheckShown(checking=False, result=result, words=RESULT_WORDS.get(result, ""),
                      checked_at=parse_datetime(str(evidence.get("last_checked_at", ""))))


# -- asking for a check (web requests and the periodic pass) -------------------------------


@transaction.atomic
def request_check(*, proof: RecoveryProof, by_requester: bool) -> str:
    """Queue a worker check of ``proof``'s repository and return what to tell the requester.
    A check already queued is not queued twice. ``by_requester`` counts the check against
    REQUESTER_LIMIT (CheckLimitedError beyond it). ProofError when the proof takes none."""
    locked = _checkable(proof.pk)
    if _queued(locked):
        return ALREADY_CHECKING
    if by_requester:
        _count_requester_check(locked)
    locked.evidence = {**locked.evidence, "check_queued_at": timezone.now().isoformat()}
    locked.save(update_fields=["evidence"])
    transaction.on_commit(functools.partial(check_branch.enqueue, proof_id=locked.pk))
    return CHECKING


def _checkable(proof_id: int) -> RecoveryProof:
    locked = services._locked(proof_id)
    if locked.kind != ProofKind.REPO_BRANCH:
        raise ProofError("This is not a branch proof.")
    return services.open_for_answer(locked, ProofKind.REPO_BRANCH, taking="checks")


def _queued(proof: RecoveryProof) -> bool:
    queued_at = parse_datetime(str(proof.evidence.get("check_queued_at", "")))
    return queued_at is not None and queued_at > timezone.now() - QUEUED_STALE_AFTER


def _count_requester_check(proof: RecoveryProof) -> None:
    # Each check costs a worker slot and a visit to someone's forge: a requester cannot
    # make Relatch a load generator against a host.
    key = str(proof.request_id)
    if ratelimit.hit(scope=REQUESTER_SCOPE, key=key, limit=REQUESTER_LIMIT):
        return
    wait = ratelimit.seconds_until_allowed(scope=REQUESTER_SCOPE, key=key, limit=REQUESTER_LIMIT)
    minutes = max(math.ceil(wait / 60), 1)
    raise CheckLimitedError(
        f"You asked for {REQUESTER_CHECKS} checks in the last hour: try again in "
        f"{minutes} minute{'s' if minutes != 1 else ''}. Relatch also checks by itself every "
        "few minutes.")


def expire_if_due(*, proof: RecoveryProof) -> bool:
    """Settle ``proof`` as expired when its time is up (no git runs); True if it expired."""
    return services._expired(proof)


# -- the check itself (the worker) ---------------------------------------------------------


@task()
def check_branch(*, proof_id: int) -> str:
    """Run one bounded ``git ls-remote`` for a repo_branch proof and record what it saw, as
    every outcome is recorded (``outcomes.settle``: the request moves on). Outside any
    transaction; re-queues itself for later when no slot is free or the host is busy."""
    proof = RecoveryProof.objects.select_related("request__user").filter(pk=proof_id).first()
    if proof is None or proof.kind != ProofKind.REPO_BRANCH:
        return "no such branch proof"
    if proof.status != Status.PENDING or proof.request.state not in OPEN_STATES:
        _clear_queued(proof_id)
        return "the proof takes no more checks"
    if services._expired(proof):
        _clear_queued(proof_id)
        return "expired"
    try:
        branch = services.branch_to_push(proof)
    except ProofError as refused:
        _clear_queued(proof_id)
        return refused.message
    return _bounded_check(proof, branch)


def _bounded_check(proof: RecoveryProof, branch: str) -> str:
    slot = _take_slot()
    if slot is None:
        _later(proof.pk, SLOT_RETRY)
        return "deferred: every check slot is taken"
    try:
        url = str(proof.evidence.get("repository", ""))
        if not _host_allows(url):
            _note_waiting(proof.pk)
            _later(proof.pk, HOST_RETRY)
            return "deferred: the host had enough checks this minute"
        answer = git.ls_remote(url=url, branch=branch)
    finally:
        _release_slot(slot)
    found = record_branch_check(proof_id=proof.pk, answer=answer)
    return "branch found" if found else answer.error or "branch absent"


def _take_slot() -> tuple[str, str] | None:
    """One of REPOSITORY_CHECK_WORKERS slots; it lapses by itself if a worker dies."""
    token = secrets.token_hex(8)
    lapse = settings.REPOSITORY_CHECK_TIMEOUT + 30
    for index in range(settings.REPOSITORY_CHECK_WORKERS):
        key = SLOT_KEY.format(index)
        if cache.add(key, token, timeout=lapse):
            return key, token
    return None


def _release_slot(slot: tuple[str, str]) -> None:
    key, token = slot
    if cache.get(key) == token:  # not a slot that lapsed and was taken by another check
        cache.delete(key)


def _host_allows(url: str) -> bool:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return True  # git.ls_remote refuses it without contacting anything
    return ratelimit.hit(scope=HOST_SCOPE, key=host, limit=HOST_LIMIT)


def _later(proof_id: int, delay: timedelta) -> None:
    check_branch.using(run_after=timezone.now() + delay).enqueue(proof_id=proof_id)


@transaction.atomic
def _note_waiting(proof_id: int) -> None:
    proof = services._locked(proof_id)
    proof.evidence = {**proof.evidence, "last_result": WAITING_FOR_HOST}
    proof.save(update_fields=["evidence"])


@transaction.atomic
def _clear_queued(proof_id: int) -> None:
    proof = services._locked(proof_id)
    if "check_queued_at" in proof.evidence:
        proof.evidence = {k: v for k, v in proof.evidence.items() if k != "check_queued_at"}
        proof.save(update_fields=["evidence"])


@transaction.atomic
def record_branch_check(*, proof_id: int, answer: git.LsRemote) -> bool:
    """Settle one answer of git for the proof; True once the branch was seen. No answer
    (or a name that did not resolve) leaves it pending; a refused or broken repository
    fails it; an absent branch leaves it pending."""
    proof = services._locked(proof_id)
    proof.evidence = {k: v for k, v in proof.evidence.items() if k != "check_queued_at"}
    if proof.status != Status.PENDING:
        proof.save(update_fields=["evidence"])
        return proof.status == Status.SATISFIED
    checks = int(proof.evidence.get("checks", 0)) + 1
    if answer.lines:
        settle(proof, Status.SATISFIED, result="branch found", checks=checks,
               seen=answer.lines[:1])
    elif answer.timed_out or answer.unresolved:
        settle(proof, Status.PENDING, result="no answer", checks=checks, error=answer.error)
    elif answer.error:
        settle(proof, Status.FAILED, result="repository error", checks=checks,
               error=answer.error)
    else:
        settle(proof, Status.PENDING, result="branch absent", checks=checks, seen=[])
    return proof.status == Status.SATISFIED

