""""I can't use any of these" on the second step of a sign-in (issue 19): a recovery request
that already counts the password and mails the account a code, reachable only by a browser
whose password was just right. Mail arrives over the real loopback SMTP server; the policy
(DESIGN §5) judges what the request rests on."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from relatch.audit.models import EventKind, SecurityEvent
from relatch.audit.services import record_event
from relatch.recovery.models import ProofKind, RecoveryProof, RecoveryRequest, State
from relatch.recovery.policy import missing_proof, verdict
from relatch.recovery.requester import links, services
from relatch.recovery.requester.signin_requests import AT_SIGNIN
from relatch.recovery.sources import Source, independent_sources
from tests.mfa.signin_flow import SECOND_STEP, enrol_app, page_text, password_step
from tests.recovery.requests import age_password

pytestmark = pytest.mark.django_db

FROM = "/recovery/request/from-sign-in/"
CONFIRM = "/recovery/request/confirm/"
CONTACT_CODE = re.compile(r"Your code: (\d{6})")
PROOF_CODE = re.compile(r"The code is:\s+(\d{6})")
STRANGER = "me@new.example"
Status = RecoveryProof.Status


@pytest.fixture
def alice(user):
    """Alice: an authenticator app (so a second step), a password she set long ago (so it
    counts as knowledge), a second verified address and an unverified one."""
    enrol_app(user)
    age_password(user)
    user.emails.create(address="alice@work.example", verified=True,
                       verified_at=timezone.now() - timedelta(days=90))
    user.emails.create(address="alice@old.example", verified=False)
    user.emails.filter(address="alice@example.org").update(
        verified_at=timezone.now() - timedelta(days=90))
    return user


def at_second_step(browser):
    response = password_step(browser)
    assert response.status_code == 302 and response["Location"] == SECOND_STEP
    return browser


def answers(**overrides):
    data = {"contact": "other", "other_address": STRANGER, "agreed": "on", "acknowledged": "on",
            "description": "My phone broke and the recovery codes were on it."}
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def primary(user):
    return user.emails.get(address="alice@example.org")


def code_in(mail, address, pattern=CONTACT_CODE):
    found = [pattern.search(mail.text(m)) for m in mail.to(address)]
    codes = [match.group(1) for match in found if match]
    assert codes, [mail.text(m) for m in mail.to(address)]
    return codes[-1]


def proofs(recovery):
    return {proof.kind: proof for proof in recovery.proofs.all()}


# Who may reach it -----------------------------------------------------------------------

@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("before", ["nothing", "wrong password", "request made already"])
def test_without_a_live_partial_sign_in_nothing_is_made(client, alice, mail, method, before):
    if before == "wrong password":
        assert password_step(client, password="not the password").status_code == 200
    if before == "request made already":
        at_second_step(client).post(FROM, answers())  # ends the partial sign-in
    made, sent = RecoveryRequest.objects.count(), len(mail.messages)
    response = getattr(client, method)(FROM, answers() if method == "post" else None)
    assert response.status_code == 403
    assert "Sign in with your password first" in page_text(response)
    assert "Nothing was made or sent." in page_text(response)
    assert RecoveryRequest.objects.count() == made and len(mail.messages) == sent


def test_the_second_step_offers_it_and_the_page_shows_addresses_masked(client, alice):
    """A stolen password must not reveal the account's addresses (ASVS 6.3.8)."""
    step = page_text(at_second_step(client).get(SECOND_STEP))
    assert "I can't use any of these" in step and f'href="{FROM}"' in step
    response = client.get(FROM)
    page = page_text(response)
    assert response.status_code == 200 and "<h1>Ask for recovery from here</h1>" in page
    assert "a***@example.org" in page and "a***@work.example" in page
    assert "alice@example.org" not in page and "alice@work.example" not in page
    assert "old.example" not in page  # unverified: no code may go there
    assert '<a href="/conduct/">code of conduct</a>' in page


