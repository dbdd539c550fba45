"""What each proof rests on, and which proofs are independent (DESIGN §5; issue 15).

Each rule is checked both ways: the honest owner's proof counts, the look-alike an attacker
could produce does not (NIST SP 800-63B-4 §4.2: recovery with two independent factors).
"""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from relatch.accounts.models import Email
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import APIToken, Release, Role
from relatch.recovery.models import ProofKind, RecoveryProof, RecoveryRequest
from relatch.recovery.sources import judge
from tests.mfa.factor_rows import add_app
from tests.recovery.proof_rows import make_project
from tests.recovery.requests import age_password, make_request

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


def satisfied(recovery: RecoveryRequest, kind: str, **evidence: Any) -> RecoveryProof:
    return RecoveryProof.objects.create(request=recovery, kind=kind, evidence=evidence,
                                        status=RecoveryProof.Status.SATISFIED,
                                        checked_at=timezone.now())


def only(recovery: RecoveryRequest) -> tuple[str, bool, str]:
    item = judge(recovery)[-1]
    return str(item.source or ""), item.counts, item.why


@pytest.mark.parametrize(("history", "source", "why"), [
    ([(EventKind.ACCOUNT_CREATED, 90)], "knowledge", "set by the signed-in owner"),
    ([(EventKind.ACCOUNT_CREATED, 90), (EventKind.PASSWORD_CHANGED, 45)], "knowledge", ""),
    ([(EventKind.ACCOUNT_CREATED, 10)], "mailbox", "within 30 days"),
    ([(EventKind.ACCOUNT_CREATED, 90), (EventKind.PASSWORD_RESET, 60)], "mailbox",
     "mailed reset link"),
    ([(EventKind.ACCOUNT_CREATED, 90), (EventKind.PASSWORD_CHANGED, -1)], "mailbox",
     "during it"),
])
def test_a_password_is_knowledge_only_when_the_owner_set_it_long_before(
        user: Any, history: list[tuple[str, int]], source: str, why: str) -> None:
    SecurityEvent.objects.filter(user=user).delete()
    recovery = make_request(user, created_at=timezone.now() - 2 * DAY)
    for kind, days_before in history:
        SecurityEvent.objects.create(user=user, kind=kind,
                                     created_at=recovery.created_at - days_before * DAY)
    satisfied(recovery, ProofKind.PASSWORD)
    found, counts, said = only(recovery)
    assert (found, counts) == (source, True) and why in said


@pytest.mark.parametrize(("verified_days_before", "counts"), [(30, True), (-1, False)])
def test_an_address_counts_only_if_verified_before_the_request(
        user: Any, verified_days_before: int, counts: bool) -> None:
    recovery = make_request(user)
    email = Email.objects.get(user=user)
    Email.objects.filter(pk=email.pk).update(
        verified_at=recovery.created_at - verified_days_before * DAY)
    satisfied(recovery, ProofKind.ACCOUNT_EMAIL, address_id=email.pk)
    assert only(recovery)[:2] == (("mailbox", True) if counts else ("", False))


def test_an_address_no_longer_verified_does_not_count(user: Any) -> None:
    recovery = make_request(user)
    email = Email.objects.get(user=user)
    satisfied(recovery, ProofKind.ACCOUNT_EMAIL, address_id=email.pk)
    Email.objects.filter(pk=email.pk).update(verified=False, verified_at=None)
    assert only(recovery)[1] is False


@pytest.mark.parametrize(("created_days_before", "counts"), [(10, True), (-1, False)])
def test_a_token_counts_only_if_made_before_the_request(
        user: Any, created_days_before: int, counts: bool) -> None:
    recovery = make_request(user)
    token = APIToken.objects.create(user=user, name="ci", identifier="id", secret_digest="0" * 64,
                                    created_at=recovery.created_at - created_days_before * DAY)
    satisfied(recovery, ProofKind.API_TOKEN, token_id=token.pk)
    assert only(recovery)[:2] == (("token", True) if counts else ("", False))


@pytest.mark.parametrize("kind", [ProofKind.TOTP, ProofKind.RECOVERY_CODE,
                                  ProofKind.SECURITY_KEY])
