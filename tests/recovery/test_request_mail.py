"""The mail one recovery request sends, and to whom (issue 19; DESIGN §5; NIST N8, N9, N11).

One 4-minute honest recovery used to send two dozen mails, one per proof asked, per proof
checked and per move, to the requester and to every address of the account, each ending
"someone may have your password". Counted on the honest paths of test_honest_paths.py, through
the loopback SMTP server:

    from the contact code to the reset link                 before  now
    lost phone, password + mailbox, completes by itself:    19      9
    lost mailbox, app + password, two staff approvals:      20      9

What is left is what changes someone's next step: the account's addresses hear of the filing,
of each wait with its end and of the completion, each with "this wasn't me"; the requester of
the proofs asked (one mail for the batch) and of what they did not watch happen on their page,
each mail with the status link.
"""

import re
from datetime import timedelta
from typing import Any

import pytest
from django.template.loader import render_to_string
from django.test import TestCase
from django.utils import timezone

from relatch.accounts.models import Email
from relatch.notify.models import OutgoingEmail
from relatch.recovery.models import ProofKind, State
from relatch.recovery.requester.links import status_token
from relatch.recovery.workflow import Actor, move
from tests.conftest import PASSWORD, run_pending_tasks
from tests.mfa.signin_flow import app_code, enrol_app
from tests.recovery.proof_rows import asked, committed
from tests.recovery.requests import age_password, make_request
from tests.recovery.test_honest_paths import (
    PASSWORD_AGE,
    PROOF_CODE,
    answer,
    approve_and_complete,
    asked_proofs,
    completed_by_the_pass,
    file_request,
    found,
    long_enrolled,
    staff_member,
)

pytestmark = pytest.mark.django_db
PASSWORD_FOOTER = "someone may have your password"
NOT_ME_FOOTER = 'If you did not ask for this, press "This wasn\'t me"'
STATUS_LINK = re.compile(r"/recovery/request/status/[^/\s]+/[0-9a-f]{64}/")


def sent(mail: Any) -> list[tuple[str, str]]:
    """Each delivered mail as (to, subject), the request id taken out of the subject."""
    return [(str(m["To"]), re.sub(r"recovery [\w-]{16}:", "recovery:", str(m["Subject"])))
            for m in mail.messages]


# -- the honest paths, counted ---------------------------------------------------------------


@pytest.mark.slow
def test_a_recovery_that_completes_by_itself_sends_nine_mails(
    make_user: Any, make_client: Any, mail: Any, caplog: Any
) -> None:
    """Lost phone; password and mailbox left; no project: 19 mails before issue 19, 9 now.
    Four go to the account's address (the filing, each wait, the completion) besides the
    code it was asked for; four to the requester, who did everything else on their page."""
    alice = make_user(username="alice", email="alice@example.org")
    enrol_app(alice)
    long_enrolled(alice)
    age_password(alice, by=PASSWORD_AGE)
    requester = make_client()
    recovery, status_path = file_request(
        requester, mail, username="alice", contact="alice.new@example.net",
        still_has=["password", "email"], description="My phone was stolen.")
    proofs = asked_proofs(requester, status_path)
    answer(requester, proofs[ProofKind.PASSWORD], {"password": PASSWORD})
    address = Email.objects.get(address="alice@example.org")
    answer(requester, proofs[ProofKind.ACCOUNT_EMAIL], {"step": "send", "address": str(address.pk)})
    code = found(PROOF_CODE, mail.text(mail.last("alice@example.org")))
    answer(requester, proofs[ProofKind.ACCOUNT_EMAIL], {"step": "code", "code": code})
    completed_by_the_pass(recovery)

    contact, owner = "alice.new@example.net", "alice@example.org"
    assert sent(mail) == [
        (contact, "Your Relatch recovery request code"),
        (contact, f"Your Relatch recovery request {recovery.public_id} is filed"),
        (owner, "Someone asked to recover your Relatch account alice"),
        (contact, "Account recovery: 2 proofs are needed"),  # one mail for the batch
        (owner, "Account recovery: in the waiting period"),  # the 7-day wait, its end
        (owner, "Your Relatch account recovery code"),  # the mailbox proof itself
        (owner, "Account recovery: in the waiting period"),  # shortened: completes by itself
        (owner, "Account recovery: completed"),
        (contact, "Your Relatch account is back: set a new password"),
    ]
    assert_each_mail_fits(mail, contact=contact, owner=owner)
    assert_status_token_kept_out(recovery, caplog)


