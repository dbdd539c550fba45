"""Domain checks over RDAP (issue 17): an address whose domain lapsed, or was registered again
after the address was verified, is unverified; a failed lookup changes nothing.

Every lookup goes to a real HTTP server the test runs on loopback (``RdapServer``), named by
RELATCH_RDAP_BOOTSTRAP as a registry's server would be named by IANA's bootstrap file; nothing
here reaches the internet. Time moves through timestamps (the pass's ``now``, a row's
``next_check_at``, a queued task's ``run_after``), never by sleeping.
"""

import io
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import TestCase
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from relatch.accounts.emails.domains import rdap
from relatch.accounts.emails.domains.checks import CHECK_EVERY, run_domain_checks
from relatch.accounts.emails.domains.tasks import (
    PASS_EVERY,
    check_email_domains,
    ensure_domain_check_scheduled,
    next_pass_at,
)
from relatch.accounts.models import Email, EmailDomain, User, UserSession
from relatch.audit.models import EventKind, SecurityEvent
from relatch.recovery.models import ProofKind
from relatch.recovery.proofs import services as proof_services
from relatch.recovery.proofs.evidence import verified_account_emails
from relatch.recovery.proofs.views import proof_page_url
from relatch.recovery.tasks import recovery_tick
from tests.conftest import run_pending_tasks, sign_in
from tests.mfa.factor_rows import add_app
from tests.recovery.proof_rows import asked, committed

pytestmark = pytest.mark.django_db

VERIFIED_LONG_AGO = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)
SUBJECT = "Relatch no longer trusts an address of your account"
UNTRUSTED = "Relatch no longer trusts this address:"
AGAIN = "Verify it again if it is still yours."


# --- the loopback RDAP server --------------------------------------------------------------

@dataclass
class Answer:
    """What the server says to one GET: a JSON body (dict) or raw bytes, with a status."""

    body: Any = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # accept the request and say nothing until the test ends


def domain_json(name: str, *, status: tuple[str, ...] = ("active",),
                registered: str = "2015-03-01T10:00:00Z",
                expires: str = "2035-03-01T10:00:00Z") -> dict[str, Any]:
    """An RFC 9083 domain object, as a registry sends it (ldhName in upper case)."""
    return {
        "rdapConformance": ["rdap_level_0"],
        "objectClassName": "domain",
        "ldhName": name.upper(),
        "status": list(status),
        "events": [
            {"eventAction": "registration", "eventDate": registered},
            {"eventAction": "expiration", "eventDate": expires},
            {"eventAction": "last update of RDAP database", "eventDate": "2026-12-01T00:00:00Z"},
        ],
    }


class RdapServer(ThreadingHTTPServer):
    """A registry's RDAP server and IANA's bootstrap file, on 127.0.0.1."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers: dict[str, Answer] = {}
        self.requests: list[str] = []
        self.release = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    @property
    def bootstrap_url(self) -> str:
        return self.base + "bootstrap/dns.json"

    def bootstrap(self) -> dict[str, Any]:
        return {"version": "1.0", "publication": "2026-11-30T20:00:01Z",
                "services": [[["net", "com"], [self.base + "rdap/"]],
                             [["org"], [self.base + "rdap"]]]}

    def domain_requests(self) -> list[str]:
        return [p.rsplit("/", 1)[1] for p in self.requests if "/domain/" in p]

    def answer(self, name: str, body: Any = None, **kwargs: Any) -> None:
        self.answers[name] = Answer(body=domain_json(name) if body is None else body, **kwargs)


class _Handler(BaseHTTPRequestHandler):
    server: RdapServer

    def do_GET(self) -> None:  # noqa: N802  (the name http.server calls)
        self.server.requests.append(self.path)
        if self.path == "/bootstrap/dns.json":
            answer = self.server.answers.get("bootstrap") or Answer(self.server.bootstrap())
        elif "/domain/" in self.path:
            name = self.path.rsplit("/", 1)[1].lower()
            if self.path.startswith("/elsewhere/"):  # where a redirect may lead
                name = f"elsewhere:{name}"
            answer = self.server.answers.get(name) or Answer(
                {"errorCode": 404, "title": "Not Found"}, status=404)
        else:
            answer = Answer(b"no such page", status=404)
        if answer.hang:
            self.server.release.wait(10)
            return
        body = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/rdap+json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def registry(settings: Any, tmp_path: Path) -> Iterator[RdapServer]:
    server = RdapServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    settings.RDAP_BOOTSTRAP = server.bootstrap_url
    settings.RDAP_TIMEOUT = 1
    settings.DATA_DIR = tmp_path  # the cached bootstrap file goes here
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


# --- helpers -------------------------------------------------------------------------------

def add_verified(user: User, address: str, *, verified_at: datetime = VERIFIED_LONG_AGO,
                 primary: bool = False) -> Email:
    return Email.objects.create(user=user, address=address, verified=True,
                                verified_at=verified_at, primary=primary)


def check(*args: str) -> str:
    """``relatch check_email_domains ARGS`` as an operator runs it: its transactions commit
    (mail is queued) and the worker then delivers the mail. Returns what it printed."""
    out = io.StringIO()
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("check_email_domains", *args, stdout=out)
    run_pending_tasks()
    return out.getvalue()


def check_at(now: datetime) -> Any:
    """A pass that believes it is ``now`` (time moved by timestamp, not by sleeping)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        report = run_domain_checks(now=now)
    run_pending_tasks()
    return report


