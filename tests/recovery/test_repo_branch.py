"""The repo_branch proof with real git over loopback (DESIGN §8: no mock of git).

A bare repository is served by ``git daemon`` on 127.0.0.1 (allowlisted for the test: by
default Relatch contacts no loopback address); the requester's clone pushes the branch the
proof page names, a check is queued, and the worker's ``check_branch`` task sees the branch
with ``git ls-remote``.
"""

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from django.test import Client, TestCase

from relatch.audit.models import EventKind, SecurityEvent
from relatch.recovery.models import ProofKind, RecoveryProof, State
from relatch.recovery.proofs import branch_checks, git, services
from tests.conftest import run_pending_tasks
from tests.mfa.factor_rows import add_app
from tests.recovery.proof_rows import asked, committed, make_project

pytestmark = [
    pytest.mark.django_db,
]
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "Alice", "GIT_AUTHOR_EMAIL": "alice@example.org",
           "GIT_COMMITTER_NAME": "Alice", "GIT_COMMITTER_EMAIL": "alice@example.org",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def run_git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def allow_loopback(settings) -> None:
    """Let checks contact 127.0.0.1 (named in REPOSITORY_HOSTS, the address and the host)."""
    settings.REPOSITORY_HOSTS = [*settings.REPOSITORY_HOSTS, "127.0.0.1"]


class QueueingClient(Client):
    """A browser whose requests commit (their on-commit work runs, so tasks are queued) but
    whose worker does not run: the test runs it with run_pending_tasks()."""

    def request(self, **request):
        with TestCase.captureOnCommitCallbacks(execute=True):
            return super().request(**request)


def page_of(proof) -> str:
    """The path of ``proof``'s page, as the requester's status link leads to it."""
    from relatch.recovery.proofs.views import proof_page_url

    url = proof_page_url(proof)
    return url[url.index("/recovery/"):]


def check(proof) -> bool:
    """Ask for a check as the requester does, then let the worker run it; True once the
    branch was seen."""
    committed(branch_checks.request_check, proof=proof, by_requester=True)
    proof.refresh_from_db()
    return proof.status == RecoveryProof.Status.SATISFIED


@pytest.fixture
def served_repo(tmp_path, settings):
    """A bare repository with one commit on main, served read-only by git daemon on an
    allowlisted 127.0.0.1."""
    allow_loopback(settings)
    base = tmp_path / "served"
    bare = base / "sandwich.git"
    bare.mkdir(parents=True)
    run_git("init", "--bare", "-q", "-b", "main", str(bare), cwd=tmp_path)
    run_git("config", "daemon.receivepack", "true", cwd=bare)
    work = tmp_path / "work"
    run_git("clone", "-q", str(bare), str(work), cwd=tmp_path)
    (work / "README").write_text("sandwich\n")
    run_git("add", "README", cwd=work)
    run_git("commit", "-q", "-m", "first", cwd=work)
    run_git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=work)
    port = free_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--export-all", f"--base-path={base}", f"--port={port}",
         "--listen=127.0.0.1", "--reuseaddr", str(base)],
        env=GIT_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"git://127.0.0.1:{port}/sandwich.git"
    _wait_for(port)
    yield url, work
    daemon.terminate()
    daemon.wait(timeout=10)


def _wait_for(port: int) -> None:
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("git daemon did not start")


def branch_proof(user, staff, url, **kwargs):
    project = make_project(user, urls={"Source": url})
    return asked(user, staff, ProofKind.REPO_BRANCH, project=project, **kwargs)


def test_the_pushed_branch_satisfies_the_proof(user, staff, served_repo, mail):
    """DESIGN §5 repo_branch: the server sees the branch by itself and records what it saw;
    a lone proof on an account without 2FA is enough (policy), so it awaits approval."""
    url, work = served_repo
    recovery, proof = branch_proof(user, staff, url)
    branch = services.branch_to_push(proof)
    assert branch.startswith("relatch-recovery-") and len(branch) >= 16 + 17
    assert proof.evidence["repository"] == url
    assert branch not in str(proof.evidence) and proof.secret_digest != branch
    assert check(proof) is False
    assert (proof.status, proof.evidence["last_result"]) == ("pending", "branch absent")
    assert "check_queued_at" not in proof.evidence  # the check is over

    run_git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
    assert check(proof) is True
    recovery.refresh_from_db()
    assert proof.evidence["seen"][0].endswith(f"\trefs/heads/{branch}")
    assert proof.evidence["checks"] == 2
    assert recovery.state == State.AWAITING_APPROVAL
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.RECOVERY_PROOF_CHECKED,
                                        details__status="satisfied").exists()
    # The worker saw it, out of the requester's sight: one mail tells them, with where the
    # request went; the owner hears at completion (issue 19).
    texts = [mail.text(m) for m in mail.to(recovery.contact_email)]
    assert any('"A branch pushed' in t and "is now satisfied" in t
               and "staff now decide" in t for t in texts)
    assert mail.to("alice@example.org") == []
    assert not any(branch in mail.text(m) for m in mail.messages)  # never mailed