@pytest.mark.slow
def test_a_recovery_two_staff_approve_sends_nine_mails(
    make_user: Any, make_client: Any, mail: Any
) -> None:
    """Lost mailbox; app and password left; owns a project: 20 mails before, 9 now (the two
    approvals are staff's notices, the owner's last chance to object, kept as they were)."""
    from tests.index.project_rows import make_project

    oscar = make_user(username="oscar", email="oscar@old-isp.example")
    secret = enrol_app(oscar)
    long_enrolled(oscar)
    age_password(oscar, by=PASSWORD_AGE)
    make_project("toaster", owners=(oscar,))
    requester = make_client()
    recovery, status_path = file_request(
        requester, mail, username="oscar", contact="oscar@new-isp.example",
        still_has=["password", "totp"], description="My ISP closed my mailbox.")
    proofs = asked_proofs(requester, status_path)
    answer(requester, proofs[ProofKind.TOTP], {"code": app_code(oscar, secret)})
    answer(requester, proofs[ProofKind.PASSWORD], {"password": PASSWORD})
    approve_and_complete(recovery, staff_member(make_user, make_client, "dana"),
                         staff_member(make_user, make_client, "eve"))

    contact, owner = "oscar@new-isp.example", "oscar@old-isp.example"
    assert sent(mail) == [
        (contact, "Your Relatch recovery request code"),
        (contact, f"Your Relatch recovery request {recovery.public_id} is filed"),
        (owner, "Someone asked to recover your Relatch account oscar"),
        (contact, "Account recovery: 2 proofs are needed"),
        (owner, "Account recovery: in the waiting period"),
        (owner, "Account recovery: approved by staff"),
        (owner, "Account recovery: approved by staff"),
        (owner, "Account recovery: completed"),
        (contact, "Your Relatch account is back: set a new password"),
    ]
    assert_each_mail_fits(mail, contact=contact, owner=owner)


def assert_each_mail_fits(mail: Any, *, contact: str, owner: str) -> None:
    """Every mail to the contact address after filing carries the status link and says
    nothing about passwords; every notice to the account says "This wasn't me"."""
    for message in mail.to(contact)[1:]:  # the code mail comes before any status page
        text = mail.text(message)
        assert STATUS_LINK.search(text), text
        assert PASSWORD_FOOTER not in text and PASSWORD_FOOTER not in mail.html(message)
    for message in mail.to(owner):
        text = mail.text(message)
        assert PASSWORD_FOOTER not in text, text
        assert "This wasn't me" in text, text
        assert not STATUS_LINK.search(text)  # the requester's secret is theirs alone


def assert_status_token_kept_out(recovery: Any, caplog: Any) -> None:
    """ASVS 16.2.5 / DESIGN §7: the token is made at delivery, never stored or logged."""
    token = status_token(recovery)
    for row in OutgoingEmail.objects.all():
        assert token not in f"{row.context} {row.link_args} {row.link_builder} {row.last_error}"
    assert token not in caplog.text


# -- who hears of which move -----------------------------------------------------------------