def near(moment: datetime | None, expected: datetime, slack: timedelta = timedelta(minutes=2)
         ) -> bool:
    return moment is not None and abs(moment - expected) < slack


def page_text(response: Any) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.fixture
def alice_reborn(user: User) -> Email:
    """alice: alice@example.org (verified now) and alice@reborn.net, verified in 2024."""
    return add_verified(user, "alice@reborn.net")


# --- what gets unverified ------------------------------------------------------------------

def test_a_domain_registered_again_after_verification_unverifies_its_address(
        registry, user, alice_reborn, client, mail):
    """The resurrection PyPI's check cannot see: reborn.net was registered on 2025-06-01, after
    alice verified alice@reborn.net in January 2024, so its new holder gets her mail."""
    registry.answer("reborn.net", domain_json("reborn.net", registered="2025-06-01T08:00:00Z"))
    out = check()

    alice_reborn.refresh_from_db()
    assert not alice_reborn.verified and alice_reborn.verified_at is None
    assert alice_reborn.unverified_reason.startswith(
        "its domain reborn.net was registered again on 2025-06-01, after the address was "
        "verified on 2024-01-10")
    assert user.emails.get(address="alice@example.org").verified  # never looked up
    assert registry.domain_requests() == ["reborn.net"]
    assert "reborn.net: checked" in out and "unverified 1: alice@reborn.net" in out

    event = SecurityEvent.objects.get(user=user, kind=EventKind.EMAIL_UNVERIFIED)
    assert event.details["address"] == "alice@reborn.net"
    assert "registered again" in event.details["reason"]

    # The other address hears it; the untrusted one hears nothing more.
    told = mail.last("alice@example.org")
    assert told["Subject"] == SUBJECT
    text = " ".join(mail.text(told).split())
    assert "alice@reborn.net" in text and "registered again on 2025-06-01" in text
    assert "alice@reborn.net" in mail.html(told)
    assert mail.to("alice@reborn.net") == []

    row = EmailDomain.objects.get(name="reborn.net")
    assert row.statuses == ["active"] and row.failures == 0
    assert row.registered_at == datetime(2025, 6, 1, 8, tzinfo=UTC)
    assert row.expires_at == datetime(2035, 3, 1, 10, tzinfo=UTC)
    assert near(row.checked_at, timezone.now()) and near(row.next_check_at,
                                                         timezone.now() + CHECK_EVERY)

    # The account page says why and what to do, with the button to verify it again.
    sign_in(client, user)
    page = page_text(client.get("/account/emails/"))
    assert (f"{UNTRUSTED} its domain reborn.net was registered again on 2025-06-01" in page)
    assert AGAIN in page and "Send the verification link again" in page
    overview = page_text(client.get("/account/"))
    assert "Relatch no longer trusts alice@reborn.net" in overview
    assert len(registry.domain_requests()) == 1  # pages never look anything up


@pytest.mark.parametrize(("status", "shown"), [
    (("redemption period", "client hold"), "redemption period"),
    (("redemptionPeriod",), "redemption period"),  # EPP spelling from a lax server
    (("pending delete",), "pending delete"),
    (("pending restore",), "pending restore"),
    (("inactive",), "inactive"),
])
def test_a_lapsed_domain_unverifies_its_address(registry, make_user, status, shown):
    bob = make_user(username="bob", email="bob@lapsed.org")
    registry.answer("lapsed.org", domain_json("lapsed.org", status=status))
    check()
    email = bob.emails.get()
    assert not email.verified
    assert email.unverified_reason.startswith(
        f"its domain lapsed.org is listed by its registry as \u201c{shown}\u201d")


