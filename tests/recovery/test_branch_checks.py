"""Repository checks run in the worker, bounded, and only against allowed hosts (DESIGN §5).

Real parts (DESIGN §8): real git, real TCP listeners on loopback, the real task queue. A
"black hole" listener accepts connections and never answers, like the host that once made
nine inline checks hold every web thread (GET / took 18 s); a listener that records
connections shows which addresses Relatch never contacts (ASVS 1.3.6, SSRF).
"""

import socket
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.tasks import TaskResultStatus
from django.test import TestCase
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from relatch.accounts import ratelimit
from relatch.recovery import housekeeping
from relatch.recovery.models import ProofKind, RecoveryProof
from relatch.recovery.proofs import branch_checks, git, services
from tests.conftest import run_pending_tasks
from tests.recovery.proof_rows import asked, committed, make_project
from tests.recovery.test_repo_branch import (  # noqa: F401 - the served_repo fixture
    QueueingClient,
    allow_loopback,
    page_of,
    served_repo,
)

pytestmark = [pytest.mark.django_db]
API = "/api/v1/recovery/status/proofs"
CHECK_TASK = branch_checks.check_branch.module_path


class Listener:
    """A TCP server on 127.0.0.1 that counts connections and never answers (it holds them
    open until it stops)."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self.port = self._socket.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        return len(self.accepted)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.accepted.append(connection)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for connection in self.accepted:
            connection.close()
        self._socket.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def branch_proof(user, staff, url):
    recovery, proof = asked(user, staff, ProofKind.REPO_BRANCH,
                            project=make_project(user, urls={"Source": url}))
    assert proof.evidence["repository"] == url
    return recovery, proof


def holder_of(recovery) -> dict[str, str]:
    from relatch.recovery.requester.links import status_token

    return {"Authorization": f"Bearer {recovery.public_id}.{status_token(recovery)}"}


def queued_checks(proof) -> list[DBTaskResult]:
    return [row for row in DBTaskResult.objects.filter(task_path=CHECK_TASK,
                                                       status=TaskResultStatus.READY)
            if row.args_kwargs["kwargs"].get("proof_id") == proof.pk]


def git_processes_for(port: int) -> list[str]:
    """Live (not zombie) processes whose command line names 127.0.0.1:<port>."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if f"127.0.0.1:{port}" in cmdline and "git" in cmdline and state != "Z":
            found.append(cmdline)
    return found


def run_later_tasks_now() -> None:
    """Make the tasks queued for later due now (the test does not wait their seconds)."""
    DBTaskResult.objects.filter(status=TaskResultStatus.READY).update(run_after=timezone.now())


# -- the attack: a host that never answers -------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "git"])
def test_checks_against_a_silent_host_never_hold_a_web_request(client, user, staff, settings,
                                                               listener, scheme):
    """Nine "check now" clicks against a host that never answers: each web request only
    queues (the black hole saw no connection when they had all returned), the site answers
    meanwhile, and the one queued check is killed at the hard timeout in the worker, with
    git and its helpers (git-remote-http) gone and the proof still pending."""
    allow_loopback(settings)
    settings.REPOSITORY_CHECK_TIMEOUT = 2
    url = f"{scheme}://127.0.0.1:{listener.port}/sandwich.git"
    recovery, proof = branch_proof(user, staff, url)
    page = page_of(proof)
    for _ in range(9):
        response = QueueingClient().post(page)  # nine browsers; the worker does not run
        assert response.status_code == 302
    api = QueueingClient().post(f"{API}/{proof.pk}/check", headers=holder_of(recovery))
    assert api.status_code == 202 and api.json()["proof"]["checking"] is True
    assert listener.connections == 0  # no web request ran git
    assert len(queued_checks(proof)) == 1  # one check, not ten
    browser = QueueingClient()
    assert browser.get("/").status_code == 200
    assert "Checking the repository…" in browser.get(page).text
    assert listener.connections == 0

    assert run_pending_tasks() >= 1
    proof.refresh_from_db()
    assert listener.connections == 1
    assert proof.status == RecoveryProof.Status.PENDING
    assert proof.evidence["last_result"] == "no answer"
    assert proof.evidence["error"] == "No answer within 2 seconds."
    assert git_processes_for(listener.port) == []
    assert "The repository did not answer." in client.get(page).text


