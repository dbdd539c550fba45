"""The recovery desk tried as an attacker would (issue 15): each attack, through the pages and
the JSON API, fails for the attacker.

1. A mailbox alone (a password reset by mail, then the password and a mailed code) is one
   source, not two: a 2FA account still waits the enforced week.
2. A maintainer's own upload cannot name the repository a branch proof checks, nor plant
   weak evidence that reads in their favour.
3. One co-owner is one source, whatever they supplied; the vouch page says who asks.
4. "This wasn't me" holds every open request of the account, not only the one clicked, and
   nothing moves on while it stands.
5. A hijacker's "this wasn't me" cannot silently kill the owner's request: it holds and
   freezes, staff see it first and can resume, lift and unfreeze, and completion undoes the
   hijacker's address change.
6. Completion leaves no loose ends: other addresses are unverified (no reset link reaches the
   previous holder), and "this wasn't me" after completion tells the truth and ends the
   recovered sessions.
7. Repository checks never run in a web request (tests/recovery/test_branch_checks.py).
And the 2024 credential-stuffing pattern, undone by the owner's recovery.
"""

from datetime import timedelta
from typing import Any

import pytest
from django.test import TestCase
from django.utils import timezone

from relatch.accounts.models import Email, User, UserSession
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import APIToken, Release, Role, RoleInvitation
from relatch.mfa.models import TotpDevice
from relatch.recovery import housekeeping
from relatch.recovery.models import RecoveryBlock, RecoveryRequest, State
from relatch.recovery.policy import verdict
from tests.conftest import PASSWORD, run_pending_tasks, sign_in
from tests.index.dists import build_wheel
from tests.index.test_upload import post as upload
from tests.index.trusted.publisher_rows import mint, publisher_row
from tests.mfa.factor_rows import add_app
from tests.recovery.attack_steps import (
    answer_mailbox_proof,
    api_post,
    desk_detail,
    file_request,
    old_token,
    owned_project,
    proof_pages,
    reset_password_by_mail,
    staff_api,
    staff_browser,
    with_a_past,
)
from tests.recovery.requests import end_wait

pytestmark = [pytest.mark.slow, pytest.mark.django_db]
MALLORY = "mallory@evil.example"
OWNER_NEW = "alice.new@example.net"
STOLEN_PASSWORD = "mallory knows this one now"


def passes() -> housekeeping.PassReport:
    """One run of the background pass, committed as the worker commits it."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        report = housekeeping.run_pass()
    run_pending_tasks()
    return report


@pytest.fixture
def alice(user: User) -> User:
    """Alice's account, 90 days old, with an authenticator app (two-step sign-in)."""
    add_app(user)
    return with_a_past(user)


# -- 1. the mailbox alone ----------------------------------------------------------------------


def test_a_mailbox_alone_is_one_source_and_a_2fa_account_still_waits(
        alice: User, client: Any, make_client: Any, make_user: Any, mail: Any) -> None:
    """The thief holds alice@example.org (stolen, or a lapsed domain bought again): resets
    the password by mail, then answers the password proof and the mailed-code proof. Both rest
    on the mailbox (DESIGN §5): one source, so the enforced 7-day wait applies, no automatic
    completion is announced, and staff cannot complete during it."""
    thief = make_client()
    reset_password_by_mail(thief, mail, "alice@example.org", STOLEN_PASSWORD)
    recovery, status = file_request(thief, mail, contact=MALLORY,
                                    still_has=["password", "email"])
    pages = proof_pages(thief, status)
    assert set(pages) == {"password", "account_email"}
    accepted = thief.post(pages["password"], {"password": STOLEN_PASSWORD}, follow=True)
    assert "Proof accepted" in accepted.content.decode()
    accepted = answer_mailbox_proof(thief, mail, pages["account_email"], "alice@example.org")
    assert "Proof accepted" in accepted.content.decode()

    recovery.refresh_from_db()
    assert (recovery.state, recovery.completes_automatically) == (State.IN_WAITING_PERIOD, False)
    assert recovery.wait_ends_at > timezone.now() + timedelta(days=6)
    said = verdict(recovery)
    assert [str(s.source) for s in said.sources] == ["mailbox"]
    password = next(j for j in said.judged if j.proof.kind == "password")
    assert "mailed reset link" in password.why

    desk = staff_api(make_user, "dana")
    body = desk_detail(client, desk, recovery)
    assert body["verdict"]["sources"] == ["mailbox"]
    counted = {p["kind"]: (p["counts"], p["source"]) for p in body["proofs"]}
    assert sorted(counted.values()) == [(False, "mailbox"), (True, "mailbox")]
    assert api_post(client, f"/desk/requests/{recovery.public_id}/approve",
                    headers=desk).status_code == 200
    refused = api_post(client, f"/desk/requests/{recovery.public_id}/complete", headers=desk)
    assert refused.status_code == 409 and "independent source" in refused.json()["detail"]
    assert alice.totp_device  # nothing was taken from the account