def test_an_expiration_date_in_the_past_unverifies_its_address(registry, make_user):
    bob = make_user(username="bob", email="bob@expired.net")
    registry.answer("expired.net", domain_json("expired.net", expires="2026-11-02T00:00:00Z"))
    check()
    assert bob.emails.get().unverified_reason == (
        "the registration of its domain expired.net expired on 2026-11-02, so whoever "
        "registers the domain next would receive its mail")


def test_a_domain_that_is_fine_changes_nothing(registry, make_user, mail):
    erin = make_user(username="erin", email="erin@steady.net")
    registry.answer("steady.net")
    out = check()
    assert erin.emails.get().verified
    assert not SecurityEvent.objects.filter(kind=EventKind.EMAIL_UNVERIFIED).exists()
    assert mail.messages == []
    assert "steady.net: checked — status active; registered 2015-03-01; expires 2035-03-01" in out
    assert "Checked 1 domains, 0 failed (retried later); unverified 0 addresses." in out


def test_an_address_on_a_subdomain_is_judged_by_the_registered_domain(registry, make_user):
    """mail.corp.net is not registered itself: corp.net, which holds it, is."""
    bob = make_user(username="bob", email="bob@mail.corp.net")
    registry.answer("corp.net", domain_json("corp.net", status=("pending delete",)))
    out = check()
    assert registry.domain_requests() == ["mail.corp.net", "corp.net"]
    assert "its domain corp.net is listed" in bob.emails.get().unverified_reason
    assert "(the record of corp.net)" in out


def test_only_verified_addresses_are_looked_up(registry, make_user):
    make_user(username="newbie", email="newbie@typo.net", verified=False)
    assert "Checked 0 domains" in check()
    assert registry.requests == [] and not EmailDomain.objects.exists()


# --- an account left with no verified address ---------------------------------------------

def test_an_account_left_without_a_verified_address_keeps_working_and_is_asked_for_one(
        registry, make_user, client, mail):
    bob = make_user(username="bob", email="bob@lapsed.org")
    add_app(bob)
    sign_in(client, bob)
    registry.answer("lapsed.org", domain_json("lapsed.org", status=("redemption period",)))
    check()
    assert mail.messages == []  # nobody verified is left to tell
    assert SecurityEvent.objects.filter(user=bob, kind=EventKind.EMAIL_UNVERIFIED).exists()
    # Its session and its factor are still there, and its pages open (no lock-out).
    assert UserSession.objects.filter(user=bob).exists() and hasattr(bob, "totp_device")
    overview = client.get("/account/")
    assert overview.status_code == 200
    assert "Add an email address now: Relatch no longer trusts yours" in page_text(overview)
    page = page_text(client.get("/account/emails/"))
    assert "Add an address you control now." in page and "Add the address" in page
    assert f"{UNTRUSTED} its domain lapsed.org is listed by its registry" in page
    assert "Mistyped it?" not in page

    # It adds an address, whose link verifies it: the account has a verified address again.
    response = client.post("/account/emails/add/", {"address": "bob@new-home.example"})
    assert response.status_code == 302
    link = mail.link_to(mail.last("bob@new-home.example"), "/account/emails/verify/")
    assert client.post(link).status_code == 302
    assert bob.emails.get(address="bob@new-home.example").verified
    assert "Add an email address now" not in page_text(client.get("/account/"))


def test_a_new_account_that_never_verified_is_still_sent_to_verify(client, make_user):
    """The exception is only for addresses Relatch unverified, not for sign-up typos."""
    typo = make_user(username="typo", email="typo@exampel.org", verified=False)
    sign_in(client, typo)
    assert client.get("/account/")["Location"] == "/account/emails/"
    response = client.post("/account/emails/add/", {"address": "typo@example.org"})
    assert response["Location"] == "/account/emails/" and typo.emails.count() == 1
    assert "Mistyped it?" in page_text(client.get("/account/emails/"))


# --- what an unverified address can no longer do ------------------------------------------

@pytest.fixture
def unverified(registry, user, alice_reborn) -> Email:
    registry.answer("reborn.net", domain_json("reborn.net", registered="2025-06-01T08:00:00Z"))
    check()
    alice_reborn.refresh_from_db()
    assert not alice_reborn.verified
    return alice_reborn


