"""Completion takes the account back from whoever holds it and hands it to the requester's
confirmed address, all in one transaction (DESIGN §5; ASVS 6.4.4, 7.4.2)."""

import pytest
from django.db import IntegrityError, transaction
from django.test import TestCase

from relatch.accounts.models import Email, KnownDevice, UserSession
from relatch.audit.models import EventKind, SecurityEvent, StaffAction
from relatch.index.models import APIToken, TrustedPublisher
from relatch.mfa.models import RecoveryCodeSet, TotpDevice, WebAuthnCredential
from relatch.recovery.completion import CompletionRefusedError, complete_recovery
from relatch.recovery.models import ProofKind, RecoveryApproval, RecoveryRequest, State
from tests.conftest import PASSWORD, run_pending_tasks, sign_in
from tests.mfa.factor_rows import add_app, add_codes, add_key
from tests.recovery.requests import make_request, satisfy

pytestmark = pytest.mark.django_db


@pytest.fixture
def held_account(user, make_client):
    """Alice's account as an attacker (or a lost phone) may hold it: factors, a session, a
    trusted device, a live API token."""
    add_app(user)
    add_key(user, "Yubikey")
    add_codes(user)
    sign_in(make_client(), user)
    KnownDevice.objects.create(user=user, device_digest="d" * 64)
    APIToken.objects.create(user=user, name="ci", identifier="abc", secret_digest="0" * 64)
    return user


def ready(user, staff, contact="alice@new.example"):
    recovery = make_request(user, contact=contact, state=State.AWAITING_APPROVAL)
    satisfy(recovery, ProofKind.REPO_BRANCH, ProofKind.API_TOKEN)
    RecoveryApproval.objects.create(request=recovery, staff=staff)
    return recovery


def complete(recovery, staff):
    with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
        complete_recovery(recovery=recovery, staff=staff)
    run_pending_tasks()


def test_completion_removes_factors_ends_everything_and_hands_over(held_account, staff, mail):
    user = held_account
    recovery = ready(user, staff)
    # Publishers act with the account's standing: one the previous holder added would publish
    # again once the owner re-enrols a factor.
    for name in ("planted-one", "planted-two"):
        TrustedPublisher.objects.create(
            pending_name=name, pending_normalized_name=name, added_by=user,
            issuer="https://token.actions.githubusercontent.com", dialect="github",
            repository="mallory/planted", workflow="release.yml")
    complete(recovery, staff)

    assert recovery.state == State.COMPLETED
    assert not TrustedPublisher.objects.filter(added_by=user, removed_at__isnull=True).exists()
    for model in (TotpDevice, WebAuthnCredential, RecoveryCodeSet, UserSession, KnownDevice):
        assert not model.objects.filter(user=user).exists(), model.__name__
    assert not APIToken.objects.filter(user=user, revoked_at__isnull=True).exists()
    user.refresh_from_db()
    assert not user.has_usable_password()
    primary = Email.objects.get(user=user, primary=True)
    assert (primary.address, primary.verified) == ("alice@new.example", True)
    # What each app took back, as counted by Django (a code set with its 8 codes is 9 rows;
    # the token proof made a second token).
    removed = {"totp": 1, "security_keys": 1, "recovery_code_sets": 9, "sessions": 1,
               "devices": 1, "api_tokens": 2, "trusted_publishers": 2}
    completed = SecurityEvent.objects.get(user=user, kind=EventKind.RECOVERY_COMPLETED)
    assert completed.details == {"request": recovery.public_id, "removed": {
        **removed, "unverified": ["alice@example.org"], "undone": []}}
    action = StaffAction.objects.get(staff=staff, action="recovery:complete")
    assert action.before == {"removed": {**removed, "unverified": ["alice@example.org"],
                                         "undone": []}}
    assert action.after == {"primary": "alice@new.example"}
    # The old addresses are told; the new one gets the link to set a password.
    assert "Completed" in mail.text(mail.last("alice@example.org"))
    assert "/account/reset/" in mail.text(mail.last("alice@new.example"))


def test_the_reset_link_sets_a_password_and_the_owner_signs_in(
    held_account, staff, mail, client, make_client
):
    complete(ready(held_account, staff), staff)
    reset = next(m for m in mail.to("alice@new.example") if "set a new password" in m["Subject"])
    response = client.get(mail.link_to(reset, "/account/reset/"), follow=True)
    new_password = "a brand new passphrase for alice"
    response = client.post(response.redirect_chain[-1][0],
                           {"new_password1": new_password, "new_password2": new_password})
    assert response.status_code == 302
    signed = client.post("/account/login/", {"identifier": "alice", "password": new_password})
    assert signed.status_code == 302  # no second factor left: the password alone signs in
    old = make_client().post("/account/login/", {"identifier": "alice", "password": PASSWORD})
    assert old.status_code == 200 and "Username or password is wrong" in old.content.decode()


@pytest.mark.parametrize("missing", ["proof", "approval", "state", "contact"])
def test_completion_is_refused_and_changes_nothing_without_its_conditions(
    held_account, staff, missing
):
    recovery = ready(held_account, staff)
    if missing == "proof":
        recovery.proofs.filter(kind=ProofKind.API_TOKEN).delete()  # 2FA account: one is short
    elif missing == "approval":
        RecoveryApproval.objects.all().delete()
    elif missing == "state":
        RecoveryRequest.objects.filter(pk=recovery.pk).update(state=State.AWAITING_PROOF)
    else:
        RecoveryRequest.objects.filter(pk=recovery.pk).update(contact_confirmed_at=None)
    with pytest.raises(CompletionRefusedError):
        complete(recovery, staff)
    assert TotpDevice.objects.filter(user=held_account).exists()
    assert APIToken.objects.filter(revoked_at__isnull=True).exists()
    held_account.refresh_from_db()
    assert held_account.has_usable_password()


def test_a_contact_address_verified_on_another_account_is_refused(held_account, staff, make_user):
    make_user(username="mallory", email="alice@new.example")
    with pytest.raises(CompletionRefusedError, match="another account"):
        complete(ready(held_account, staff), staff)
    assert TotpDevice.objects.filter(user=held_account).exists()


def test_the_database_refuses_a_wait_without_an_end(user):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_request(user, state=State.IN_WAITING_PERIOD, wait_ends_at=None)