# -- 2. a maintainer's upload names the repository ---------------------------------------------


def test_a_maintainers_upload_cannot_choose_the_repository_nor_plant_evidence(
        alice: User, client: Any, make_user: Any, make_client: Any, mail: Any,
        files_dir: Any) -> None:
    """Bob maintains alice's project. He uploads a release naming his own repository and his
    own address as author, then files a request for alice's account saying he can push to
    the repository. No branch proof can use his repository (only the account's own uploads
    declare one), and the desk shows whose upload the "evidence" came from."""
    project = owned_project(alice)
    bob = with_a_past(make_user(username="bob", email="bob@example.org"))
    add_app(bob)
    Role.objects.create(project=project, user=bob, kind=Role.Kind.MAINTAINER,
                        created_at=timezone.now() - timedelta(days=60))
    wheel = build_wheel("sandwich", "2.0", author_email=MALLORY,
                        project_urls={"Source": "https://github.com/bob/sandwich"})
    assert upload(make_client(), wheel, old_token(bob)).status_code == 200
    assert Release.objects.get(version="2.0").uploader == bob

    recovery, status = file_request(make_client(), mail, contact=MALLORY,
                                    still_has=["repo_push"])
    assert proof_pages(client, status) == {}  # no branch proof was asked for
    desk = staff_api(make_user, "dana")
    refused = api_post(client, f"/desk/requests/{recovery.public_id}/proofs",
                       {"kind": "repo_branch", "project": "sandwich"}, headers=desk)
    assert refused.status_code == 409
    assert "uploaded by bob, not by this account" in refused.json()["detail"]
    assert not recovery.proofs.exists()
    evidence = desk_detail(client, desk, recovery)["weak_evidence"]
    assert any("2.0 (uploaded by bob, NOT this account)" in line for line in evidence)
    page = staff_browser(make_user, make_client, "eve").get(f"/desk/{recovery.public_id}/")
    assert "uploaded by bob, NOT this account" in page.content.decode()


def test_a_release_a_trusted_publisher_published_is_not_the_accounts_declaration(
        alice: User, client: Any, make_user: Any, make_client: Any, mail: Any,
        files_dir: Any) -> None:
    """Alice lets her repository's release workflow publish (trusted publishing). Bob can push
    to that repository, so he can run the workflow: its release names his own repository and
    address, and Relatch records alice (who added the publisher) as its uploader. Forty days
    later he files a request for her account saying he can push to "the" repository. The
    release's metadata was written by the CI job, not by alice's hand: no branch proof can
    use it, and the desk says so."""
    project = owned_project(alice)
    publisher = publisher_row(added_by=alice, project=project, repository="alice/sandwich")
    minted, token_text = mint(publisher)
    wheel = build_wheel("sandwich", "2.0", author_email=MALLORY,
                        project_urls={"Source": "https://github.com/bob/sandwich"})
    assert upload(make_client(), wheel, token_text).status_code == 200
    release = Release.objects.get(version="2.0")
    assert (release.uploader, release.trusted_publisher) == (alice, publisher)
    Release.objects.filter(pk=release.pk).update(
        created_at=timezone.now() - timedelta(days=40))

    recovery, status = file_request(make_client(), mail, contact=MALLORY,
                                    still_has=["repo_push"])
    assert proof_pages(client, status) == {}
    desk = staff_api(make_user, "dana")
    refused = api_post(client, f"/desk/requests/{recovery.public_id}/proofs",
                       {"kind": "repo_branch", "project": "sandwich"}, headers=desk)
    assert refused.status_code == 409
    assert "published by a CI job" in refused.json()["detail"]
    assert not recovery.proofs.exists()
    evidence = desk_detail(client, desk, recovery)["weak_evidence"]
    assert any("2.0 (published by a CI job" in line and "alice/sandwich" in line
               for line in evidence)