def test_one_branch_proof_on_a_2fa_account_starts_the_waiting_period(user, staff, served_repo):
    """DESIGN §5: an account with 2FA and one proof waits RECOVERY_WAIT (NIST N6)."""
    url, work = served_repo
    add_app(user)
    recovery, proof = branch_proof(user, staff, url)
    run_git("push", "-q", "origin", f"HEAD:refs/heads/{services.branch_to_push(proof)}",
            cwd=work)
    assert check(proof) is True
    recovery.refresh_from_db()
    assert recovery.state == State.IN_WAITING_PERIOD
    assert recovery.wait_ends_at is not None


def test_another_branch_name_does_not_count(user, staff, served_repo):
    url, work = served_repo
    recovery, proof = branch_proof(user, staff, url)
    run_git("push", "-q", "origin", "HEAD:refs/heads/relatch-recovery-000000000000", cwd=work)
    assert check(proof) is False
    assert proof.status == "pending"


def test_an_unreachable_repository_fails_the_proof_with_what_git_said(user, staff, settings):
    allow_loopback(settings)
    url = f"git://127.0.0.1:{free_port()}/nothing.git"
    recovery, proof = branch_proof(user, staff, url)
    assert check(proof) is False
    recovery.refresh_from_db()
    assert proof.status == RecoveryProof.Status.FAILED
    assert proof.evidence["last_result"] == "repository error" and proof.evidence["error"]
    assert recovery.state == State.AWAITING_PROOF


@pytest.mark.parametrize("url", [
    "file:///etc", "ssh://git@example.org/x.git", "ext::sh -c touch% /tmp/pwned",
    "/srv/repo.git", "-uhttps://example.org/x.git", "https://exa mple.org/x.git",
])
def test_only_http_and_git_urls_are_ever_contacted(url):
    """ASVS 1.3.6 (SSRF): metadata cannot make the server read files or run commands."""
    assert git.repository_url("Source", url) is None
    assert git.ls_remote(url=url, branch="b").error
    assert git.host_refusal(url)


@pytest.mark.parametrize(("label", "url", "expected"), [
    ("Homepage", "https://github.com/alice/sandwich/tree/main", "https://github.com/alice/sandwich"),
    ("Docs", "https://gitlab.com/alice/sandwich", "https://gitlab.com/alice/sandwich"),
    ("Anything", "https://git.example.org/sandwich.git", "https://git.example.org/sandwich.git"),
    ("Source", "https://git.example.org/sandwich", "https://git.example.org/sandwich"),
    ("Documentation", "https://docs.example.org/sandwich", None),
    ("Homepage", "https://github.com/alice", None),
])
def test_which_project_urls_name_a_repository(label, url, expected):
    assert git.repository_url(label, url) == expected


def test_an_expired_branch_proof_is_expired_not_checked(user, staff, served_repo):
    url, _ = served_repo
    recovery, proof = branch_proof(user, staff, url)
    RecoveryProof.objects.filter(pk=proof.pk).update(expires_at=proof.created_at)
    assert check(proof) is False
    assert proof.status == RecoveryProof.Status.EXPIRED
    assert "checks" not in proof.evidence or proof.evidence["checks"] == 0  # git never ran


def test_the_proof_page_shows_the_branch_and_checks_in_the_worker(client, user, staff,
                                                                   served_repo):
    """The page's button queues a check; the page says so until the worker has run it,
    then shows what it saw."""
    url, work = served_repo
    recovery, proof = branch_proof(user, staff, url)
    page = page_of(proof)
    branch = services.branch_to_push(proof)
    assert branch in client.get(page).text
    browser = QueueingClient()
    response = browser.post(page)
    assert response.status_code == 302 and response["Location"] == page
    shown = browser.get(page).text
    assert "We are checking the repository now" in shown
    assert "Checking the repository…" in shown
    assert run_pending_tasks() >= 1
    shown = browser.get(page).text
    assert "Checking the repository…" not in shown
    assert "The branch is not in the repository yet. Push it, then check again." in shown

    run_git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
    assert browser.post(page).status_code == 302
    assert "Checking the repository…" in browser.get(page).text
    run_pending_tasks()
    shown = browser.get(page).text
    assert "This proof is <strong>satisfied</strong>" in shown
    assert branch not in shown  # shown only while it is needed