def test_a_password_reset_to_the_unverified_address_sends_nothing(unverified, client, mail):
    mail.clear()
    client.post("/account/reset/", {"identifier": "alice@reborn.net"})
    run_pending_tasks()
    assert mail.messages == []
    assert not SecurityEvent.objects.filter(kind=EventKind.PASSWORD_RESET_REQUESTED).exists()


def test_a_recovery_proof_cannot_use_the_unverified_address(unverified, user, make_user,
                                                             client, mail):
    staff = make_user(username="dana", is_staff=True)
    _, proof = asked(user, staff, ProofKind.ACCOUNT_EMAIL)
    assert [e.address for e in verified_account_emails(user)] == ["alice@example.org"]
    page = page_text(client.get(proof_page_url(proof).removeprefix("http://testserver")))
    assert "a***@example.org" in page and "a***@reborn.net" not in page
    mail.clear()
    with pytest.raises(proof_services.ProofError, match="verified addresses"):
        committed(proof_services.send_account_email_code, proof=proof,
                  address="alice@reborn.net")
    assert mail.messages == []


def test_verifying_the_address_again_trusts_it_again(unverified, user, client, mail):
    """Its owner still holds it (the domain is theirs again, or never changed hands): one link
    verifies it, and the registration before that verification no longer counts."""
    sign_in(client, user)
    client.post(f"/account/emails/{unverified.pk}/resend/")
    link = mail.link_to(mail.last("alice@reborn.net"), "/account/emails/verify/")
    assert client.post(link).status_code == 302
    unverified.refresh_from_db()
    assert unverified.verified and (unverified.unverified_at, unverified.unverified_reason) == (
        None, "")
    assert UNTRUSTED not in page_text(client.get("/account/emails/"))
    report = check_at(timezone.now() + CHECK_EVERY)
    assert report.count("checked") == 1 and report.unverified == 0


def test_the_bootstrap_setting_comes_from_the_environment(tmp_path):
    from tests.test_settings import computed

    assert computed(tmp_path, {}, "RDAP_BOOTSTRAP") == {
        "RDAP_BOOTSTRAP": "https://data.iana.org/rdap/dns.json"}
    assert computed(tmp_path, {"RELATCH_RDAP_BOOTSTRAP": "/srv/rdap/dns.json"},
                    "RDAP_BOOTSTRAP") == {"RDAP_BOOTSTRAP": "/srv/rdap/dns.json"}


# --- domains that are never looked up ------------------------------------------------------

def test_a_large_providers_address_is_never_looked_up(registry, make_user):
    make_user(username="carol", email="carol@gmail.com")
    make_user(username="dave", email="dave@mail.yandex.ru")
    out = check()
    assert registry.requests == []  # not even the bootstrap file
    assert not EmailDomain.objects.exists()
    assert "2 never looked up" in out
    assert "never looked up" in check("--domain", "gmail.com")
    assert registry.requests == []


def test_one_domain_by_hand(registry, make_user):
    make_user(username="erin", email="erin@steady.net")
    registry.answer("steady.net")
    check()
    assert "steady.net: checked" in check("--domain", "STEADY.net")  # even though not due
    assert registry.domain_requests() == ["steady.net", "steady.net"]
    assert "no verified address uses it" in check("--domain", "nobody.net")
    assert registry.domain_requests() == ["steady.net", "steady.net"]


# --- failures change nothing ---------------------------------------------------------------

FAILURES = {
    "HTTP 500": ("broken.net", Answer(b"Internal Server Error", status=500), "HTTP 500"),
    "HTTP 429": ("broken.net", Answer(b"slow down", status=429, headers={"Retry-After": "7200"}),
                 "HTTP 429"),
    "timeout": ("broken.net", Answer(hang=True), "did not answer within 1 s"),
    "not JSON": ("broken.net", Answer(b"<html>maintenance</html>"), "not JSON"),
    "not RDAP": ("broken.net", Answer({"hello": "world"}), "not a domain object"),
    "another domain": ("broken.net", Answer(domain_json("other.net", status=("inactive",))),
                       "about 'OTHER.NET', not 'broken.net'"),
    "bad date": ("broken.net", Answer(domain_json("broken.net", registered="yesterday")),
                 "is not a date"),
    "too large": ("broken.net", Answer(b" " * (rdap.ANSWER_MAX_BYTES + 1)),
                  "larger than 1048576 bytes"),
    "not registered": ("broken.net", None, "has no record of broken.net"),
    "unknown TLD": ("broken.dev", None, "no RDAP server for .dev"),
    "redirect to http": ("broken.net", Answer(status=302, headers={
        "Location": "http://rdap.example.net/domain/broken.net"}), "https only"),
}