# -- 3. one co-owner counts once ---------------------------------------------------------------


def test_one_co_owner_is_one_source_and_sees_who_asks(
        alice: User, client: Any, make_user: Any, make_client: Any, mail: Any) -> None:
    """Bob, alice's co-owner, files a request for her account from a new address and then
    vouches for it himself, and answers the token proof with a token... of his own. His
    vouch is one source; the vouch page showed him who asks; his token counts for nothing."""
    project = owned_project(alice)
    bob = with_a_past(make_user(username="bob", email="bob@example.org"))
    add_app(bob)
    Role.objects.create(project=project, user=bob, kind=Role.Kind.OWNER,
                        created_at=timezone.now() - timedelta(days=60))
    old_token(alice)
    recovery, status = file_request(make_client(), mail, contact=MALLORY,
                                    still_has=["api_token"], description="It's me, alice!")
    desk = staff_browser(make_user, make_client, "dana")
    assert desk.post(f"/desk/{recovery.public_id}/proof/", {"kind": "co_owner"}).status_code == 302
    vouch = recovery.proofs.get(kind="co_owner")
    bob_browser = sign_in(make_client(), bob)
    page = bob_browser.get(f"/recovery/proof/vouch/{vouch.pk}/").content.decode()
    assert MALLORY in page and "It&#x27;s me, alice!" in page  # who asks, and what they said
    bob_browser.post(f"/recovery/proof/vouch/{vouch.pk}/", {"checked": "yes"})
    token_page = proof_pages(make_client(), status)["api_token"]
    wrong = client.post(token_page, {"token": old_token(bob)}, follow=True)
    assert "That is not right" in wrong.content.decode()

    recovery.refresh_from_db()
    said = verdict(recovery)
    assert [str(s.source) for s in said.sources] == ["person"]
    assert recovery.state == State.IN_WAITING_PERIOD  # one source on a 2FA account: the wait
    assert desk.post(f"/desk/{recovery.public_id}/complete/").status_code == 409


def test_a_co_owner_cannot_vouch_for_a_request_from_their_own_address(
        alice: User, make_user: Any, make_client: Any, mail: Any) -> None:
    project = owned_project(alice)
    bob = with_a_past(make_user(username="bob", email="bob@example.org"))
    add_app(bob)
    Role.objects.create(project=project, user=bob, kind=Role.Kind.OWNER,
                        created_at=timezone.now() - timedelta(days=60))
    recovery, _ = file_request(make_client(), mail, contact="bob@example.org", still_has=[])
    staff_browser(make_user, make_client, "dana").post(
        f"/desk/{recovery.public_id}/proof/", {"kind": "co_owner"})
    vouch = recovery.proofs.get(kind="co_owner")
    bob_browser = sign_in(make_client(), bob)
    page = bob_browser.get(f"/recovery/proof/vouch/{vouch.pk}/").content.decode()
    assert "cannot vouch for their own request" in page
    response = bob_browser.post(f"/recovery/proof/vouch/{vouch.pk}/", {"checked": "yes"},
                                follow=True)
    assert "cannot vouch for their own request" in response.content.decode()
    vouch.refresh_from_db()
    assert vouch.status == "pending"


# -- 4. "this wasn't me" holds every request ---------------------------------------------------


def test_not_me_holds_every_open_request_and_nothing_moves_on(
        alice: User, client: Any, make_user: Any, make_client: Any, mail: Any) -> None:
    """Mallory files two requests; alice clicks "this wasn't me" on the second one's notice.
    The first, filed earlier, is held too: a proof satisfied on it, the end of a wait and a
    staff approval carry it nowhere."""
    token = old_token(alice)
    first, first_status = file_request(make_client(), mail, contact=MALLORY,
                                       still_has=["api_token"])
    second, _ = file_request(make_client(), mail, contact="mallory2@evil.example",
                             still_has=[])
    notice = next(m for m in mail.to("alice@example.org")
                  if second.public_id in mail.text(m) and "/not-me/" in mail.text(m))
    done = make_client().post(mail.link_to(notice, "/not-me/"))
    assert "and 1 other request(s) for your account are on hold" in done.content.decode()
    for recovery in (first, second):
        recovery.refresh_from_db()
        assert recovery.state == State.ON_HOLD and recovery.urgent_since

    # The token is alice's own (say mallory found it in a leaked CI log): accepted, but held.
    page = proof_pages(make_client(), first_status)["api_token"]
    assert "Proof accepted" in client.post(page, {"token": token}, follow=True).content.decode()
    first.refresh_from_db()
    assert first.state == State.ON_HOLD
    end_wait(first)
    passes()
    first.refresh_from_db()
    assert first.state == State.ON_HOLD
    desk = staff_api(make_user, "dana")
    for action in ("approve", "complete"):
        refused = api_post(client, f"/desk/requests/{first.public_id}/{action}", headers=desk)
        assert refused.status_code == 409, action
    body = desk_detail(client, desk, first)
    assert body["standing"]["held_from"] == State.AWAITING_PROOF
    assert body["standing"]["account_frozen"] is True and body["standing"]["block_until"]
    queue = staff_browser(make_user, make_client, "eve").get("/desk/").content.decode()
    assert queue.index("Urgent") < queue.index(first.public_id)


