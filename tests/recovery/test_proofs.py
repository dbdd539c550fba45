"""Proofs the server checks (issue 5 §3, DESIGN §5): api_token, account_email, password,
co_owner, the weak evidence, the proof pages, and how outcomes move the request."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from relatch.accounts.models import Email
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import Role
from relatch.index.tokens.services import create_token
from relatch.recovery.models import ProofKind, RecoveryProof, State
from relatch.recovery.proofs import services
from relatch.recovery.proofs.views import proof_page_url
from relatch.recovery.requester.links import status_token
from tests.conftest import PASSWORD, sign_in
from tests.mfa.factor_rows import add_app
from tests.recovery.proof_rows import asked, committed, make_project
from tests.recovery.requests import make_request, satisfy

pytestmark = pytest.mark.django_db
Status = RecoveryProof.Status


def page(proof) -> str:
    url = proof_page_url(proof)
    return url[url.index("/recovery/proof/"):]


def status_of(proof) -> str:
    proof.refresh_from_db()
    return proof.status


# --- requesting ---------------------------------------------------------------------------

def test_asking_for_a_proof_moves_a_submitted_request_and_tells_the_requester(user, staff, mail):
    recovery, proof = asked(user, staff, ProofKind.PASSWORD, state=State.SUBMITTED)
    recovery.refresh_from_db()
    assert (proof.status, proof.requested_by, recovery.state) == (
        Status.PENDING, staff, State.AWAITING_PROOF)
    subjects = [m["Subject"] for m in mail.to("new@example.net")]
    assert any("a proof is needed" in s for s in subjects)
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.RECOVERY_PROOF_REQUESTED).exists()


@pytest.mark.parametrize(("state", "kind", "message"), [
    (State.CANCELLED, ProofKind.PASSWORD, "closed"),
    (State.COMPLETED, ProofKind.PASSWORD, "closed"),
    (State.AWAITING_PROOF, ProofKind.RECOVERY_CODE, "no recovery codes"),
    (State.AWAITING_PROOF, ProofKind.TOTP, "no authenticator app"),
    (State.AWAITING_PROOF, ProofKind.SECURITY_KEY, "no security key"),
    (State.AWAITING_PROOF, "nonsense", "kind of proof"),
    (State.AWAITING_PROOF, ProofKind.REPO_BRANCH, "project of this account"),
])
def test_proofs_that_cannot_be_asked_for(user, staff, state, kind, message):
    recovery = make_request(user, state=state)
    with pytest.raises(services.ProofError, match=message):
        committed(services.request_proof, recovery=recovery, kind=kind, staff=staff)
    assert not RecoveryProof.objects.exists()


def test_no_proof_for_a_request_naming_no_account(staff):
    recovery = make_request(None, state=State.AWAITING_PROOF)
    with pytest.raises(services.ProofError, match="No account"):
        committed(services.request_proof, recovery=recovery, kind=ProofKind.PASSWORD, staff=staff)


def test_a_branch_proof_needs_a_project_of_the_account_naming_a_repository(user, staff, make_user):
    other = make_project(make_user(username="bob"), "theirs", urls={"Source": "https://github.com/b/t"})
    bare = make_project(user, "bare", urls={"Documentation": "https://docs.example.org/"})
    recovery = make_request(user, state=State.AWAITING_PROOF)
    for project, message in [(other, "project of this account"),
                             (bare, "No release of bare names a repository")]:
        with pytest.raises(services.ProofError, match=message):
            committed(services.request_proof, recovery=recovery, kind=ProofKind.REPO_BRANCH,
                      staff=staff, project=project)


# --- api_token ----------------------------------------------------------------------------

def token_of(owner) -> str:
    add_app(owner)
    return create_token(request=None, user=owner, name="ci", project=None, expires_at=None)[1]


def test_a_token_of_the_account_satisfies_the_proof_and_is_not_kept(user, staff, mail):
    raw = token_of(user)
    recovery, proof = asked(user, staff, ProofKind.API_TOKEN)
    assert committed(services.submit_api_token, proof=proof, raw=raw) is True
    proof.refresh_from_db()
    recovery.refresh_from_db()
    assert proof.status == Status.SATISFIED and proof.evidence["token_name"] == "ci"
    secret = raw.partition(".")[2]  # relatch-<identifier>.<secret>; the secret may hold "-"
    assert secret and raw not in str(proof.evidence) and secret not in str(proof.evidence)
    # One proof on an account with a second factor: the enforced wait (DESIGN §5, NIST N6).
    assert recovery.state == State.IN_WAITING_PERIOD
    assert recovery.wait_ends_at > timezone.now() + timedelta(days=6)


@pytest.mark.parametrize("case", ["other account", "garbage", "revoked", "empty", "huge"])
def test_tokens_that_do_not_prove_the_account(user, staff, make_user, case):
    raw = {"other account": lambda: token_of(make_user(username="bob")),
           "garbage": lambda: "relatch-not-a-token", "empty": lambda: "",
           "huge": lambda: "x" * 5000, "revoked": lambda: _revoked(user)}[case]()
    _, proof = asked(user, staff, ProofKind.API_TOKEN)
    assert committed(services.submit_api_token, proof=proof, raw=raw) is False
    proof.refresh_from_db()
    assert (proof.status, proof.attempts) == (Status.PENDING, 1)


def _revoked(owner) -> str:
    from relatch.index.models import APIToken
    raw = token_of(owner)
    APIToken.objects.filter(user=owner).update(revoked_at=timezone.now())
    return raw


# --- password (and the five-attempt bound) ------------------------------------------------

def test_the_password_satisfies_and_a_lone_proof_without_2fa_awaits_approval(user, staff, mail):
    recovery, proof = asked(user, staff, ProofKind.PASSWORD)
    assert committed(services.submit_password, proof=proof, password=PASSWORD) is True
    recovery.refresh_from_db()
    assert status_of(proof) == Status.SATISFIED
    assert recovery.state == State.AWAITING_APPROVAL
    assert recovery.transitions.last().actor == "system"
    # Answered on the requester's own page: nobody is mailed about it (issue 19). The
    # owner heard of the filing and hears of the completion; the page shows the rest.
    assert mail.to("alice@example.org") == []
    assert not any("satisfied" in mail.text(m) for m in mail.messages)
    assert PASSWORD not in "".join(mail.text(m) for m in mail.messages)


def test_five_wrong_passwords_fail_the_proof(user, staff, mail):
    """ASVS 6.3.5 / NIST: guessing is bounded; a failed proof is announced to the account."""
    recovery, proof = asked(user, staff, ProofKind.PASSWORD)
    for _ in range(5):
        assert committed(services.submit_password, proof=proof, password="wrong") is False
    assert status_of(proof) == Status.FAILED
    with pytest.raises(services.ProofError, match="failed"):
        committed(services.submit_password, proof=proof, password=PASSWORD)
    assert status_of(proof) == Status.FAILED
    recovery.refresh_from_db()
    assert recovery.state == State.AWAITING_PROOF
    checks = SecurityEvent.objects.filter(user=user, kind=EventKind.RECOVERY_PROOF_CHECKED)
    assert checks.count() == 5
    assert any("is now failed" in mail.text(m) for m in mail.to("alice@example.org"))


@pytest.mark.parametrize("owns_projects", [False, True])
def test_a_second_independent_source_ends_the_wait_on_a_2fa_account(user, staff, owns_projects):
    """DESIGN §5: two independent sources are enough with 2FA. An account that owns no
    project then completes by itself after an announced 24-hour wait; one that owns projects
    waits for two staff approvals. (The password was set at registration, today: it counts
    as the mailbox, and the token as a token: two sources.)"""
    add_app(user)
    if owns_projects:
        make_project(user, "owned")
    recovery, proof = asked(user, staff, ProofKind.PASSWORD)
    satisfy(recovery, ProofKind.API_TOKEN)
    committed(services.submit_password, proof=proof, password=PASSWORD)
    recovery.refresh_from_db()
    if owns_projects:
        assert recovery.state == State.AWAITING_APPROVAL
    else:
        assert (recovery.state, recovery.completes_automatically) == (
            State.IN_WAITING_PERIOD, True)
        length = recovery.wait_ends_at - recovery.wait_started_at
        assert abs(length - timedelta(hours=24)) < timedelta(seconds=5)


def test_a_proof_is_refused_once_the_request_is_closed(user, staff):
    recovery, proof = asked(user, staff, ProofKind.PASSWORD)
    type(recovery).objects.filter(pk=recovery.pk).update(state=State.DENIED)
    with pytest.raises(services.ProofError, match="no more proofs"):
        committed(services.submit_password, proof=proof, password=PASSWORD)
    assert status_of(proof) == Status.PENDING


# --- account_email ------------------------------------------------------------------------

def code_in(mail, address) -> str:
    return re.search(r"\b(\d{6})\b", mail.text(mail.last(address))).group(1)


def test_a_code_mailed_to_an_account_address_satisfies_the_proof(user, staff, mail):
    """NIST N3: a short-lived code to an address verified on the account; single use."""
    _, proof = asked(user, staff, ProofKind.ACCOUNT_EMAIL)
    committed(services.send_account_email_code, proof=proof, address="ALICE@example.org")
    code = code_in(mail, "alice@example.org")
    proof.refresh_from_db()
    assert proof.evidence["sent_to"] == "a***@example.org"
    assert code not in str(proof.evidence) and proof.secret_digest != code
    assert committed(services.submit_account_email_code, proof=proof, code=code) is True
    proof.refresh_from_db()
    assert (proof.status, proof.secret_digest) == (Status.SATISFIED, "")


def test_codes_go_only_to_verified_addresses_of_the_account(user, staff, make_user, mail):
    Email.objects.create(user=user, address="old@example.org", verified=False)
    _, proof = asked(user, staff, ProofKind.ACCOUNT_EMAIL)
    for address in ["new@example.net", "old@example.org", "bob@example.org", ""]:
        with pytest.raises(services.ProofError, match="verified addresses"):
            committed(services.send_account_email_code, proof=proof, address=address)
    assert not any("code is" in mail.text(m) for m in mail.messages)


def test_an_expired_or_wrong_code_does_not_count(user, staff, mail):
    _, proof = asked(user, staff, ProofKind.ACCOUNT_EMAIL)
    with pytest.raises(services.ProofError, match="Send a code"):
        committed(services.submit_account_email_code, proof=proof, code="123456")
    committed(services.send_account_email_code, proof=proof, address="alice@example.org")
    code = code_in(mail, "alice@example.org")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert committed(services.submit_account_email_code, proof=proof, code=wrong) is False
    RecoveryProof.objects.filter(pk=proof.pk).update(expires_at=timezone.now())
    with pytest.raises(services.ProofError, match="expired"):
        committed(services.submit_account_email_code, proof=proof, code=code)
    proof.refresh_from_db()
    assert (proof.status, proof.attempts) == (Status.PENDING, 1)


def test_a_new_code_replaces_the_old_and_three_is_the_most(user, staff, mail):
    _, proof = asked(user, staff, ProofKind.ACCOUNT_EMAIL)
    committed(services.send_account_email_code, proof=proof, address="alice@example.org")
    first = code_in(mail, "alice@example.org")
    for _ in range(2):
        committed(services.send_account_email_code, proof=proof, address="alice@example.org")
    last = code_in(mail, "alice@example.org")
    with pytest.raises(services.ProofError, match="Three codes"):
        committed(services.send_account_email_code, proof=proof, address="alice@example.org")
    if first != last:
        assert committed(services.submit_account_email_code, proof=proof, code=first) is False
    assert committed(services.submit_account_email_code, proof=proof, code=last) is True


# --- co_owner -----------------------------------------------------------------------------

@pytest.fixture
def co_owner(user, make_user):
    bob = make_user(username="bob", email="bob@example.org")
    project = make_project(user, "shared")
    Role.objects.create(project=project, user=bob, kind=Role.Kind.OWNER,
                        created_at=timezone.now() - timedelta(days=60))
    add_app(bob)
    return bob


def test_a_co_owner_with_2fa_vouches_on_their_page(user, staff, co_owner, make_client):
    recovery, proof = asked(user, staff, ProofKind.CO_OWNER)
    browser = sign_in(make_client(), co_owner)
    url = f"/recovery/proof/vouch/{proof.pk}/"
    page = browser.get(url).content.decode()
    assert "Vouch for alice?" in page and "new@example.net" in page  # who asks
    response = browser.post(url, follow=True)
    assert "tick the box" in response.content.decode()  # not without checking with them
    assert status_of(proof) == Status.PENDING
    response = browser.post(url, {"checked": "yes"}, follow=True)
    assert "You vouched for alice" in response.content.decode()
    proof.refresh_from_db()
    recovery.refresh_from_db()
    assert proof.status == Status.SATISFIED and proof.evidence["vouched_by"] == "bob"
    assert proof.evidence["vouched_by_id"] == co_owner.pk
    assert proof.evidence["projects"] == ["shared"]
    assert recovery.state == State.AWAITING_APPROVAL
    assert SecurityEvent.objects.filter(user=co_owner, kind=EventKind.RECOVERY_PROOF_CHECKED,
                                        details__vouched_for="alice").exists()


@pytest.mark.parametrize("who", ["maintainer", "stranger", "the account"])
def test_only_a_co_owner_sees_the_vouch_page(user, staff, make_user, make_client, who):
    _, proof = asked(user, staff, ProofKind.CO_OWNER)
    carol = user if who == "the account" else make_user(username="carol")
    if who == "maintainer":
        Role.objects.create(project=make_project(user, "shared"), user=carol,
                            kind=Role.Kind.MAINTAINER)
    browser = sign_in(make_client(), carol)
    url = f"/recovery/proof/vouch/{proof.pk}/"
    assert browser.get(url).status_code == 404
    assert browser.post(url).status_code == 404
    assert status_of(proof) == Status.PENDING


def test_a_co_owner_without_2fa_cannot_vouch(user, staff, co_owner, make_client):
    co_owner.totp_device.delete()
    _, proof = asked(user, staff, ProofKind.CO_OWNER)
    browser = sign_in(make_client(), co_owner)
    response = browser.post(f"/recovery/proof/vouch/{proof.pk}/", {"checked": "yes"},
                            follow=True)
    assert "bob has no two-step sign-in" in response.content.decode()
    assert status_of(proof) == Status.PENDING


def test_the_vouch_page_needs_a_signed_in_co_owner(user, staff, co_owner, client):
    _, proof = asked(user, staff, ProofKind.CO_OWNER)
    response = client.post(f"/recovery/proof/vouch/{proof.pk}/")
    assert response.status_code == 302 and "/login" in response["Location"]
    assert status_of(proof) == Status.PENDING


# --- weak evidence ------------------------------------------------------------------------

def test_weak_evidence_lists_matching_metadata_and_projects_but_never_counts(user, staff):
    make_project(user, "sandwich", author_email="Alice <NEW@example.net>")
    make_project(user, "other", author_email="someone@example.org")
    recovery = make_request(user, state=State.AWAITING_PROOF)
    lines = services.weak_evidence(recovery)
    assert any("sandwich 1.0 (uploaded by this account) names the contact address" in line
               for line in lines)
    assert not any("other 1.0 names" in line for line in lines)
    assert sum(line.startswith("Project ") for line in lines) == 2
    services.after_proof(recovery=recovery)
    recovery.refresh_from_db()
    assert recovery.state == State.AWAITING_PROOF
    assert services.weak_evidence(make_request(None)) == []


# --- the proof page -----------------------------------------------------------------------

def test_the_page_takes_the_password_and_says_what_happened(client, user, staff):
    _, proof = asked(user, staff, ProofKind.PASSWORD)
    url = page(proof)
    assert "current password" in client.get(url).content.decode()
    response = client.post(url, {"password": "wrong"}, follow=True)
    assert "4 attempts left" in response.content.decode()
    response = client.post(url, {"password": PASSWORD}, follow=True)
    assert "Proof accepted" in response.content.decode()
    assert status_of(proof) == Status.SATISFIED


def test_the_page_mails_a_code_to_a_masked_address_and_takes_it(client, user, staff, mail):
    _, proof = asked(user, staff, ProofKind.ACCOUNT_EMAIL)
    url = page(proof)
    body = client.get(url).content.decode()
    assert "a***@example.org" in body and "alice@example.org" not in body
    email_id = user.emails.get().pk
    client.post(url, {"step": "send", "address": str(email_id)})
    code = code_in(mail, "alice@example.org")
    response = client.post(url, {"step": "code", "code": code}, follow=True)
    assert "Proof accepted" in response.content.decode()


@pytest.mark.parametrize("data", [
    {}, {"password": ""}, {"password": "x" * 5000}, {"token": "y"}, {"step": "send"},
    {"step": "send", "address": "999999"}, {"step": "send", "address": "nan"},
    {"step": "code", "code": "12"}, {"code": "x" * 500},
])
@pytest.mark.parametrize("kind", [ProofKind.PASSWORD, ProofKind.API_TOKEN,
                                  ProofKind.ACCOUNT_EMAIL, ProofKind.CO_OWNER])
def test_bad_input_is_refused_plainly(client, user, staff, kind, data):
    _, proof = asked(user, staff, kind)
    response = client.post(page(proof), data, follow=True)
    assert response.status_code == 200
    assert status_of(proof) == Status.PENDING


def test_one_requests_link_opens_no_other_proof(client, user, staff, make_user):
    _, proof = asked(user, staff, ProofKind.PASSWORD)
    other = make_request(make_user(username="bob"), state=State.AWAITING_PROOF)
    assert client.get(page(proof)).status_code == 200
    forged = [
        f"/recovery/proof/{proof.pk}/{other.public_id}/{status_token(other)}/",
        f"/recovery/proof/{proof.pk}/{proof.request.public_id}/{'0' * 64}/",
        f"/recovery/proof/{proof.pk}/{proof.request.public_id}/{'a' * 500}/",
        f"/recovery/proof/{proof.pk + 99}/{proof.request.public_id}/x/",
    ]
    for url in forged:
        assert client.get(url).status_code == 404
        assert client.post(url, {"password": PASSWORD}).status_code == 404
    assert status_of(proof) == Status.PENDING


def test_a_post_without_the_csrf_token_changes_nothing(user, staff):
    """ASVS 3.5.1: CSRF on every form."""
    _, proof = asked(user, staff, ProofKind.PASSWORD)
    response = Client(enforce_csrf_checks=True).post(page(proof), {"password": PASSWORD})
    assert response.status_code == 403
    assert status_of(proof) == Status.PENDING