@pytest.mark.parametrize(("overrides", "message"), [
    ({"agreed": None}, "Agree to the code of conduct"),
    ({"acknowledged": None}, "Acknowledge that review takes time"),
    ({"description": ""}, "Tell us briefly what happened."),
    ({"contact": None}, "Choose where we can reach you."),
    ({"other_address": ""}, "Type the address, or choose one of the account"),
    ({"other_address": "not-an-address"}, "Enter a valid email address."),
    ({"contact": "999999"}, "Select a valid choice"),
    ({"still_has": ["password"]}, "Select a valid choice"),
])
def test_bad_answers_are_refused_and_change_nothing(client, alice, mail, overrides, message):
    at_second_step(client)
    response = client.post(FROM, answers(**overrides))
    assert response.status_code == 400
    assert message in page_text(response)
    assert not RecoveryRequest.objects.exists() and not mail.messages


def test_it_is_limited_like_other_filings(client, alice, mail):
    """NIST N11: the contact address's limit holds here too."""
    for _ in range(services.CONTACT_LIMIT_COUNT):
        assert at_second_step(client).post(FROM, answers()).status_code == 302
    response = at_second_step(client).post(FROM, answers())
    assert response.status_code == 429
    assert "Too many recovery requests" in page_text(response)
    assert RecoveryRequest.objects.count() == services.CONTACT_LIMIT_COUNT


# Another contact address: the password counts, the account is mailed a code --------------

def test_the_request_counts_the_password_and_mails_the_account_a_code(client, alice, mail):
    response = at_second_step(client).post(FROM, answers(still_has=["api_token"]))
    assert response.status_code == 302 and response["Location"] == CONFIRM
    recovery = RecoveryRequest.objects.get()
    assert recovery.user == alice and recovery.contact_email == STRANGER
    assert recovery.username_claimed == "alice" and recovery.still_has == ["api_token"]
    password = proofs(recovery)[ProofKind.PASSWORD]
    assert password.status == Status.SATISFIED and AT_SIGNIN in password.evidence
    # Unfiled: nobody but the contact address hears of it yet.
    assert [str(m["To"]) for m in mail.messages] == [STRANGER]
    # The partial sign-in is over: the second step sends back to the password.
    assert client.get(SECOND_STEP)["Location"].startswith("/account/login/")

    response = client.post(CONFIRM, {"code": code_in(mail, STRANGER)})
    assert response["Location"] == "/recovery/request/filed/"
    recovery.refresh_from_db()
    mailbox = proofs(recovery)[ProofKind.ACCOUNT_EMAIL]
    assert mailbox.status == Status.PENDING and mailbox.evidence["sent_to"] == "a***@example.org"
    assert code_in(mail, "alice@example.org", PROOF_CODE)  # the account's code arrived
    kinds = set(SecurityEvent.objects.filter(user=alice).values_list("kind", flat=True))
    assert {EventKind.RECOVERY_REQUESTED, EventKind.RECOVERY_PROOF_CHECKED,
            EventKind.RECOVERY_PROOF_REQUESTED} <= kinds
    assert ProofKind.API_TOKEN not in proofs(recovery)  # alice has no token: nobody could answer


def test_with_only_the_password_the_request_stays_one_source_and_cannot_complete(
        client, alice, mail):
    """An attacker who stole the password but not the mailbox: one source, on an account with
    two-step sign-in, so no completion on it (DESIGN §5); the owner is told."""
    at_second_step(client).post(FROM, answers())
    client.post(CONFIRM, {"code": code_in(mail, STRANGER)})
    recovery = RecoveryRequest.objects.get()
    sources = independent_sources(recovery)
    assert [item.source for item in sources] == [Source.KNOWLEDGE]
    assert not verdict(recovery).may_complete
    assert missing_proof(recovery)  # a second source, or the end of the waiting period
    assert recovery.state == State.IN_WAITING_PERIOD and not recovery.completes_automatically
    assert mail.to("alice@example.org") and mail.to("alice@work.example")


