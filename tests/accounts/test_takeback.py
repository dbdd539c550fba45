"""``accounts.takeback``: ending every session and device, and handing the addresses and the
password over, as a recovery's completion does (DESIGN §5 "Completion")."""

import pytest
from django.utils import timezone

from relatch.accounts.emails.staff import AddressVerifiedElsewhereError
from relatch.accounts.models import Email, KnownDevice, UserSession
from relatch.accounts.takeback import end_every_session, hand_over
from tests.conftest import PASSWORD, sign_in

pytestmark = pytest.mark.django_db


def test_every_session_and_known_device_ends(user, make_user, make_client):
    bob = make_user(username="bob")
    for someone in (user, user, bob):
        sign_in(make_client(), someone)
    KnownDevice.objects.create(user=user, device_digest="d" * 64)
    KnownDevice.objects.create(user=bob, device_digest="d" * 64)
    assert end_every_session(user=user) == {"sessions": 2, "devices": 1}
    assert not UserSession.objects.filter(user=user).exists()
    assert not KnownDevice.objects.filter(user=user).exists()
    assert UserSession.objects.filter(user=bob).count() == 1
    assert KnownDevice.objects.filter(user=bob).count() == 1


def addresses(user):
    return {(e.address, e.primary, e.verified) for e in Email.objects.filter(user=user)}


def test_the_contact_address_becomes_the_only_verified_one_and_the_password_goes(user):
    Email.objects.create(user=user, address="alice@work.example", verified=True,
                         verified_at=timezone.now())
    Email.objects.create(user=user, address="alice@new.example", verified=False)
    user.failed_signins = 3
    user.save(update_fields=["failed_signins"])

    unverified = hand_over(user=user, address="ALICE@new.example")

    assert sorted(unverified) == ["alice@example.org", "alice@work.example"]
    assert addresses(user) == {("alice@example.org", False, False),
                               ("alice@work.example", False, False),
                               ("alice@new.example", True, True)}
    user.refresh_from_db()
    assert not user.has_usable_password() and not user.check_password(PASSWORD)
    assert user.failed_signins == 0


def test_a_contact_address_not_on_the_account_is_added_verified(user):
    assert hand_over(user=user, address="alice@new.example") == ["alice@example.org"]
    new = Email.objects.get(user=user, address="alice@new.example")
    assert (new.primary, new.verified, new.verified_at is not None) == (True, True, True)


def test_an_address_verified_on_another_account_is_refused(user, make_user):
    make_user(username="mallory", email="alice@new.example")
    with pytest.raises(AddressVerifiedElsewhereError):
        hand_over(user=user, address="alice@new.example")
