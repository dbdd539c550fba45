"""The recovery desk end to end (issue 5, "How it will be checked"), with real parts.

A maintainer with a second factor owns a project whose release metadata names a git repository
served by a real ``git daemon`` on loopback. They lose email, app and codes, file a recovery
request with a new contact address (confirmed with a code, NIST N3), staff ask for a
``repo_branch`` proof, the requester pushes the branch with the real git CLI, and the periodic
pass sees it by itself (DESIGN §5). A 2FA account with one proof waits (NIST N6); after the wait
two different staff approve (an owner of projects) and one completes: factors, sessions and
tokens are gone and the contact address is the verified primary. The maintainer then resets the
password through the mailed link, signs in, saves recovery codes, enrols an authenticator app,
makes an API token and uploads a new release.

Everything runs in-process through the Django test client (requests run their on-commit work
and the real task queue, mail goes through the loopback SMTP server). The upload is a POST to
/legacy/ as twine sends it, not real twine: real twine against a running server is covered by
tests/index/test_twine.py and tests/index/test_publish_journey.py.
"""

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from django.test import TestCase
from django.utils import timezone

from relatch.accounts.models import Email, User, UserSession
from relatch.audit.models import EventKind, SecurityEvent, StaffAction
from relatch.index.models import APIToken, File, Release
from relatch.index.tokens.services import create_token
from relatch.mfa.models import RecoveryCodeSet, TotpDevice
from relatch.recovery import housekeeping
from relatch.recovery.models import ProofKind, RecoveryProof, RecoveryRequest, State
from tests.conftest import run_pending_tasks, sign_in
from tests.index.dists import build_wheel
from tests.index.project_rows import make_project, make_release
from tests.index.test_upload import post
from tests.mfa.factor_rows import add_app, add_codes
from tests.recovery.requests import end_wait
from tests.recovery.test_repo_branch import run_git, served_repo

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db,
]
repository = served_repo  # the real git daemon on loopback (tests/recovery/test_repo_branch.py)

OLD_ADDRESS = "maria@example.org"
NEW_ADDRESS = "maria.new@example.net"
NEW_PASSWORD = "a brand new passphrase after recovery"
CODE_IN_MAIL = re.compile(r"Your code: (\d{6})")
PROOF_LINK = re.compile(r'<a href="(/recovery/proof/[^"]+)">Complete this proof</a>')
BRANCH_ON_PAGE = re.compile(r'<code class="token">(relatch-recovery-[^<]+)</code>')
SHOWN_CODE = re.compile(r"<code>([0-9A-Z]{4}(?:-[0-9A-Z]{4}){4})</code>")
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
TOTP_SECRET = re.compile(r'<code class="totp-secret">([A-Z2-7 ]+)</code>')
API_TOKEN = re.compile(r'<code id="api-token" class="token-text">([^<]+)</code>')


@pytest.fixture(autouse=True)
def files_dir(settings: Any, tmp_path: Path) -> Path:
    """Uploaded files go to a fresh directory."""
    location = tmp_path / "files"
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(location), "base_url": "/files/"}}}
    return location