@pytest.mark.parametrize(("enrolled_days_before", "counts"), [(5, True), (-1, False)])
def test_a_factor_counts_only_if_enrolled_before_the_request(
        user: Any, kind: str, enrolled_days_before: int, counts: bool) -> None:
    recovery = make_request(user)
    enrolled = recovery.created_at - enrolled_days_before * DAY
    satisfied(recovery, kind, enrolled_at=enrolled.isoformat())
    assert only(recovery)[:2] == (("factor", True) if counts else ("", False))


@pytest.mark.parametrize(("uploader", "days", "url", "why"), [
    ("account", 60, "https://github.com/alice/sandwich", "which this account uploaded"),
    ("bob", 60, "https://github.com/bob/sandwich", "uploaded by bob, not by this account"),
    ("account", 3, "https://github.com/alice/sandwich", "less than 30 days"),
    ("account", 60, "https://git.example.org/sandwich.git", "not on a host Relatch checks"),
])
def test_a_repository_counts_only_if_the_account_declared_it_long_before(
        user: Any, make_user: Any, uploader: str, days: int, url: str, why: str) -> None:
    who = user if uploader == "account" else make_user(username="bob")
    project = make_project(user, "sandwich", urls={"Source": url}, uploader=who,
                           age=days * DAY)
    recovery = make_request(user)
    satisfied(recovery, ProofKind.REPO_BRANCH, project=project.name, repository=url)
    found, counts, said = only(recovery)
    assert counts is (why == "which this account uploaded") and why in said
    assert Release.objects.get(project=project).uploader == who


@pytest.mark.parametrize(("change", "why"), [
    ("", "vouched after seeing who asks"),
    ("no_2fa", "has no two-step sign-in"),
    ("recent", "for 30 days before the request"),
    ("their_own_request", "cannot vouch for their own request"),
])
def test_a_co_owner_counts_once_and_only_as_a_long_standing_co_owner_with_2fa(
        user: Any, make_user: Any, change: str, why: str) -> None:
    bob = make_user(username="bob", email="bob@example.org")
    project = make_project(user, "shared")
    age = 3 * DAY if change == "recent" else 60 * DAY
    Role.objects.create(project=project, user=bob, kind=Role.Kind.OWNER,
                        created_at=timezone.now() - age)
    if change != "no_2fa":
        add_app(bob)
    contact = "bob@example.org" if change == "their_own_request" else "new@example.net"
    recovery = make_request(user, contact=contact)
    satisfied(recovery, ProofKind.CO_OWNER, vouched_by_id=bob.pk)
    found, counts, said = only(recovery)
    assert counts is (change == "") and why in said


def test_two_proofs_on_one_source_count_once(user: Any) -> None:
    """Issue 15 attack 1: a password reset by mail and a mailed code are one mailbox."""
    age_password(user)
    SecurityEvent.objects.create(user=user, kind=EventKind.PASSWORD_RESET)
    recovery = make_request(user)
    satisfied(recovery, ProofKind.ACCOUNT_EMAIL, address_id=Email.objects.get(user=user).pk)
    satisfied(recovery, ProofKind.PASSWORD)
    first, second = judge(recovery)
    assert (first.counts, second.counts) == (True, False)
    assert str(first.source) == str(second.source) == "mailbox"
    assert "Same source as the earlier" in second.why


def test_a_completed_request_reads_as_it_was_judged_when_it_completed(user: Any,
                                                                      make_user: Any) -> None:
    """Completion unverifies addresses and disables the password; the proofs that completed
    the request still read as counted afterwards (the desk's history of a finished case)."""
    from django.db import transaction

    from relatch.recovery.completion import complete_recovery
    from relatch.recovery.models import RecoveryApproval, State

    staff = make_user(username="dana", is_staff=True)
    recovery = make_request(user, state=State.AWAITING_APPROVAL)
    satisfied(recovery, ProofKind.ACCOUNT_EMAIL, address_id=Email.objects.get(user=user).pk)
    RecoveryApproval.objects.create(request=recovery, staff=staff)
    with transaction.atomic():
        complete_recovery(recovery=recovery, staff=staff)
    recovery.refresh_from_db()
    assert not Email.objects.get(address="alice@example.org").verified
    assert only(recovery)[:2] == ("mailbox", True)