# -- SSRF: which hosts and addresses are ever contacted ------------------------------------


@pytest.mark.parametrize(("hosts", "url", "refusal"), [
    (["github.com"], "https://gitlab.com/alice/sandwich", "not one this Relatch server"),
    (["github.com"], "https://github.com.evil.example/alice/sandwich", "not one this Relatch"),
    (["localhost"], "git://localhost/x.git", "resolves to 127.0.0.1, a loopback address"),
    (["localhost", "127.0.0.1"], "git://localhost/x.git", None),
    (["github.com"], "git://127.0.0.1/x.git", "host 127.0.0.1 is not one"),
    (["github.com", "127.0.0.1"], "git://127.0.0.1:9418/x.git", None),
    (["github.com"], "http://[::1]/x.git", "host ::1 is not one"),
    (["::1"], "http://[::1]:8080/x.git", None),
    (["[::1]"], "http://[::1]:8080/x.git", None),
    (["github.com"], "http://0.0.0.0/x.git", "host 0.0.0.0 is not one"),
    (["github.com"], "http://10.1.2.3/x.git", "host 10.1.2.3 is not one"),
    (["github.com"], "http://169.254.169.254/latest/", "host 169.254.169.254 is not one"),
    (["github.com"], "http://[::ffff:127.0.0.1]/x.git", "is not one"),
    # The mapped form is the IPv4 address: named, it is allowed; a name for it is not.
    (["127.0.0.1"], "http://[::ffff:127.0.0.1]/x.git", None),
    (["::ffff:8.8.8.8"], "https://[::ffff:8.8.8.8]/x.git", None),
    (["2130706433"], "http://2130706433/x.git", "resolves to 127.0.0.1, a loopback address"),
    (["140.82.112.3"], "https://140.82.112.3/alice/sandwich", None),
    (["github.com"], "https://GitHub.com:notaport/x", "invalid port"),
    (["nothing.invalid"], "https://nothing.invalid/x.git", "cannot be resolved"),
    (["github.com"], "ssh://git@github.com/alice/sandwich", "only contacts https://"),
])
def test_which_hosts_relatch_may_contact(settings, hosts, url, refusal):
    """ASVS 1.3.6 (SSRF): the host must be allowlisted, and every address it resolves to
    public unless that very address is named. Only IP literals, localhost and a decimal
    IPv4 name are looked up (the machine has no internet)."""
    settings.REPOSITORY_HOSTS = hosts
    said = git.host_refusal(url)
    if refusal is None:
        assert said is None
    else:
        assert said is not None and refusal in said


@pytest.mark.parametrize("host", ["localhost", "2130706433"])
def test_a_name_for_a_loopback_address_is_never_contacted(user, staff, settings, listener,
                                                          host):
    """A listed name that resolves to 127.0.0.1, which itself is not listed: the worker
    fails the proof with the refusal, and the listener sees no connection."""
    settings.REPOSITORY_HOSTS = ["github.com", host]
    url = f"git://{host}:{listener.port}/sandwich.git"
    _, proof = branch_proof(user, staff, url)
    committed(branch_checks.request_check, proof=proof, by_requester=True)
    proof.refresh_from_db()
    assert listener.connections == 0
    assert proof.status == RecoveryProof.Status.FAILED
    assert proof.evidence["last_result"] == "repository error"
    assert proof.evidence["error"] == (f"The host {host} resolves to 127.0.0.1, a loopback "
                                       "address, which Relatch does not contact.")
    assert "127.0.0.1" not in proof.evidence.get("seen", "")


