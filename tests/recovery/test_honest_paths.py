"""The honest paths of account recovery (DESIGN §5), each a request that completes, through the
real pages.

Each test is a person who really owns the account and lost part of what signs them in. They
file a request at /recovery/request/new/ with a new contact address (confirmed with a mailed
code, NIST N3), say what they still have, answer the proofs that were asked for
automatically on the proof pages their status page links to, and get the account back: through
the announced 24-hour wait with no staff at all (an account that owns no project and gave two
independent sources), or through two staff approvals (an account that owns projects). They then
set a new password through the link mailed to the contact address and sign in.

What counts is the number of independent sources (``relatch.recovery.sources``), never the
number of proofs: DESIGN §5 "Proofs rest on sources; policy counts independent sources, never
proof kinds", after NIST SP 800-63B-4 §4.2 (account recovery, and notifying the subscriber
at every address of record when it happens).

Real parts throughout (DESIGN §8): HTTP through the Django test client whose requests commit
and then run the real task queue, mail through the loopback SMTP server, TOTP codes computed by
pyotp from the secret the enrolment service made, security keys answered by the spec-written
soft authenticator (tests/mfa/soft_authenticator.py, independent of py_webauthn), the branch
pushed with the real git CLI to a git daemon on loopback and checked by the worker's
``git ls-remote``. Only the clock is moved: rows are backdated (a password set 90 days ago, a
factor enrolled long ago) and waits are ended with ``tests.recovery.requests.end_wait``.
"""

import html
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import TestCase
from django.utils import timezone

from relatch.accounts.models import Email, User, UserSession
from relatch.audit.models import EventKind, SecurityEvent, StaffAction
from relatch.index.models import APIToken
from relatch.index.tokens.services import create_token
from relatch.mfa.models import RecoveryCodeSet, TotpDevice, WebAuthnCredential
from relatch.recovery import housekeeping
from relatch.recovery.models import (
    ProofKind,
    RecoveryProof,
    RecoveryRequest,
    RecoveryTransition,
    State,
)
from relatch.recovery.policy import verdict
from relatch.recovery.sources import Source
from tests.conftest import PASSWORD, run_pending_tasks, sign_in
from tests.index.project_rows import make_project as make_plain_project
from tests.mfa.factor_rows import add_app
from tests.mfa.signin_flow import app_code, enrol_app, options_on, register_key
from tests.recovery.proof_rows import make_project
from tests.recovery.requests import age_password, end_wait
from tests.recovery.test_repo_branch import run_git, served_repo

pytestmark = [pytest.mark.slow, pytest.mark.django_db]
repository = served_repo  # the real git daemon on loopback (tests/recovery/test_repo_branch.py)

LONG_AGO = timedelta(days=200)
PASSWORD_AGE = timedelta(days=90)  # set by the signed-in owner long before: knowledge
NEW_PASSWORD = "a fresh passphrase chosen after recovery"
AUTO_WAIT = timedelta(hours=24)
CONTACT_CODE = re.compile(r"Your code: (\d{6})")
PROOF_CODE = re.compile(r"The code is:\s+(\d{6})")
PROOF_SECTION = re.compile(r'<section class="notice" aria-label="([^"]+)">(.*?)</section>', re.S)
PROOF_LINK = re.compile(r'<a href="(/recovery/proof/[^"]+)">Complete this proof</a>')
BRANCH_ON_PAGE = re.compile(r'<code class="token">(relatch-recovery-[^<]+)</code>')
VOUCH_URL = re.compile(r"<code>http://testserver(/recovery/proof/vouch/\d+/)</code>")
KIND_BY_LABEL = {str(kind.label): kind for kind in ProofKind}


# -- shared steps --------------------------------------------------------------------------


def text_of(response: Any) -> str:
    return html.unescape(response.content.decode())


def visible(page: str) -> str:
    """What a reader sees of a page: its text without tags, spaces folded."""
    return flat(re.sub(r"<[^>]+>", "", page))


def flat(text: str) -> str:
    """Mail text with its line breaks folded, to read a sentence whatever its wrapping."""
    return " ".join(text.split())


def found(pattern: re.Pattern[str], text: str) -> str:
    match = pattern.search(text)
    assert match, f"{pattern.pattern!r} not in: {text[:3000]}"
    return match.group(1)