@pytest.mark.parametrize("case", FAILURES)
def test_a_failed_lookup_changes_nothing_and_is_retried(registry, make_user, mail, case, caplog):
    domain, answer, error = FAILURES[case]
    bob = make_user(username="bob", email=f"bob@{domain}")
    if answer is not None:
        registry.answers[domain] = answer
    before = timezone.now()
    out = check()

    email = bob.emails.get()
    assert email.verified and email.unverified_reason == ""
    assert not SecurityEvent.objects.filter(kind=EventKind.EMAIL_UNVERIFIED).exists()
    assert mail.messages == []
    row = EmailDomain.objects.get(name=domain)
    assert (row.failures, row.checked_at, row.statuses) == (1, None, [])
    assert error in row.last_error
    retry = timedelta(hours=2) if case == "HTTP 429" else timedelta(hours=1)  # Retry-After
    assert near(row.next_check_at, before + retry)
    assert f"{domain}: failed" in out and "nothing changed" in out
    assert any(f"RDAP lookup of {domain} failed" in r.getMessage() for r in caplog.records)


def test_retries_back_off_then_a_good_answer_resets_them(registry, make_user):
    make_user(username="bob", email="bob@flaky.net")
    registry.answers["flaky.net"] = Answer(b"down", status=503)
    now = timezone.now()
    delays = []
    for _ in range(10):
        check_at(now)
        row = EmailDomain.objects.get()
        delays.append(row.next_check_at - now)
        assert check_at(now + timedelta(minutes=59)).results == []  # not due again yet
        now = row.next_check_at
    hours = [d / timedelta(hours=1) for d in delays]
    assert hours == [1, 2, 4, 8, 16, 32, 64, 128, 168, 168]  # doubling, at most 7 days
    assert EmailDomain.objects.get().failures == 10

    registry.answer("flaky.net")
    check_at(now)
    row = EmailDomain.objects.get()
    assert (row.failures, row.last_error, row.checked_at) == (0, "", now)
    assert row.next_check_at == now + CHECK_EVERY


def test_one_refusing_server_is_left_alone_for_the_rest_of_the_pass(registry, make_user):
    for name in ["one", "two", "three"]:
        make_user(username=name, email=f"{name}@{name}.net")
        registry.answers[f"{name}.net"] = Answer(b"", status=429)
    report = check_at(timezone.now())
    assert [r.outcome for r in report.results] == ["failed"] * 3
    assert len(registry.domain_requests()) == 1  # the first 429 stopped the rest
    assert EmailDomain.objects.filter(failures=1).count() == 3


# --- at most once every 7 days; the bootstrap file is cached ------------------------------

def test_a_domain_checked_less_than_7_days_ago_is_not_checked_again(registry, make_user):
    make_user(username="erin", email="erin@steady.net")
    registry.answer("steady.net")
    now = timezone.now()
    assert check_at(now).count("checked") == 1
    for later in [timedelta(hours=1), timedelta(days=3), timedelta(days=6, hours=23)]:
        report = check_at(now + later)
        assert report.results == [] and report.not_due == 1
    assert registry.domain_requests() == ["steady.net"]
    assert check_at(now + timedelta(days=7)).count("checked") == 1
    assert registry.domain_requests() == ["steady.net", "steady.net"]


def test_the_bootstrap_file_is_cached_for_a_week(registry, make_user, tmp_path):
    make_user(username="erin", email="erin@steady.net")
    registry.answer("steady.net")
    now = timezone.now()
    for days in [0, 3, 8]:  # fetched, then cached, then more than a week old: fetched again
        EmailDomain.objects.update(next_check_at=now)
        assert check_at(now + timedelta(days=days)).count("checked") == 1
    assert registry.requests.count("/bootstrap/dns.json") == 2
    cached = json.loads((tmp_path / "rdap" / "dns-bootstrap.json").read_text())
    assert cached["source"] == registry.bootstrap_url
    assert cached["bootstrap"]["services"][0][0] == ["net", "com"]

    # A failed refresh keeps the cached copy; the lookups go on.
    registry.answers["bootstrap"] = Answer(b"", status=500)
    EmailDomain.objects.update(next_check_at=now)
    assert check_at(now + timedelta(days=30)).count("checked") == 1
    assert registry.requests.count("/bootstrap/dns.json") == 3