def test_the_owner_enters_the_account_code_for_a_second_source(client, alice, mail):
    at_second_step(client).post(FROM, answers())
    client.post(CONFIRM, {"code": code_in(mail, STRANGER)})
    recovery = RecoveryRequest.objects.get()
    mailbox = proofs(recovery)[ProofKind.ACCOUNT_EMAIL]
    page = f"/recovery/proof/{mailbox.pk}/{recovery.public_id}/{links.status_token(recovery)}/"
    client.post(page, {"code": code_in(mail, "alice@example.org", PROOF_CODE)})
    recovery.refresh_from_db()
    assert {item.source for item in independent_sources(recovery)} == {Source.KNOWLEDGE,
                                                                        Source.MAILBOX}
    assert not missing_proof(recovery)


# An address of the account as the contact: one code, one mailbox, one proof --------------

def test_the_contact_code_to_an_account_address_is_also_the_mailbox_proof(client, alice, mail):
    at_second_step(client).post(FROM, answers(contact=str(primary(alice).pk)))
    assert len(mail.to("alice@example.org")) == 1  # one code, no second mail
    page = page_text(client.get(CONFIRM))
    assert "also proves you read its mail" in page
    client.post(CONFIRM, {"code": code_in(mail, "alice@example.org")})
    recovery = RecoveryRequest.objects.get()
    assert recovery.contact_email == "alice@example.org"
    assert {kind: proof.status for kind, proof in proofs(recovery).items()} == {
        ProofKind.PASSWORD: Status.SATISFIED, ProofKind.ACCOUNT_EMAIL: Status.SATISFIED}
    assert not any(PROOF_CODE.search(mail.text(m)) for m in mail.messages)
    assert {item.source for item in independent_sources(recovery)} == {Source.KNOWLEDGE,
                                                                        Source.MAILBOX}
    # Two sources on an account without projects: the announced wait, then completion.
    assert recovery.state == State.IN_WAITING_PERIOD and recovery.completes_automatically


def test_a_password_reset_by_mail_and_the_mailbox_are_one_source(client, alice, mail):
    """The password was set through a mailed link: it shows the mailbox again, not knowledge
    (relatch.recovery.sources), so the one code adds no second source."""
    record_event(user=alice, kind=EventKind.PASSWORD_RESET)
    at_second_step(client).post(FROM, answers(contact=str(primary(alice).pk)))
    client.post(CONFIRM, {"code": code_in(mail, "alice@example.org")})
    recovery = RecoveryRequest.objects.get()
    assert [item.source for item in independent_sources(recovery)] == [Source.MAILBOX]
    assert missing_proof(recovery) and not verdict(recovery).may_complete


@pytest.mark.parametrize("how", ["new code", "too late"])
def test_only_the_first_code_in_time_counts_as_the_mailbox(client, alice, mail, how):
    """A new code ends the shortcut (guesses must not add up over codes); so does the proof
    code's lifetime. The request is still filed, and the account gets a code of its own."""
    at_second_step(client).post(FROM, answers(contact=str(primary(alice).pk)))
    if how == "new code":
        client.post(CONFIRM, {"new_code": "1"})
        assert "also proves you read its mail" not in page_text(client.get(CONFIRM))
    else:
        RecoveryProof.objects.filter(kind=ProofKind.ACCOUNT_EMAIL).update(
            expires_at=timezone.now() - timedelta(seconds=1))
    client.post(CONFIRM, {"code": code_in(mail, "alice@example.org")})
    recovery = RecoveryRequest.objects.get()
    assert recovery.contact_confirmed_at is not None
    mailbox = proofs(recovery)[ProofKind.ACCOUNT_EMAIL]
    assert mailbox.status == Status.PENDING
    assert code_in(mail, "alice@example.org", PROOF_CODE)
    assert [item.source for item in independent_sources(recovery)] == [Source.KNOWLEDGE]
