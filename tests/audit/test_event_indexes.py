"""The partial indexes on security events match the queries of the second-factor limits
(issue 7 §4): with other kinds in their conditions, PostgreSQL could not use them and every
code typed would read all of the account's events again."""

from relatch.audit.models import FAILURE_KINDS, RESETTING_KINDS, SecurityEvent
from relatch.mfa import throttling


def _condition_kinds(name: str) -> set[str]:
    index = next(i for i in SecurityEvent._meta.indexes if i.name == name)
    assert index.condition is not None
    (lookup, kinds), = index.condition.children
    assert lookup == "kind__in"
    return {str(kind) for kind in kinds}


def test_the_reset_index_covers_exactly_the_kinds_that_reset_the_factor_limits():
    assert _condition_kinds("event_user_resets") == {str(k) for k in RESETTING_KINDS}
    assert set(RESETTING_KINDS) == set(throttling._RESETTING_KINDS)


def test_the_failure_index_covers_exactly_the_kinds_the_factor_limits_count():
    assert _condition_kinds("event_user_failures") == {str(k) for k in FAILURE_KINDS}
    assert set(FAILURE_KINDS) == set(throttling._FAILURE_KINDS)


def test_the_changes_index_covers_exactly_the_kinds_the_recovery_desk_lists():
    from relatch.audit.models import ACCOUNT_CHANGE_KINDS
    from relatch.recovery import takeover

    assert _condition_kinds("event_user_changes") == {str(k) for k in ACCOUNT_CHANGE_KINDS}
    assert set(takeover.SHOWN_KINDS) == set(ACCOUNT_CHANGE_KINDS)