@pytest.mark.parametrize(("start", "to", "actor", "owner_hears", "requester_hears"), [
    (State.AWAITING_PROOF, State.IN_WAITING_PERIOD, Actor.STAFF, True, True),
    (State.AWAITING_APPROVAL, State.COMPLETED, Actor.STAFF, True, False),  # reset mail says it
    (State.SUBMITTED, State.AWAITING_PROOF, Actor.STAFF, False, False),  # the proof mail says it
    (State.IN_WAITING_PERIOD, State.AWAITING_APPROVAL, Actor.SYSTEM, False, True),
    (State.IN_WAITING_PERIOD, State.AWAITING_PROOF, Actor.SYSTEM, False, True),
    (State.AWAITING_PROOF, State.DENIED, Actor.STAFF, False, True),
    (State.AWAITING_PROOF, State.ON_HOLD, Actor.OWNER, False, True),
    (State.AWAITING_PROOF, State.CANCELLED, Actor.REQUESTER, False, True),  # a leaked link
    (State.CLOSED_NO_RESPONSE, State.AWAITING_PROOF, Actor.REQUESTER, False, False),
    (State.AWAITING_PROOF, State.CLOSED_NO_RESPONSE, Actor.SYSTEM, False, False),
])
def test_a_move_mails_only_those_it_gives_something_to_do(
    user: Any, staff: Any, mail: Any, start: State, to: State, actor: Actor,
    owner_hears: bool, requester_hears: bool
) -> None:
    """NIST N8/N11: the owner hears of a wait (with its end) and of the completion, with
    "this wasn't me"; the requester of what they did not do on their own page."""
    user.emails.create(address="alice@work.example", verified=True, verified_at=timezone.now())
    recovery = make_request(user, contact="claimant@example.net", state=start)
    who = {"staff": staff} if actor == Actor.STAFF else {}
    committed(move, recovery=recovery, to=to, actor=actor, reason="r",
              wait_ends_at=timezone.now() + timedelta(days=7), **who)
    for address in ("alice@example.org", "alice@work.example"):
        told = mail.to(address)
        assert len(told) == (1 if owner_hears else 0)
        if told:
            assert f"/recovery/request/not-me/{recovery.public_id}/" in mail.text(told[0])
    to_requester = mail.to("claimant@example.net")
    assert len(to_requester) == (1 if requester_hears else 0)
    if to_requester:
        text = mail.text(to_requester[0])
        assert STATUS_LINK.search(text) and "not-me" not in text
        assert PASSWORD_FOOTER not in text


def test_an_owner_recovering_with_their_own_address_gets_one_mail_with_both_links(
    user: Any, staff: Any, mail: Any
) -> None:
    """The contact address is still verified on the account: one mail, not two, with the
    owner's "this wasn't me" and the requester's status link; the other address gets no
    status link (the link opens the request)."""
    user.emails.create(address="alice@work.example", verified=True, verified_at=timezone.now())
    recovery = make_request(user, contact="alice@example.org", state=State.AWAITING_PROOF)
    committed(move, recovery=recovery, to=State.IN_WAITING_PERIOD, actor=Actor.STAFF,
              staff=staff, wait_ends_at=timezone.now() + timedelta(days=7))
    [own] = mail.to("alice@example.org")
    assert STATUS_LINK.search(mail.text(own)) and "/recovery/request/not-me/" in mail.text(own)
    [other] = mail.to("alice@work.example")
    assert not STATUS_LINK.search(mail.text(other))


def test_a_failed_proof_tells_the_owner_and_not_the_requester_who_watched_it_fail(
    user: Any, staff: Any, mail: Any
) -> None:
    """ASVS 6.3.5: someone failing a proof is a suspicious attempt; the owner can act on it.
    The requester failed it on their own page and reads it there."""
    from relatch.recovery.proofs import services

    recovery, proof = asked(user, staff, ProofKind.PASSWORD)
    mail.clear()
    for _ in range(5):
        committed(services.submit_password, proof=proof, password="wrong")
    [notice] = mail.to("alice@example.org")
    assert "failed a proof" in mail.text(notice) and NOT_ME_FOOTER in mail.text(notice)
    assert f"/recovery/request/not-me/{recovery.public_id}/" in mail.text(notice)
    assert mail.to(recovery.contact_email) == []