@pytest.mark.parametrize("scheme", ["http", "git"])
def test_a_host_taken_off_the_list_is_never_contacted(user, staff, settings, listener, scheme):
    """A proof asked for while 127.0.0.1 was allowed; the operator then removed it."""
    allow_loopback(settings)
    _, proof = branch_proof(user, staff, f"{scheme}://127.0.0.1:{listener.port}/sandwich.git")
    settings.REPOSITORY_HOSTS = ["github.com"]
    committed(branch_checks.request_check, proof=proof, by_requester=True)
    proof.refresh_from_db()
    assert listener.connections == 0
    assert proof.status == RecoveryProof.Status.FAILED
    assert proof.evidence["error"] == ("The host 127.0.0.1 is not one this Relatch server "
                                       "checks repositories on.")


def test_a_name_that_does_not_resolve_leaves_the_proof_pending(user, staff, settings):
    """Resolving failed (perhaps for a moment): nothing is contacted, and the proof is not
    failed for it; the error says why, and the periodic pass tries again."""
    settings.REPOSITORY_HOSTS = ["github.com", "nothing.invalid"]
    _, proof = branch_proof(user, staff, "https://nothing.invalid/alice/sandwich.git")
    committed(branch_checks.request_check, proof=proof, by_requester=True)
    proof.refresh_from_db()
    assert proof.status == RecoveryProof.Status.PENDING
    assert proof.evidence["last_result"] == "no answer"
    assert proof.evidence["error"] == "The host nothing.invalid cannot be resolved."


def test_git_is_pinned_to_the_checked_address(settings, listener):
    """DNS rebinding: git is given the address that was checked (curl's resolve list for
    http, the address itself for git://), so its own lookup of the name is never used."""
    settings.REPOSITORY_HOSTS = ["localhost", "127.0.0.1"]
    answer = git.ls_remote(url=f"http://localhost:{listener.port}/x.git", branch="b",
                           timeout=1)
    assert answer.timed_out and listener.connections == 1
    target = git._vet(f"http://localhost:{listener.port}/x.git")
    url, options = git._pinned(f"http://localhost:{listener.port}/x.git", target)
    assert f"http.curloptResolve=localhost:{listener.port}:127.0.0.1" in options
    assert "http.followRedirects=false" in options
    url, _ = git._pinned(f"git://localhost:{listener.port}/x.git", target)
    assert url == f"git://127.0.0.1:{listener.port}/x.git"


# -- limits -------------------------------------------------------------------------------


def test_the_seventh_check_in_an_hour_is_refused(client, user, staff, served_repo):  # noqa: F811
    """Six requester checks of a request an hour; the seventh is refused with when to try
    again, by the page and by the API (429), and queues nothing."""
    url, _ = served_repo
    recovery, proof = branch_proof(user, staff, url)
    page = page_of(proof)
    for _ in range(6):
        response = client.post(page, follow=True)  # the worker runs after each
        assert "We are checking the repository now" in response.text
    proof.refresh_from_db()
    assert proof.evidence["checks"] == 6
    refused = client.post(page, follow=True).text
    assert "You asked for 6 checks in the last hour: try again in 60 minutes." in refused
    api = client.post(f"{API}/{proof.pk}/check", headers=holder_of(recovery))
    assert api.status_code == 429
    assert api.json()["detail"].startswith("You asked for 6 checks in the last hour")
    proof.refresh_from_db()
    assert proof.evidence["checks"] == 6 and "check_queued_at" not in proof.evidence
    assert queued_checks(proof) == []