def test_without_any_bootstrap_every_due_domain_fails_and_is_retried(registry, make_user):
    make_user(username="erin", email="erin@steady.net")
    registry.answers["bootstrap"] = Answer({"services": "nope"})
    report = check_at(timezone.now())
    assert report.count("failed") == 1
    assert "no list of services" in EmailDomain.objects.get().last_error


def allowed(url: str) -> bool:
    with rdap.RdapClient() as client:
        return client.allowed(url)


def test_plain_http_only_to_loopback_and_only_for_a_loopback_bootstrap(settings, registry,
                                                                        tmp_path, make_user):
    assert allowed("http://127.0.0.1:9/rdap/") and allowed("http://[::1]:9/rdap/")
    assert not allowed("http://rdap.example.net/")
    assert allowed("https://rdap.example.net/")
    settings.RDAP_BOOTSTRAP = "https://data.iana.org/rdap/dns.json"
    assert not allowed("http://127.0.0.1:9/rdap/")
    assert not allowed("ftp://rdap.example.net/")

    # A bootstrap file naming only an http server: nothing to ask over https.
    path = tmp_path / "dns.json"
    path.write_text(json.dumps(registry.bootstrap()))
    settings.RDAP_BOOTSTRAP = str(path)
    make_user(username="erin", email="erin@steady.net")
    check_at(timezone.now())
    assert "no https RDAP server for .net" in EmailDomain.objects.get().last_error
    assert registry.requests == []


def test_a_redirect_to_loopback_is_followed(registry, make_user):
    bob = make_user(username="bob", email="bob@moved.net")
    registry.answers["moved.net"] = Answer(status=301, headers={
        "Location": registry.base + "elsewhere/domain/moved.net"})
    registry.answers["elsewhere:moved.net"] = Answer(
        domain_json("moved.net", status=("pending delete",)))
    check()
    assert registry.requests[-2:] == ["/rdap/domain/moved.net", "/elsewhere/domain/moved.net"]
    assert "pending delete" in bob.emails.get().unverified_reason


# --- the daily pass ------------------------------------------------------------------------

def test_the_recovery_tick_queues_one_pass_a_day(registry):
    first, second = recovery_tick.call(), recovery_tick.call()
    assert (first["domain_check_queued"], second["domain_check_queued"]) == (True, False)
    waiting = DBTaskResult.objects.get(task_path=check_email_domains.module_path)
    assert near(waiting.run_after, timezone.now() + PASS_EVERY)


def test_a_pass_after_a_failure_comes_an_hour_later_not_a_day(registry, make_user):
    now = timezone.now()
    assert next_pass_at(now) == now + PASS_EVERY
    make_user(username="bob", email="bob@broken.net")
    registry.answers["broken.net"] = Answer(b"", status=500)
    check_at(now)
    assert next_pass_at(now) == now + timedelta(hours=1)
    EmailDomain.objects.update(next_check_at=now + timedelta(minutes=5))
    assert next_pass_at(now) == now + timedelta(hours=1)  # never sooner than an hour
    EmailDomain.objects.update(next_check_at=now + timedelta(days=3))
    assert next_pass_at(now) == now + PASS_EVERY


def test_the_queued_pass_runs_when_its_time_comes(registry, make_user, mail):
    bob = make_user(username="bob", email="bob@lapsed.org")
    add_verified(bob, "bob@example.org")
    registry.answer("lapsed.org", domain_json("lapsed.org", status=("redemption period",)))
    assert ensure_domain_check_scheduled()
    assert not ensure_domain_check_scheduled()  # one waiting pass at a time
    run_pending_tasks()
    assert registry.requests == []  # not before its time

    # A day passes: the queued pass is due.
    DBTaskResult.objects.filter(task_path=check_email_domains.module_path).update(
        run_after=timezone.now() - timedelta(seconds=1))
    assert run_pending_tasks() >= 1
    done = DBTaskResult.objects.get(task_path=check_email_domains.module_path)
    assert done.return_value == {"checked": 1, "failed": 0, "unverified": 1, "not_due": 0,
                                 "not_looked_up": 1}
    assert not bob.emails.get(address="bob@lapsed.org").verified
    assert mail.last("bob@example.org")["Subject"] == SUBJECT
