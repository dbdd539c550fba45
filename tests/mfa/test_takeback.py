"""``mfa.takeback.remove_every_factor``: what a completed staff recovery takes from the factors
(DESIGN §5 "Completion"); the completion's own tests drive it end to end."""

from datetime import timedelta

import pytest
from django.utils import timezone

from relatch.mfa.models import RecoveryCodeSet, SelfServiceRecovery, TotpDevice, WebAuthnCredential
from relatch.mfa.takeback import remove_every_factor
from tests.mfa.factor_rows import add_app, add_codes, add_key

pytestmark = pytest.mark.django_db


def waiting_recovery(user, **fields):
    now = timezone.now()
    return SelfServiceRecovery.objects.create(user=user, device_digest="d" * 64, factor="totp",
                                              ends_at=now + timedelta(days=7), **fields)


def test_every_factor_of_the_account_goes_and_its_waiting_recovery_ends(user, make_user):
    bob = make_user(username="bob")
    for someone in (user, bob):
        add_app(someone)
        add_key(someone, "Yubikey")
        add_codes(someone, total=2)
        waiting_recovery(someone)
    add_key(user, "Spare")

    removed = remove_every_factor(user=user)

    # Counted as Django counts a delete: a code set with its two codes is three rows.
    assert removed == {"totp": 1, "security_keys": 2, "recovery_code_sets": 3}
    for model in (TotpDevice, WebAuthnCredential, RecoveryCodeSet):
        assert not model.objects.filter(user=user).exists()
        assert model.objects.filter(user=bob).exists()
    ended = SelfServiceRecovery.objects.get(user=user)
    assert (ended.state, ended.closed_by) == (SelfServiceRecovery.State.CANCELLED,
                                              "staff_recovery")
    assert ended.closed_at is not None
    assert SelfServiceRecovery.objects.get(user=bob).state == SelfServiceRecovery.State.WAITING


def test_an_account_without_factors_loses_nothing_and_a_closed_recovery_stays_closed(user):
    done = waiting_recovery(user, state=SelfServiceRecovery.State.COMPLETED, closed_by="completed")
    assert remove_every_factor(user=user) == {"totp": 0, "security_keys": 0,
                                              "recovery_code_sets": 0}
    done.refresh_from_db()
    assert (done.state, done.closed_by) == (SelfServiceRecovery.State.COMPLETED, "completed")
