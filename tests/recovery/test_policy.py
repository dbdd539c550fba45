"""When a request may complete (DESIGN §5; NIST N6: two proofs for an account with 2FA)."""

import pytest
from django.contrib.auth import get_user_model

from relatch.index.models import Project, Role
from relatch.recovery.models import ProofKind, RecoveryApproval
from relatch.recovery.policy import verdict
from tests.mfa.factor_rows import add_app
from tests.recovery.requests import end_wait, make_request, satisfy

pytestmark = pytest.mark.django_db
P = ProofKind


def approve(recovery, *names):
    user_model = get_user_model()
    for name in names:
        staff, _ = user_model.objects.get_or_create(username=name, defaults={"is_staff": True})
        RecoveryApproval.objects.create(request=recovery, staff=staff)


@pytest.mark.parametrize(
    ("two_factor", "proofs", "waited", "may"),
    [
        (True, [P.REPO_BRANCH, P.API_TOKEN], False, True),  # two kinds
        (True, [P.REPO_BRANCH, P.REPO_BRANCH], False, False),  # the same kind twice is one
        (True, [P.REPO_BRANCH], True, True),  # one proof and the wait
        (True, [P.REPO_BRANCH], False, False),
        (False, [P.ACCOUNT_EMAIL], False, True),  # no 2FA: one proof
        (False, [], False, False),
        (True, [], True, False),  # no proof and no override: never
    ],
)
def test_proofs_and_waits(user, two_factor, proofs, waited, may):
    if two_factor:
        add_app(user)
    recovery = make_request(user)
    satisfy(recovery, *proofs)
    if waited:
        end_wait(recovery)
    approve(recovery, "dana")
    assert verdict(recovery).may_complete is may


def test_an_override_needs_a_reason_the_wait_and_two_approvals(user):
    recovery = make_request(user)
    approve(recovery, "dana", "eve")
    end_wait(recovery)
    assert not verdict(recovery).may_complete  # no reason written
    recovery.override_reason = "Known maintainer; verified in person at the sprint."
    recovery.save()
    assert verdict(recovery).may_complete
    RecoveryApproval.objects.filter(staff__username="eve").delete()
    judged = verdict(recovery)
    assert not judged.may_complete and judged.approvals_needed == 2


def test_an_account_owning_projects_needs_a_second_approval(user):
    project = Project.objects.create(name="p", normalized_name="p")
    Role.objects.create(project=project, user=user, kind=Role.Kind.OWNER)
    recovery = make_request(user)
    satisfy(recovery, P.ACCOUNT_EMAIL)
    approve(recovery, "dana")
    assert not verdict(recovery).may_complete
    approve(recovery, "eve")
    assert verdict(recovery).may_complete


def test_a_request_for_no_account_never_completes():
    recovery = make_request(None)
    assert not verdict(recovery).may_complete