# -- 5. a hijacker's "this wasn't me" ------------------------------------------------------------


def _hijack(make_client: Any, mail: Any) -> Any:
    """Mallory signs in with alice's (reused, leaked) password, adds and verifies her own
    address and removes alice's: every later notice goes to mallory."""
    hijacker = make_client()
    response = hijacker.post("/account/login/", {"identifier": "alice", "password": PASSWORD})
    assert response.status_code == 302
    session = hijacker.session
    session["relatch_reauth_at"] = int(timezone.now().timestamp())
    session.save()
    assert hijacker.post("/account/emails/add/", {"address": MALLORY}).status_code == 302
    hijacker.post(mail.link_to(mail.last(MALLORY), "/account/emails/verify/"))
    assert Email.objects.get(address=MALLORY).verified
    owner_address = Email.objects.get(address="alice@example.org")
    assert hijacker.post(f"/account/emails/{owner_address.pk}/remove/").status_code == 302
    return hijacker


def test_a_hijackers_not_me_holds_and_staff_give_the_account_back(
        user: User, client: Any, make_user: Any, make_client: Any, mail: Any) -> None:
    """Issue 15 attack 5. Today's PyPI-like desk let the hijacker cancel the owner's request
    with one click and block new ones for 30 days, with no way for staff to lift it. Here the
    click holds and freezes; the owner's page says staff review it; staff see the address
    change, resume (lifting the block), unfreeze, and complete undoing the hijack."""
    alice = with_a_past(user)
    token = old_token(alice)
    hijacker = _hijack(make_client, mail)
    owner = make_client()
    recovery, status = file_request(owner, mail, contact=OWNER_NEW, still_has=["api_token"],
                                    description="Someone took my account and changed its address.")
    notice = mail.last(MALLORY)
    assert "/not-me/" in mail.text(notice)
    hijacker.post(mail.link_to(notice, "/not-me/"))
    recovery.refresh_from_db()
    assert recovery.state == State.ON_HOLD  # not cancelled
    refused = hijacker.post("/account/emails/add/", {"address": "mallory2@evil.example"})
    assert "frozen" in refused.content.decode()  # the hijacker cannot entrench further
    assert "Waiting for staff review" in owner.get(status).content.decode()
    page = proof_pages(owner, status)["api_token"]
    assert "Proof accepted" in owner.post(page, {"token": token}, follow=True).content.decode()

    desk = staff_browser(make_user, make_client, "dana")
    detail = desk.get(f"/desk/{recovery.public_id}/").content.decode()
    assert "this wasn&#x27;t me" in detail.lower() and MALLORY in detail
    added = SecurityEvent.objects.get(user=alice, kind=EventKind.EMAIL_ADDED)
    removed = SecurityEvent.objects.get(user=alice, kind=EventKind.EMAIL_REMOVED)
    reason = {"reason": "The requester holds the account's CI token; the address changed "
                        "the day before."}
    assert desk.post(f"/desk/{recovery.public_id}/resume/", reason).status_code == 302
    recovery.refresh_from_db()
    assert recovery.state == State.AWAITING_APPROVAL
    assert not RecoveryBlock.objects.filter(user=alice, lifted_at__isnull=True).exists()
    assert desk.post(f"/desk/{recovery.public_id}/complete/").status_code == 409  # frozen
    assert desk.post(f"/desk/{recovery.public_id}/unfreeze/", reason).status_code == 302
    assert desk.post(f"/desk/{recovery.public_id}/approve/").status_code == 302
    done = desk.post(f"/desk/{recovery.public_id}/complete/",
                     {"reverse": [added.pk, removed.pk]})
    assert done.status_code == 302, done.content.decode()[:3000]

    addresses = {e.address: e.verified for e in Email.objects.filter(user=alice)}
    assert addresses == {OWNER_NEW: True, "alice@example.org": False}
    assert hijacker.get("/account/").status_code == 302  # signed out
    assert not UserSession.objects.filter(user=alice).exists()
    again = hijacker.post(mail.link_to(notice, "/not-me/"))
    assert "already recovered" in again.content.decode()