def passes() -> housekeeping.PassReport:
    """One run of the background tick's pass, committed as the worker commits it."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        report = housekeeping.run_pass()
    run_pending_tasks()
    return report


def form_token(client: Any, page: str) -> str:
    found = FORM_TOKEN.search(client.get(page).text)
    assert found, f"no form token on {page}"
    return found.group(1)


def found(pattern: re.Pattern[str], text: str) -> str:
    match = pattern.search(text)
    assert match, f"{pattern.pattern!r} not in: {text[:2000]}"
    return match.group(1)


def test_a_maintainer_who_lost_everything_gets_the_account_back(
    repository: tuple[str, Path], make_user: Any, make_client: Any, mail: Any, settings: Any
) -> None:
    url, work = repository
    settings.REPOSITORY_HOSTS = ["127.0.0.1"]  # the loopback git daemon, named explicitly
    maria = _maintainer(make_user, url)
    old_browser = sign_in(make_client(), maria)
    _, old_token = create_token(request=None, user=maria, name="ci", project=None,
                                expires_at=None)
    assert old_browser.get("/account/").status_code == 200

    # 2. The requester, in a fresh browser, files a request with a new contact address.
    requester = make_client()
    status_path = _file_request(requester, mail)
    recovery = RecoveryRequest.objects.get(user=maria)
    assert recovery.contact_email == NEW_ADDRESS
    notice = next(m for m in mail.to(OLD_ADDRESS)
                  if "Someone asked to recover your Relatch account maria" in str(m["Subject"]))
    assert 'If you did not ask for this, press "This wasn\'t me"' in mail.text(notice)
    assert mail.link_to(notice, f"/recovery/request/not-me/{recovery.public_id}/")
    assert SecurityEvent.objects.filter(user=maria, kind=EventKind.RECOVERY_REQUESTED).exists()

    # 3. The requester said they still push to the repository: the branch proof is asked for
    # without staff (DESIGN §5), on the repository maria's own upload declared long ago.
    recovery.refresh_from_db()
    assert recovery.state == State.AWAITING_PROOF
    asked = RecoveryProof.objects.get(request=recovery)
    assert (asked.kind, asked.requested_by, asked.evidence["repository"]) == (
        ProofKind.REPO_BRANCH, None, url)
    assert any("a proof is needed" in str(m["Subject"]) for m in mail.to(NEW_ADDRESS))
    staff1, staff2 = _staff(make_user, make_client, "dana"), _staff(make_user, make_client, "eve")
    desk = f"/desk/{recovery.public_id}/"
    page = staff1.get(desk)
    assert page.status_code == 200 and url in page.text  # the project's repository is a fact
    assert "asked automatically" in page.text

    # 4. The requester finds the proof from the status page and pushes the branch with git.
    status = requester.get(status_path)
    assert status.status_code == 200 and "Give these proofs to go on" in status.text
    proof_page = requester.get(found(PROOF_LINK, status.text))
    assert proof_page.status_code == 200 and url in proof_page.text
    branch = found(BRANCH_ON_PAGE, proof_page.text)
    run_git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=work)

    # 5. The server sees it by itself; a 2FA account with one proof waits, then awaits approval.
    report = passes()
    proof = RecoveryProof.objects.get(request=recovery)
    recovery.refresh_from_db()
    assert proof.pk in report.branches_checked and not report.failures
    assert proof.status == RecoveryProof.Status.SATISFIED
    assert proof.evidence["seen"][0].endswith(f"\trefs/heads/{branch}")
    assert recovery.state == State.IN_WAITING_PERIOD and recovery.wait_ends_at
    assert recovery.wait_ends_at > timezone.now() + timedelta(days=6)
    assert "waiting period" in requester.get(status_path).text.lower()
    # NIST N6/N8: the owner is told of the wait and its end, not of the proof; the requester,
    # who did not watch the worker find the branch, of both in one mail (issue 19).
    subjects = [str(m["Subject"]) for m in mail.to(OLD_ADDRESS)]
    assert any("in the waiting period" in s for s in subjects)
    assert not any("proof" in s for s in subjects)
    told = [m for m in mail.to(NEW_ADDRESS) if "proof satisfied" in str(m["Subject"])]
    assert len(told) == 1 and "the waiting period ends" in mail.text(told[0])
    assert not any(branch in mail.text(m) for m in mail.messages)  # the secret is never mailed
    assert staff1.post(desk + "complete/").status_code == 409  # no completion during the wait
    end_wait(recovery)
    report = passes()
    recovery.refresh_from_db()
    assert report.waits_ended == [recovery.public_id]
    assert recovery.state == State.AWAITING_APPROVAL

    # 6. One approval is not enough for an owner of projects; two are; staff 1 completes.
    assert staff1.post(desk + "approve/").status_code == 302
    assert staff1.post(desk + "complete/").status_code == 409
    assert staff1.post(desk + "approve/").status_code == 409  # the same person twice
    assert staff2.post(desk + "approve/").status_code == 302
    response = staff1.post(desk + "complete/")
    assert response.status_code == 302, response.content.decode()[:2000]
    _assert_completed(maria, recovery, old_browser)
    refused = post(make_client(), build_wheel("sandwich", "1.1"), old_token)
    assert refused.status_code == 403, refused.status_code  # the old token is revoked

    # 7. Back in: reset link to the new address, sign in, codes, app, token, upload.
    _reset_password(requester, mail)
    browser = make_client()
    response = browser.post("/account/login/", {"identifier": "maria", "password": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/account/"  # no 2nd step
    assert browser.get("/account/").status_code == 200
    no_factor = browser.get("/account/tokens/new/")
    # Until a second factor is back, no token can be made, so nothing can be uploaded.
    assert no_factor.status_code == 403 and "second factor" in no_factor.text.lower()
    _enrol_app(browser, maria)
    token = _make_token(browser)
    response = post(make_client(), build_wheel("sandwich", "2.0"), token)
    assert response.status_code == 200, response.content.decode()[:2000]
    release = Release.objects.get(project__name="sandwich", version="2.0")
    assert File.objects.filter(release=release).exists()


def _maintainer(make_user: Any, url: str) -> User:
    maria = make_user(username="maria", email=OLD_ADDRESS)
    add_app(maria)
    add_codes(maria)
    project = make_project("sandwich", owners=(maria,))
    # Declared by maria's own upload, long before the request: a repository that counts.
    make_release(project, "1.0", project_urls={"Source": url}, uploader=maria,
                 created_at=timezone.now() - timedelta(days=90))
    return maria


def _file_request(requester: Any, mail: Any) -> str:
    """The request form, the code from the contact mail; returns the mailed status path."""
    assert requester.get("/recovery/request/new/").status_code == 200
    response = requester.post("/recovery/request/new/", {
        "username": "maria", "contact_email": NEW_ADDRESS, "still_has": ["repo_push"],
        "description": "Lost my phone and my mailbox; I still push to sandwich.",
        "agreed": "on", "acknowledged": "on",
    })
    assert response.status_code == 302 and response["Location"] == "/recovery/request/confirm/"
    code = found(CODE_IN_MAIL, mail.text(mail.last(NEW_ADDRESS)))
    response = requester.post("/recovery/request/confirm/", {"code": code})
    assert response.status_code == 302 and response["Location"] == "/recovery/request/filed/"
    assert requester.get("/recovery/request/filed/").status_code == 200
    status_path = mail.link_to(mail.last(NEW_ADDRESS), "/recovery/request/status/")
    assert requester.get(status_path).status_code == 200
    return status_path


def _staff(make_user: Any, make_client: Any, username: str) -> Any:
    staff = make_user(username=username, is_staff=True)
    add_app(staff)
    return sign_in(make_client(), staff)


def _assert_completed(maria: User, recovery: RecoveryRequest, old_browser: Any) -> None:
    recovery.refresh_from_db()
    maria.refresh_from_db()
    assert recovery.state == State.COMPLETED
    assert not TotpDevice.objects.filter(user=maria).exists()
    assert not RecoveryCodeSet.objects.filter(user=maria).exists()
    assert not UserSession.objects.filter(user=maria).exists()
    assert old_browser.get("/account/").status_code == 302  # that session is over
    assert not APIToken.objects.filter(user=maria, revoked_at__isnull=True).exists()
    primary = Email.objects.get(user=maria, primary=True)
    assert (primary.address, primary.verified) == (NEW_ADDRESS, True)
    assert not maria.has_usable_password()
    actions = set(StaffAction.objects.filter(subject=maria)
                  .values_list("staff__username", "action"))
    assert {("dana", "recovery:approve"),
            ("eve", "recovery:approve"), ("dana", "recovery:complete")} <= actions, actions
    approvers = set(recovery.approvals.values_list("staff__username", flat=True))
    assert approvers == {"dana", "eve"}
    assert SecurityEvent.objects.filter(user=maria, kind=EventKind.RECOVERY_COMPLETED).exists()


def _reset_password(requester: Any, mail: Any) -> None:
    reset_mail = mail.last(NEW_ADDRESS)
    assert "set a new password" in str(reset_mail["Subject"])
    link = mail.link_to(reset_mail, "/account/reset/")
    response = requester.get(link)
    assert response.status_code == 302, response.status_code
    set_password = response["Location"]
    assert requester.get(set_password).status_code == 200
    response = requester.post(set_password, {"new_password1": NEW_PASSWORD,
                                             "new_password2": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/account/login/"


def _enrol_app(browser: Any, maria: User) -> None:
    codes_page = "/account/two-factor/recovery-codes/"
    response = browser.post(codes_page + "new/", {"form_token": form_token(browser, codes_page)})
    assert response.status_code == 302, response.content.decode()[:2000]
    codes = SHOWN_CODE.findall(browser.get(codes_page + "show/").text)
    assert len(codes) == 8
    assert browser.post(codes_page + "confirm/", {"code": codes[0]}).status_code == 302
    page = browser.get("/account/two-factor/app/")
    secret = found(TOTP_SECRET, page.text).replace(" ", "")
    response = browser.post("/account/two-factor/app/confirm/",
                            {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert TotpDevice.objects.filter(user=maria).exists()


def _make_token(browser: Any) -> str:
    page = "/account/tokens/new/"
    response = browser.post(page, {"name": "laptop", "scope": "all", "expiry": "90",
                                   "expires_on": "", "form_token": form_token(browser, page)})
    assert response.status_code == 200, response.content.decode()[:2000]
    return found(API_TOKEN, response.text)