def test_proofs_asked_together_are_one_mail_and_asked_by_staff_one_each(
    user: Any, staff: Any, mail: Any
) -> None:
    from relatch.recovery.proofs.automatic import request_matching_proofs
    from relatch.recovery.proofs.services import request_proof
    from tests.mfa.factor_rows import add_app

    add_app(user)
    recovery = make_request(user, still_has=["password", "totp", "email"])
    asked_now = committed(request_matching_proofs, recovery=recovery)
    assert len(asked_now) == 3
    [batch] = mail.to(recovery.contact_email)
    assert str(batch["Subject"]).endswith("3 proofs are needed")
    text = mail.text(batch)
    for label in ("The account's password", "A code from the account's authenticator app",
                  "A code sent to an address of the account"):
        assert f"- {label}" in text
    assert STATUS_LINK.search(text)
    committed(request_proof, recovery=recovery, kind=ProofKind.API_TOKEN, staff=staff)
    assert str(mail.last(recovery.contact_email)["Subject"]).endswith("a proof is needed")
    assert "The staff reviewing" in mail.text(mail.last(recovery.contact_email))
    assert mail.to("alice@example.org") == []  # nothing there for the owner to act on


# -- the footer says what fits the mail ------------------------------------------------------


OWNER_MAILS = ["recovery_request_notice", "recovery_state_changed", "recovery_proof_result",
               "recovery_desk_approved"]
REQUESTER_MAILS = ["recovery_request_filed", "recovery_request_update",
                   "recovery_proof_requested", "recovery_reminder_request",
                   "recovery_reminder_closed", "recovery_reset_link", "recovery_desk_message",
                   "recovery_request_code"]
LINKS = {"status": "https://x.example/recovery/request/status/id/" + "a" * 64 + "/",
         "not_me": "https://x.example/recovery/request/not-me/id/" + "b" * 64 + "/",
         "reset": "https://x.example/account/reset/MQ/token/"}


@pytest.mark.parametrize("template", OWNER_MAILS)
@pytest.mark.parametrize("ext", ["txt", "html"])
def test_a_notice_to_the_account_ends_with_this_wasnt_me(template: str, ext: str) -> None:
    # As tell_account sends them: no status link to an address that is not the requester's.
    owner_links = {"not_me": LINKS["not_me"]}
    link = owner_links if template in ("recovery_state_changed", "recovery_proof_result") else \
        LINKS["not_me"]
    text = render_to_string(f"notify/mail/{template}.{ext}", {
        "link": link, "security_notice": True, "username": "alice", "request_id": "r1",
        "to": "alice@example.org", "to_state": "In the waiting period"})
    assert "This wasn't me" in text and LINKS["not_me"] in text
    assert PASSWORD_FOOTER not in text
    assert LINKS["status"] not in text  # only the requester's own address gets it


@pytest.mark.parametrize("template", REQUESTER_MAILS)
@pytest.mark.parametrize("ext", ["txt", "html"])
def test_a_mail_to_the_requester_says_nothing_about_passwords(template: str, ext: str) -> None:
    dict_links = template not in ("recovery_request_filed", "recovery_desk_message",
                                  "recovery_request_code")
    text = render_to_string(f"notify/mail/{template}.{ext}", {
        "link": LINKS if dict_links else LINKS["status"], "security_notice": True,
        "request_id": "r1", "to": "new@example.net", "kinds": ["The account's password"],
        "state": "awaiting_proof", "to_state": "Waiting for proof"})
    assert PASSWORD_FOOTER not in text and "This wasn't me" not in text
    assert "contact address of a Relatch account recovery request" in text
    if template != "recovery_request_code":  # sent before the request has a status page
        assert LINKS["status"] in text


def test_other_security_notices_keep_the_password_footer(user: Any, mail: Any) -> None:
    from relatch.accounts.notices import announce_to_account

    with TestCase.captureOnCommitCallbacks(execute=True):
        announce_to_account(user=user, template="password_changed")
    run_pending_tasks()
    assert PASSWORD_FOOTER in mail.text(mail.last("alice@example.org"))