def test_a_second_not_me_after_staff_resumed_only_alerts_them(
        user: User, make_user: Any, make_client: Any, mail: Any) -> None:
    alice = with_a_past(user)
    recovery, _ = file_request(make_client(), mail, contact=OWNER_NEW, still_has=[])
    link = mail.link_to(mail.last("alice@example.org"), "/not-me/")
    make_client().post(link)
    desk = staff_browser(make_user, make_client, "dana")
    desk.post(f"/desk/{recovery.public_id}/resume/", {"reason": "Confirmed by phone."})
    recovery.refresh_from_db()
    assert recovery.state == State.SUBMITTED
    again = make_client().post(link)
    assert "Staff were told again" in again.content.decode()
    recovery.refresh_from_db()
    assert recovery.state == State.SUBMITTED and recovery.urgent_since
    assert "URGENT" in mail.last("dana@staff.example")["Subject"]
    assert alice.recovery_blocks.filter(lifted_at__isnull=True).count() == 0


# -- 6. completion leaves no loose ends ----------------------------------------------------------


def _completed_for(alice: User, make_user: Any, make_client: Any, mail: Any,
                   contact: str) -> tuple[RecoveryRequest, Any]:
    """A request for alice answered with her old token, approved and completed; the
    requester's browser, signed in with the new password."""
    token = old_token(alice)
    requester = make_client()
    recovery, status = file_request(requester, mail, contact=contact, still_has=["api_token"])
    requester.post(proof_pages(requester, status)["api_token"], {"token": token})
    desk = staff_browser(make_user, make_client, "dana")
    desk.post(f"/desk/{recovery.public_id}/approve/")
    assert desk.post(f"/desk/{recovery.public_id}/complete/").status_code == 302
    response = requester.get(mail.link_to(mail.last(contact), "/account/reset/"))
    requester.post(response["Location"], {"new_password1": "the requester's new password",
                                          "new_password2": "the requester's new password"})
    login = requester.post("/account/login/", {"identifier": "alice",
                                                "password": "the requester's new password"})
    assert login.status_code == 302
    return recovery, requester


def test_completion_unverifies_every_other_address(
        user: User, make_user: Any, make_client: Any, mail: Any) -> None:
    """The previous holder added their address; after the owner's recovery it no longer gets
    reset links."""
    alice = with_a_past(user)
    Email.objects.create(user=alice, address=MALLORY, verified=True,
                         verified_at=timezone.now() - timedelta(days=5))
    _completed_for(alice, make_user, make_client, mail, OWNER_NEW)
    assert not Email.objects.get(address=MALLORY).verified
    mail.clear()
    assert make_client().post("/account/reset/", {"identifier": MALLORY}).status_code == 200
    run_pending_tasks()
    assert mail.to(MALLORY) == []


def test_not_me_after_completion_tells_the_truth_and_ends_the_recovered_sessions(
        user: User, make_user: Any, make_client: Any, mail: Any) -> None:
    """Mallory completed a recovery of alice's account (she had alice's token). Alice clicks
    "this wasn't me" in the completion notice: the page says the account was recovered and
    to whom (masked), mallory's session ends, the token she made since is revoked, the
    account is frozen and staff are alerted as urgent."""
    alice = with_a_past(user)
    recovery, mallory = _completed_for(alice, make_user, make_client, mail, MALLORY)
    old_token(alice, days=0)  # a token mallory made since the recovery
    completed = next(m for m in mail.to("alice@example.org")
                     if "Completed" in mail.text(m))
    page = make_client().post(mail.link_to(completed, "/not-me/")).content.decode()
    assert "already recovered" in page and "m***@evil.example" in page
    recovery.refresh_from_db()
    assert recovery.closed_at.strftime("%Y-%m-%d") in page
    assert mallory.get("/account/").status_code == 302
    alice.refresh_from_db()
    assert alice.is_frozen
    assert APIToken.objects.latest("pk").revoked_at is not None
    ended = SecurityEvent.objects.get(user=alice, kind=EventKind.OTHER_SESSIONS_ENDED)
    assert ended.details == {"request": recovery.public_id, "sessions": 1, "devices": 1,
                             "api_tokens": 1, "trusted_publishers": 0}
    assert "URGENT" in mail.last("dana@staff.example")["Subject"]
    recovery.refresh_from_db()
    assert recovery.urgent_since is not None