def test_a_busy_host_defers_the_check_without_failing_it(user, staff, settings, listener):
    """30 checks a minute per host: the next waits for the host, then runs."""
    allow_loopback(settings)
    settings.REPOSITORY_CHECK_TIMEOUT = 1
    _, proof = branch_proof(user, staff, f"git://127.0.0.1:{listener.port}/sandwich.git")
    for _ in range(30):
        ratelimit.hit(scope=branch_checks.HOST_SCOPE, key="127.0.0.1",
                      limit=branch_checks.HOST_LIMIT)
    committed(branch_checks.request_check, proof=proof, by_requester=True)
    proof.refresh_from_db()
    assert listener.connections == 0
    assert proof.status == RecoveryProof.Status.PENDING
    assert proof.evidence["last_result"] == "waiting for the host"
    assert branch_checks.shown(proof).checking  # the page still says "Checking…"
    [later] = queued_checks(proof)
    assert later.run_after > timezone.now()

    ratelimit.reset_all()  # a minute later
    run_later_tasks_now()
    run_pending_tasks()
    proof.refresh_from_db()
    assert listener.connections == 1
    assert proof.evidence["last_result"] == "no answer"
    assert not branch_checks.shown(proof).checking


def test_with_every_slot_taken_the_check_waits_for_one(user, staff, settings, listener):
    """At most REPOSITORY_CHECK_WORKERS checks at once across processes (cache slots)."""
    allow_loopback(settings)
    settings.REPOSITORY_CHECK_WORKERS = 2
    settings.REPOSITORY_CHECK_TIMEOUT = 1
    _, proof = branch_proof(user, staff, f"git://127.0.0.1:{listener.port}/sandwich.git")
    for index in range(2):  # two checks running in other workers
        assert cache.add(branch_checks.SLOT_KEY.format(index), "elsewhere", timeout=60)
    committed(branch_checks.request_check, proof=proof, by_requester=True)
    proof.refresh_from_db()
    assert listener.connections == 0
    assert branch_checks.shown(proof).checking
    [later] = queued_checks(proof)
    assert later.run_after > timezone.now()

    cache.delete(branch_checks.SLOT_KEY.format(1))  # one of them ends
    run_later_tasks_now()
    run_pending_tasks()
    proof.refresh_from_db()
    assert listener.connections == 1
    assert proof.evidence["last_result"] == "no answer"
    assert cache.get(branch_checks.SLOT_KEY.format(1)) is None  # released again
    assert cache.get(branch_checks.SLOT_KEY.format(0)) == "elsewhere"


def test_a_closed_proof_takes_no_check(user, staff, settings):
    allow_loopback(settings)
    _, proof = branch_proof(user, staff, "git://127.0.0.1:1/sandwich.git")
    RecoveryProof.objects.filter(pk=proof.pk).update(status=RecoveryProof.Status.FAILED)
    with pytest.raises(branch_checks.ProofError, match="This proof is failed"):
        branch_checks.request_check(proof=proof, by_requester=True)
    assert queued_checks(proof) == []


# -- the periodic pass ----------------------------------------------------------------------


def passes_without_the_worker() -> housekeeping.PassReport:
    """One periodic pass, committed (its tasks are queued), the worker not run."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return housekeeping.run_pass()


def test_the_periodic_pass_queues_checks_and_runs_no_git(user, staff, settings, listener):
    """The pass expires what is due (no git) and queues one check per pending branch proof,
    never two; git runs in the worker."""
    allow_loopback(settings)
    settings.REPOSITORY_CHECK_TIMEOUT = 1
    recovery, proof = branch_proof(user, staff, f"git://127.0.0.1:{listener.port}/a.git")
    expired = committed(services.request_proof, recovery=recovery, kind=ProofKind.REPO_BRANCH,
                        staff=staff, project=make_project(user, "other", urls={
                            "Source": f"git://127.0.0.1:{listener.port}/o.git"}))
    RecoveryProof.objects.filter(pk=expired.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1))
    report = passes_without_the_worker()
    assert (report.branches_checked, report.branches_expired) == ([proof.pk], [expired.pk])
    expired.refresh_from_db()
    assert expired.status == RecoveryProof.Status.EXPIRED
    assert passes_without_the_worker().branches_checked == [proof.pk]
    assert len(queued_checks(proof)) == 1  # still queued: not queued twice
    assert listener.connections == 0  # the pass itself ran no git

    run_pending_tasks()
    proof.refresh_from_db()
    assert listener.connections == 1
    assert proof.evidence["last_result"] == "no answer"
