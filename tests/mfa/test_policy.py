"""The second-factor policy later issues call (issue 3 §6)."""

import pytest

from relatch.mfa import policy
from relatch.mfa.policy import (
    SecondFactorRequiredError,
    has_second_factor,
    has_totp,
    has_webauthn,
    refusal_to_remove_factor,
    require_second_factor,
)
from tests.index.project_rows import make_project
from tests.mfa.factor_rows import add_app, add_codes, add_key

pytestmark = pytest.mark.django_db

REQUIRED = (
    "Uploading a release needs two-step sign-in. Add an authenticator app or a security key "
    "to your account first."
)


def give(user, factors: str) -> None:
    if "app" in factors:
        add_app(user)
    if "key" in factors:
        add_key(user, "Desk key")
    if "codes" in factors:
        add_codes(user)


@pytest.mark.parametrize(
    ("factors", "totp", "webauthn", "second"),
    [
        ("", False, False, False),
        ("app", True, False, True),
        ("key", False, True, True),
        ("app key", True, True, True),
        # Recovery codes are a way back in, not a factor (ASVS 6.3.3: MFA means a real factor).
        ("codes", False, False, False),
        ("app codes", True, False, True),
    ],
)
def test_what_counts_as_a_second_factor(user, factors, totp, webauthn, second):
    give(user, factors)
    assert (has_totp(user), has_webauthn(user), has_second_factor(user)) == (totp, webauthn, second)


def test_another_accounts_factors_do_not_count(user, make_user):
    give(make_user(username="bob"), "app key codes")
    assert not has_second_factor(user)


@pytest.mark.parametrize("factors", ["", "codes"])
def test_require_second_factor_refuses_with_the_reason(user, factors):
    """OWASP MFA1 / issue 3 §6: managing projects needs a second factor; the user is told how
    to get one."""
    give(user, factors)
    with pytest.raises(SecondFactorRequiredError) as refused:
        require_second_factor(user=user, action="Uploading a release")
    assert refused.value.message == REQUIRED
    assert str(refused.value) == REQUIRED


@pytest.mark.parametrize("factors", ["app", "key"])
def test_require_second_factor_lets_an_account_with_one_through(user, factors):
    give(user, factors)
    assert require_second_factor(user=user, action="Uploading a release") is None


@pytest.mark.parametrize("remaining_after", [0, 1, 2])
def test_removing_a_factor_is_allowed_while_no_project_is_owned(user, remaining_after):
    """No project exists before the package index (issue 4): nothing to protect yet."""
    assert refusal_to_remove_factor(user=user, remaining_after=remaining_after) is None


@pytest.mark.parametrize(("remaining_after", "refused"), [(0, True), (1, False), (2, False)])
def test_an_owner_cannot_remove_their_last_second_factor(user, remaining_after, refused):
    """Issue 3 §6: removing the last second factor of an account that owns projects is refused
    with an explanation; keeping one more factor is fine."""
    make_project("alices-pkg", owners=(user,))

    reason = refusal_to_remove_factor(user=user, remaining_after=remaining_after)

    if refused:
        assert reason is not None
        assert "last second factor" in reason
        assert "owns projects" in reason
        assert "Add another authenticator app or security key first" in reason
    else:
        assert reason is None


@pytest.mark.parametrize(("kind", "owns"), [("owner", True), ("maintainer", False)])
def test_owning_a_project_is_read_from_the_roles(user, kind, owns):
    from relatch.index.models import Project, Role

    assert not policy.owns_projects(user)
    project = Project.objects.create(name="Sample", normalized_name="sample")
    Role.objects.create(project=project, user=user, kind=kind)
    assert policy.owns_projects(user) is owns
    reason = policy.refusal_to_remove_factor(user=user, remaining_after=0)
    assert (reason is not None) is owns