# -- the 2024 credential-stuffing pattern -------------------------------------------------------


def test_credential_stuffing_then_a_factor_of_the_attackers_is_undone_by_the_owners_recovery(
        user: User, client: Any, make_user: Any, make_client: Any, mail: Any,
        files_dir: Any) -> None:
    """The pattern of 2024: the attacker signs in with a reused password, enrols their own
    authenticator app (locking the owner out of an account that had none), makes a token,
    adds their address and invites an accomplice as owner. The owner, with the mailbox and an
    old CI token, recovers; nothing of the attacker's is left."""
    from tests.recovery.test_recovery_journey import _enrol_app, _make_token

    alice = with_a_past(user)
    owned_project(alice)
    ci_token = old_token(alice)
    make_user(username="accomplice", email="accomplice@evil.example")
    attacker = make_client()
    assert attacker.post("/account/login/", {"identifier": "alice",
                                              "password": PASSWORD}).status_code == 302
    session = attacker.session
    session["relatch_reauth_at"] = int(timezone.now().timestamp())
    session.save()
    _enrol_app(attacker, alice)
    attackers_token = _make_token(attacker)
    attacker.post("/account/emails/add/", {"address": MALLORY})
    attacker.post(mail.link_to(mail.last(MALLORY), "/account/emails/verify/"))
    invited = attacker.post("/manage/project/sandwich/invite/",
                            {"username": "accomplice", "kind": "owner"})
    assert invited.status_code == 302, invited.content.decode()[:2000]

    owner = make_client()
    recovery, status = file_request(owner, mail, contact=OWNER_NEW,
                                    still_has=["email", "api_token"])
    pages = proof_pages(owner, status)
    owner.post(pages["api_token"], {"token": ci_token})
    answer_mailbox_proof(owner, mail, pages["account_email"], "alice@example.org")
    recovery.refresh_from_db()
    assert [str(s.source) for s in verdict(recovery).sources] == ["token", "mailbox"]
    assert recovery.state == State.AWAITING_APPROVAL  # owns a project: two approvals

    dana = staff_browser(make_user, make_client, "dana")
    eve = staff_browser(make_user, make_client, "eve")
    changes = desk_detail(client, staff_api(make_user, "dana"), recovery)["changes"]
    undoable = [c["id"] for c in changes if c["undo"]]
    assert dana.post(f"/desk/{recovery.public_id}/approve/").status_code == 302
    assert eve.post(f"/desk/{recovery.public_id}/approve/").status_code == 302
    done = dana.post(f"/desk/{recovery.public_id}/complete/", {"reverse": undoable})
    assert done.status_code == 302, done.content.decode()[:3000]

    assert not TotpDevice.objects.filter(user=alice).exists()  # the attacker's app
    assert not APIToken.objects.filter(user=alice, revoked_at__isnull=True).exists()
    assert attacker.get("/account/").status_code == 302
    assert not Email.objects.filter(address=MALLORY).exists()
    assert upload(make_client(), build_wheel("sandwich", "6.6.6"),
                  attackers_token).status_code == 403
    invitation = RoleInvitation.objects.get(invitee__username="accomplice")
    assert invitation.state == RoleInvitation.State.REVOKED
    assert not Role.objects.filter(user__username="accomplice").exists()
    # The owner sets a password from the link at the confirmed address and is back in; the
    # attacker's password is gone with the old one.
    link = owner.get(mail.link_to(mail.last(OWNER_NEW), "/account/reset/"))
    owner.post(link["Location"], {"new_password1": "alice's own new passphrase",
                                  "new_password2": "alice's own new passphrase"})
    back = make_client().post("/account/login/", {"identifier": "alice",
                                                  "password": "alice's own new passphrase"})
    assert back.status_code == 302 and back["Location"] == "/account/"
    again = make_client().post("/account/login/", {"identifier": "alice", "password": PASSWORD})
    assert again.status_code == 200  # refused