def long_enrolled(user: User) -> None:
    """The account's factors were enrolled long before any request (the factor services made
    them a moment ago; only the date moves)."""
    since = timezone.now() - LONG_AGO
    for model in (TotpDevice, WebAuthnCredential, RecoveryCodeSet):
        model.objects.filter(user=user).update(created_at=since)


def passes() -> housekeeping.PassReport:
    """One run of the background tick's pass, committed as the worker commits it."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        report = housekeeping.run_pass()
    run_pending_tasks()
    return report


def file_request(browser: Any, mail: Any, *, username: str, contact: str,
                 still_has: list[str], description: str) -> tuple[RecoveryRequest, str]:
    """Fill in the request form, enter the code mailed to ``contact``; the request and the
    path of the status page its "is filed" mail links to."""
    assert browser.get("/recovery/request/new/").status_code == 200
    response = browser.post("/recovery/request/new/", {
        "username": username, "contact_email": contact, "still_has": still_has,
        "description": description, "agreed": "on", "acknowledged": "on",
    })
    assert response.status_code == 302 and response["Location"] == "/recovery/request/confirm/"
    code = found(CONTACT_CODE, mail.text(mail.last(contact)))
    response = browser.post("/recovery/request/confirm/", {"code": code})
    assert response.status_code == 302 and response["Location"] == "/recovery/request/filed/"
    filed = next(m for m in mail.to(contact) if "is filed" in str(m["Subject"]))
    status_path = mail.link_to(filed, "/recovery/request/status/")
    recovery = RecoveryRequest.objects.get(username_claimed=username)
    assert recovery.contact_email == contact and recovery.contact_confirmed_at is not None
    return recovery, status_path


def asked_proofs(browser: Any, status_path: str) -> dict[ProofKind, str]:
    """The proofs the status page asks for, each with its "Complete this proof" link."""
    page = browser.get(status_path)
    assert page.status_code == 200
    return {KIND_BY_LABEL[label]: found(PROOF_LINK, section)
            for label, section in PROOF_SECTION.findall(text_of(page))}


def answer(browser: Any, proof_page: str, data: dict[str, str]) -> str:
    """Post an answer on a proof page as its form does; the page it returns to."""
    response = browser.post(proof_page, data)
    assert response.status_code == 302 and response["Location"] == proof_page
    page = browser.get(proof_page)
    assert page.status_code == 200
    return text_of(page)


def state_of(recovery: RecoveryRequest) -> str:
    recovery.refresh_from_db()
    return recovery.state


def sources_of(recovery: RecoveryRequest) -> set[Source | None]:
    return {judged.source for judged in verdict(recovery).sources}


def satisfied(recovery: RecoveryRequest) -> set[str]:
    return set(recovery.proofs.filter(status=RecoveryProof.Status.SATISFIED)
               .values_list("kind", flat=True))


def staff_member(make_user: Any, make_client: Any, username: str) -> Any:
    """A signed-in staff member with a second factor and a fresh re-authentication."""
    staff = make_user(username=username, is_staff=True)
    add_app(staff)
    return sign_in(make_client(), staff)


def approve_and_complete(recovery: RecoveryRequest, first: Any, second: Any) -> None:
    """Two different staff approve (an owner of projects needs two); the first completes."""
    desk = f"/desk/{recovery.public_id}/"
    assert first.post(desk + "approve/").status_code == 302
    refused = first.post(desk + "complete/")
    assert refused.status_code == 409 and "2 staff approvals (1 so far)" in text_of(refused)
    assert second.post(desk + "approve/").status_code == 302
    response = first.post(desk + "complete/")
    assert response.status_code == 302, text_of(response)[:3000]


def assert_handed_over(user: User, recovery: RecoveryRequest, mail: Any, *, contact: str,
                       old_address: str) -> None:
    """DESIGN §5 "Completion": every factor, session and token gone; the contact address the
    verified primary; every other address unverified; the password disabled."""
    recovery.refresh_from_db()
    user.refresh_from_db()
    assert recovery.state == State.COMPLETED
    assert not TotpDevice.objects.filter(user=user).exists()
    assert not WebAuthnCredential.objects.filter(user=user).exists()
    assert not RecoveryCodeSet.objects.filter(user=user).exists()
    assert not UserSession.objects.filter(user=user).exists()
    assert not APIToken.objects.filter(user=user, revoked_at__isnull=True).exists()
    primary = Email.objects.get(user=user, primary=True)
    assert (primary.address, primary.verified) == (contact, True)
    old = Email.objects.get(user=user, address=old_address)
    assert (old.verified, old.primary) == (False, False)
    assert not user.has_usable_password()
    kinds = set(SecurityEvent.objects.filter(user=user).values_list("kind", flat=True))
    assert {EventKind.RECOVERY_REQUESTED, EventKind.RECOVERY_PROOF_REQUESTED,
            EventKind.RECOVERY_PROOF_CHECKED, EventKind.RECOVERY_STATE_CHANGED,
            EventKind.RECOVERY_COMPLETED} <= kinds, kinds
    checked = set(SecurityEvent.objects.filter(
        user=user, kind=EventKind.RECOVERY_PROOF_CHECKED, details__status="satisfied",
        details__request=recovery.public_id).values_list("details__kind", flat=True))
    assert checked == satisfied(recovery), checked
    # NIST SP 800-63B-4 §4.2: the address that was the account's heard of the completion
    # while still verified, with a one-click "this wasn't me".
    told = [m for m in mail.to(old_address)
            if str(m["Subject"]).endswith(f"{recovery.public_id}: completed")]
    assert len(told) == 1 and "If you did not ask to recover your account" in mail.text(told[0])
    assert mail.link_to(told[0], f"/recovery/request/not-me/{recovery.public_id}/")


def reset_and_sign_in(make_client: Any, mail: Any, *, contact: str, username: str) -> None:
    """The reset link mailed to the contact address sets a new password; the owner signs in
    with it at /account/login/ (no factor is left, so no second step)."""
    reset = next(m for m in mail.to(contact) if "set a new password" in str(m["Subject"]))
    browser = make_client()
    response = browser.get(mail.link_to(reset, "/account/reset/"))
    assert response.status_code == 302, response.status_code
    set_password = response["Location"]
    assert browser.get(set_password).status_code == 200
    response = browser.post(set_password, {"new_password1": NEW_PASSWORD,
                                           "new_password2": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/account/login/"
    response = browser.post("/account/login/", {"identifier": username, "password": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/account/"
    assert browser.get("/account/").status_code == 200


def auto_wait_notice(mail: Any, address: str) -> Any:
    """The mail to ``address`` announcing that the request completes by itself."""
    notices = [m for m in mail.to(address) if "completes by itself" in flat(mail.text(m))]
    assert len(notices) == 1, [str(m["Subject"]) for m in mail.to(address)]
    return notices[0]


def completed_by_the_pass(recovery: RecoveryRequest) -> None:
    """The announced wait runs out with no objection; the periodic pass completes the
    request by itself."""
    end_wait(recovery, length=AUTO_WAIT)
    report = passes()
    assert report.completed == [recovery.public_id] and not report.failures, report
    completion = recovery.transitions.get(to_state=State.COMPLETED)
    assert (completion.actor, completion.staff) == (RecoveryTransition.Actor.SYSTEM, None)


# -- 1. lost phone, still has the password and the mailbox -----------------------------------


def test_lost_phone_with_password_and_mailbox_completes_by_itself_after_the_announced_wait(
    make_user: Any, make_client: Any, mail: Any
) -> None:
    """DESIGN §5: an account owning no project that gives two independent sources (knowledge:
    a password the owner set 90 days ago; mailbox: a code to an address verified before the
    request) completes by itself after an announced 24-hour wait with no objection, without
    any staff. NIST SP 800-63B-4 §4.2: every address of the account is told first."""
    alice = make_user(username="alice", email="alice@example.org")
    enrol_app(alice)  # the phone she lost
    long_enrolled(alice)
    age_password(alice, by=PASSWORD_AGE)
    requester = make_client()
    recovery, status_path = file_request(
        requester, mail, username="alice", contact="alice.new@example.net",
        still_has=["password", "email"],
        description="My phone with the authenticator app was stolen. I still know my "
                    "password and read alice@example.org.")
    assert any("Someone asked to recover your Relatch account alice" in str(m["Subject"])
               for m in mail.to("alice@example.org"))

    # Asked without staff: what she said she still has, nothing else (no app code).
    proofs = asked_proofs(requester, status_path)
    assert set(proofs) == {ProofKind.PASSWORD, ProofKind.ACCOUNT_EMAIL}
    assert state_of(recovery) == State.AWAITING_PROOF
    assert set(recovery.proofs.values_list("requested_by", flat=True)) == {None}

    page = answer(requester, proofs[ProofKind.PASSWORD], {"password": PASSWORD})
    assert "Proof accepted. Thank you." in page and "This proof is satisfied" in visible(page)
    # One source on a 2FA account: the enforced waiting period, until a second one comes.
    assert state_of(recovery) == State.IN_WAITING_PERIOD
    assert not recovery.completes_automatically

    address = Email.objects.get(user=alice, address="alice@example.org")
    mail_page = requester.get(proofs[ProofKind.ACCOUNT_EMAIL])
    assert "a***@example.org" in text_of(mail_page)
    assert "alice@example.org" not in text_of(mail_page)  # masked: a stranger learns nothing
    page = answer(requester, proofs[ProofKind.ACCOUNT_EMAIL],
                  {"step": "send", "address": str(address.pk)})
    assert "A code is on its way" in page
    code = found(PROOF_CODE, mail.text(mail.last("alice@example.org")))
    page = answer(requester, proofs[ProofKind.ACCOUNT_EMAIL], {"step": "code", "code": code})
    assert "Proof accepted. Thank you." in page

    # Two independent sources on an account without projects: the announced 24-hour wait.
    recovery.refresh_from_db()
    assert recovery.state == State.IN_WAITING_PERIOD and recovery.completes_automatically
    assert sources_of(recovery) == {Source.KNOWLEDGE, Source.MAILBOX}
    assert timedelta(hours=23) < recovery.wait_ends_at - timezone.now() <= AUTO_WAIT
    notice = auto_wait_notice(mail, "alice@example.org")
    words = flat(mail.text(notice))
    assert "Unless someone says \"this wasn't me\" before" in words
    assert "completes by itself then, without staff" in words
    assert mail.link_to(notice, f"/recovery/request/not-me/{recovery.public_id}/")
    status = text_of(requester.get(status_path))
    assert "Unless someone objects, the request completes by itself" in status

    completed_by_the_pass(recovery)
    assert_handed_over(alice, recovery, mail, contact="alice.new@example.net",
                       old_address="alice@example.org")
    assert not StaffAction.objects.filter(subject=alice).exists()  # no staff at all
    assert not recovery.approvals.exists()
    assert "Your request was completed" in text_of(requester.get(status_path))
    old = make_client().post("/account/login/", {"identifier": "alice", "password": PASSWORD})
    assert old.status_code == 200 and "Username or password is wrong" in text_of(old)
    reset_and_sign_in(make_client, mail, contact="alice.new@example.net", username="alice")


# -- 2. lost mailbox, still has the password and the authenticator app ------------------------


def test_lost_mailbox_with_password_and_app_completes_after_two_staff_approvals(
    make_user: Any, make_client: Any, mail: Any
) -> None:
    """DESIGN §5: a factor (an app code, "the strongest evidence there is") and knowledge (the
    password set 90 days ago) are two independent sources; the account owns a project, so two
    different staff approve before one completes. The lost mailbox is unverified."""
    oscar = make_user(username="oscar", email="oscar@old-isp.example")
    secret = enrol_app(oscar)
    long_enrolled(oscar)
    age_password(oscar, by=PASSWORD_AGE)
    make_plain_project("toaster", owners=(oscar,))
    requester = make_client()
    recovery, status_path = file_request(
        requester, mail, username="oscar", contact="oscar@new-isp.example",
        still_has=["password", "totp"],
        description="My old ISP closed my mailbox. I have my password and my app.")
    proofs = asked_proofs(requester, status_path)
    assert set(proofs) == {ProofKind.TOTP, ProofKind.PASSWORD}

    # app_code: the code the app shows now (the step enrolment used is marked unused, so the
    # test need not wait 30 seconds for the next one).
    page = answer(requester, proofs[ProofKind.TOTP], {"code": app_code(oscar, secret)})
    assert "Proof accepted. Thank you." in page
    assert state_of(recovery) == State.IN_WAITING_PERIOD  # one source on a 2FA account
    page = answer(requester, proofs[ProofKind.PASSWORD], {"password": PASSWORD})
    assert "Proof accepted. Thank you." in page

    assert state_of(recovery) == State.AWAITING_APPROVAL
    assert not recovery.completes_automatically  # it owns a project: staff decide
    assert sources_of(recovery) == {Source.FACTOR, Source.KNOWLEDGE}
    assert verdict(recovery).approvals_needed == 2
    assert "Staff are deciding" in text_of(requester.get(status_path))
    dana = staff_member(make_user, make_client, "dana")
    eve = staff_member(make_user, make_client, "eve")
    desk = text_of(dana.get(f"/desk/{recovery.public_id}/"))
    assert "Independent sources so far: 2" in visible(desk)
    assert "2 staff approvals (0 so far)" in desk

    approve_and_complete(recovery, dana, eve)
    assert_handed_over(oscar, recovery, mail, contact="oscar@new-isp.example",
                       old_address="oscar@old-isp.example")
    actions = set(StaffAction.objects.filter(subject=oscar)
                  .values_list("staff__username", "action"))
    assert {("dana", "recovery:approve"), ("eve", "recovery:approve"),
            ("dana", "recovery:complete")} <= actions, actions
    reset_and_sign_in(make_client, mail, contact="oscar@new-isp.example", username="oscar")
    assert not Email.objects.get(address="oscar@old-isp.example").verified


# -- 3. a security key and an old API token ------------------------------------------------


def test_a_security_key_and_an_old_api_token_complete_without_password_or_mailbox(
    make_user: Any, make_client: Any, mail: Any
) -> None:
    """DESIGN §5: a security key enrolled before the request (factor) and an API token made
    before it (token) are two independent sources. The account owns no project, so the request
    completes by itself after the announced 24-hour wait; the old token is revoked by it."""
    carol = make_user(username="carol", email="carol@example.org")
    key = register_key(carol)  # through the security-key services
    _, old_token = create_token(request=None, user=carol, name="laptop", project=None,
                                expires_at=None)
    long_enrolled(carol)
    APIToken.objects.filter(user=carol).update(created_at=timezone.now() - LONG_AGO)
    requester = make_client()
    recovery, status_path = file_request(
        requester, mail, username="carol", contact="carol@elsewhere.example",
        still_has=["security_key", "api_token"],
        description="Forgot my password and lost my mailbox. I still have my key and a "
                    "token on my laptop.")
    proofs = asked_proofs(requester, status_path)
    assert set(proofs) == {ProofKind.SECURITY_KEY, ProofKind.API_TOKEN}

    # As webauthn.js does: read the options from the page, let the key sign, post its answer.
    key_page = requester.get(proofs[ProofKind.SECURITY_KEY])
    assert key_page.status_code == 200
    credential = key.authenticate(options_on(key_page))
    page = answer(requester, proofs[ProofKind.SECURITY_KEY], {"credential": credential})
    assert "Proof accepted. Thank you." in page
    assert state_of(recovery) == State.IN_WAITING_PERIOD
    page = answer(requester, proofs[ProofKind.API_TOKEN], {"token": old_token})
    assert "Proof accepted. Thank you." in page

    recovery.refresh_from_db()
    assert recovery.state == State.IN_WAITING_PERIOD and recovery.completes_automatically
    assert sources_of(recovery) == {Source.FACTOR, Source.TOKEN}
    assert satisfied(recovery) == {ProofKind.SECURITY_KEY, ProofKind.API_TOKEN}
    token_proof = recovery.proofs.get(kind=ProofKind.API_TOKEN)
    assert old_token not in str(token_proof.evidence)  # checked, never kept
    assert "without staff" in flat(mail.text(auto_wait_notice(mail, "carol@example.org")))

    completed_by_the_pass(recovery)
    assert_handed_over(carol, recovery, mail, contact="carol@elsewhere.example",
                       old_address="carol@example.org")
    assert not StaffAction.objects.filter(subject=carol).exists()
    assert APIToken.objects.get(user=carol).revoked_at is not None
    reset_and_sign_in(make_client, mail, contact="carol@elsewhere.example", username="carol")


# -- 4. a co-owner vouches, and the repository ---------------------------------------------


def test_a_co_owner_vouches_and_the_branch_is_pushed_then_two_staff_approve(
    repository: tuple[str, Path], make_user: Any, make_client: Any, mail: Any, settings: Any
) -> None:
    """DESIGN §5: a person (a co-owner for 60 days, with two-step sign-in, who saw who asks)
    and the repository (a branch in the repository alice's own upload declared 60 days before
    the request, checked by the worker with git ls-remote) are two independent sources. Alice
    owns a project: two staff approvals."""
    url, work = repository
    settings.REPOSITORY_HOSTS = ["127.0.0.1"]  # the loopback git daemon, named explicitly
    alice = make_user(username="alice", email="alice@example.org")
    enrol_app(alice)
    long_enrolled(alice)
    bob = make_user(username="bob", email="bob@example.org")
    enrol_app(bob)
    make_project(alice, "sandwich", urls={"Source": url})  # her release, 60 days ago
    make_project(bob, "sandwich")  # bob co-owns it since then
    requester = make_client()
    description = ("Lost my laptop, my phone and my mailbox in a move. Bob and I release "
                   "sandwich together; I can still push to its repository.")
    recovery, status_path = file_request(
        requester, mail, username="alice", contact="alice@fresh.example",
        still_has=["repo_push"], description=description)
    assert set(asked_proofs(requester, status_path)) == {ProofKind.REPO_BRANCH}

    # Staff ask for a co-owner's word as well.
    dana = staff_member(make_user, make_client, "dana")
    eve = staff_member(make_user, make_client, "eve")
    desk = f"/desk/{recovery.public_id}/"
    assert dana.post(desk + "proof/", {"kind": "co_owner", "project": ""}).status_code == 302
    proofs = asked_proofs(requester, status_path)
    assert set(proofs) == {ProofKind.REPO_BRANCH, ProofKind.CO_OWNER}
    vouch = found(VOUCH_URL, text_of(requester.get(proofs[ProofKind.CO_OWNER])))

    # Alice tells bob; bob signs in (with his app, re-authenticated) and sees who asks.
    bob_browser = sign_in(make_client(), bob)
    page = bob_browser.get(vouch)
    assert page.status_code == 200
    shown = text_of(page)
    assert "Vouch for alice?" in shown and "sandwich" in shown
    assert "alice@fresh.example" in shown and description in shown
    response = bob_browser.post(vouch, {"checked": "yes"})
    assert response.status_code == 302 and response["Location"] == vouch
    shown = text_of(bob_browser.get(vouch))
    assert "You vouched for alice. Thank you." in shown
    assert "This proof is satisfied: nothing more is needed from you." in shown
    assert SecurityEvent.objects.filter(user=bob, kind=EventKind.RECOVERY_PROOF_CHECKED,
                                        details__vouched_for="alice").exists()
    assert state_of(recovery) == State.IN_WAITING_PERIOD  # one source on a 2FA account

    # Alice pushes the branch the proof page names and asks for a check; the worker sees it.
    branch_page = proofs[ProofKind.REPO_BRANCH]
    branch = found(BRANCH_ON_PAGE, text_of(requester.get(branch_page)))
    run_git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
    page = answer(requester, branch_page, {})
    assert "This proof is satisfied" in visible(page) and branch not in page
    proof = recovery.proofs.get(kind=ProofKind.REPO_BRANCH)
    assert proof.evidence["seen"][0].endswith(f"\trefs/heads/{branch}")

    assert state_of(recovery) == State.AWAITING_APPROVAL
    assert sources_of(recovery) == {Source.PERSON, Source.REPOSITORY}
    approve_and_complete(recovery, dana, eve)
    assert_handed_over(alice, recovery, mail, contact="alice@fresh.example",
                       old_address="alice@example.org")
    approvers = set(recovery.approvals.values_list("staff__username", flat=True))
    assert approvers == {"dana", "eve"}
    reset_and_sign_in(make_client, mail, contact="alice@fresh.example", username="alice")
