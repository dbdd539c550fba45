"""Mailed links under a path prefix (RELATCH_BASE_URL=http://testserver/pypi): each carries
the prefix exactly once and works when followed, whether the link was made in a request
(where ``reverse`` already carries the prefix) or in the worker (where it does not).

The browser is Django's test client behind ``relatch.web.path_prefix.PathPrefix``, as
``relatch serve`` runs the site under a path: each request gets SCRIPT_NAME from the setting
and the script prefix Django's own WSGI handler would set."""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache
from django.core.handlers.wsgi import get_script_name
from django.http import HttpResponse
from django.test import Client, RequestFactory, TestCase
from django.urls import set_script_prefix

from relatch.accounts.devices import cookie_name, device_id_from_request, remember_device
from relatch.accounts.models import Email, KnownDevice, User
from relatch.mfa.selfservice.tokens import cancel_link
from relatch.recovery.models import ProofKind, RecoveryRequest
from relatch.recovery.proofs.queries import requester_proof
from relatch.recovery.proofs.views import proof_page_url
from relatch.recovery.requester.services import desk_url
from relatch.web.path_prefix import PathPrefix
from tests.conftest import PASSWORD, Mailbox, run_pending_tasks, sign_in
from tests.index.project_rows import make_project
from tests.mfa.factor_rows import add_app
from tests.mfa.signin_flow import app_code, enrol_app
from tests.recovery.proof_rows import asked

pytestmark = pytest.mark.django_db

HOST = "http://testserver"


@dataclass(frozen=True)
class Site:
    """The site under ``prefix``; ``worker_alone``: mail is made in a process of its own
    (script prefix "/"), else in the thread that just served the request (its prefix)."""

    prefix: str
    worker_alone: bool

    @property
    def base_url(self) -> str:
        return HOST + self.prefix

    def at(self, path: str) -> str:
        """``path`` (below the site) as the browser asks for it."""
        return self.prefix + path


class _BehindPrefix:
    """The test client's handler behind PathPrefix (the handler takes only an environ)."""

    def __init__(self, handler: Callable[[dict[str, Any]], Any], prefix: str) -> None:
        self.handler, self.prefix = handler, prefix
        self.app = PathPrefix(self._django, prefix)
        self.response: Any = None

    def _django(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        set_script_prefix(get_script_name(environ))  # as django's WSGIHandler does
        self.response = self.handler(environ)
        return []

    def __call__(self, environ: dict[str, Any]) -> Any:
        self.app(environ, lambda *args: None)
        return self.response


class Browser(Client):
    """A browser of ``site``: each request ends as a real one (its on-commit work runs), then
    the worker runs the mail tasks."""

    def __init__(self, site: Site, **defaults: Any) -> None:
        super().__init__(**defaults)
        self.site = site
        if site.prefix:
            self.handler = _BehindPrefix(self.handler, site.prefix)  # type: ignore[assignment]

    def request(self, **request: Any) -> Any:
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = super().request(**request)
        if self.site.worker_alone:
            set_script_prefix("/")
        run_pending_tasks()
        return response


@pytest.fixture(params=[("", False), ("/pypi", False), ("/pypi", True)],
                ids=["root", "pypi-mail-made-after-a-request", "pypi-mail-made-by-a-worker"])
def site(request: pytest.FixtureRequest, settings: Any) -> Iterator[Site]:
    prefix, worker_alone = request.param
    # As relatch.settings derives them from RELATCH_BASE_URL.
    settings.BASE_URL, settings.BASE_PATH = HOST + prefix, prefix
    settings.STATIC_URL = f"{prefix}/static/"
    settings.SESSION_COOKIE_PATH = settings.CSRF_COOKIE_PATH = prefix or "/"
    cache.clear()  # rate limits and failure counters of other tests
    yield Site(prefix, worker_alone)
    # Django's handler leaves the last request's prefix on the thread: the next test's
    # reverse() must not inherit /pypi.
    set_script_prefix("/")
    cache.clear()


@pytest.fixture
def browser(site: Site) -> Browser:
    return Browser(site, HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")


def mailed_link(mail: Mailbox, message: EmailMessage, site: Site, below: str) -> str:
    """The path of ``message``'s link to ``below`` (a path under the site), after checking
    that the link is absolute, on the site's host and carries the prefix exactly once."""
    urls = [url for url in mail.links(message) if below in url]
    assert urls, mail.text(message)
    for url in urls:
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == HOST, url
        assert parts.path.startswith(site.at(below)), url
        if site.prefix:
            assert parts.path.count(site.prefix + "/") == 1, url
        assert url in mail.html(message)
    return urlsplit(urls[0]).path


def test_the_signup_verification_link(browser: Browser, site: Site, mail: Mailbox) -> None:
    response = browser.post(site.at("/account/register/"), {
        "username": "bob", "name": "Bob", "email": "bob@example.net", "password": PASSWORD,
        "password_again": PASSWORD, "homepage": "",
    })
    assert response.status_code == 302
    assert response["Location"] == site.at("/account/register/check-your-mail/")
    link = mailed_link(mail, mail.last("bob@example.net"), site, "/account/emails/verify/")
    assert browser.get(link).status_code == 200
    done = browser.post(link)
    assert (done.status_code, done["Location"]) == (302, site.at("/account/emails/"))
    assert Email.objects.get(address="bob@example.net").verified


def test_the_password_reset_link(browser: Browser, site: Site, mail: Mailbox, user: User
                                 ) -> None:
    assert browser.post(site.at("/account/reset/"), {"identifier": "alice"}).status_code == 200
    link = mailed_link(mail, mail.last("alice@example.org"), site, "/account/reset/")
    opened = browser.get(link)
    assert opened.status_code == 302
    assert opened["Location"].startswith(site.at("/account/reset/"))
    new = "a brand new passphrase for alice"
    done = browser.post(opened["Location"], {"new_password1": new, "new_password2": new})
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)


def test_the_new_device_confirmation_link(browser: Browser, site: Site, mail: Mailbox,
                                          user: User) -> None:
    secret = enrol_app(user)
    browser.post(site.at("/account/login/"), {"identifier": "alice", "password": PASSWORD})
    mail.clear()
    held = browser.post(site.at("/account/login/second-step/app/"),
                        {"code": app_code(user, secret)})
    assert (held.status_code, held["Location"]) == (302, site.at("/account/login/check-mail/"))
    link = mailed_link(mail, mail.last("alice@example.org"), site, "/account/login/confirm/")
    assert browser.get(link).status_code == 200
    done = browser.post(link)
    assert done.status_code == 302
    assert done["Location"].startswith(site.at("/account/"))
    assert KnownDevice.objects.get(user=user).confirmed
    # The device cookie stays on the site's path, as the session cookie does.
    assert done.cookies["relatch-device"]["path"] == (site.prefix or "/")


CONTACT_CODE = re.compile(r"Your code: (\d{6})")


def test_a_recovery_status_link(browser: Browser, site: Site, mail: Mailbox, user: User
                                ) -> None:
    contact = "alice.new@example.net"
    asked = browser.post(site.at("/recovery/request/new/"), {
        "username": "alice", "contact_email": contact, "still_has": ["password", "email"],
        "description": "My phone with the authenticator app was stolen.", "agreed": "on",
        "acknowledged": "on",
    })
    assert (asked.status_code, asked["Location"]) == (302, site.at("/recovery/request/confirm/"))
    code = CONTACT_CODE.search(mail.text(mail.last(contact)))
    assert code, mail.text(mail.last(contact))
    filed = browser.post(site.at("/recovery/request/confirm/"), {"code": code[1]})
    assert (filed.status_code, filed["Location"]) == (302, site.at("/recovery/request/filed/"))
    [notice] = [m for m in mail.to(contact) if "is filed" in str(m["Subject"])]
    link = mailed_link(mail, notice, site, "/recovery/request/status/")
    page = browser.get(link)
    assert page.status_code == 200
    assert RecoveryRequest.objects.get().public_id in page.content.decode()
    # The owner's "this wasn't me" link, made by the same builder.
    owner_notice = mail.last("alice@example.org")
    mailed_link(mail, owner_notice, site, "/recovery/request/not-me/")


def test_the_invitation_mails_paths_made_in_the_request(
    browser: Browser, site: Site, mail: Mailbox, user: User, make_user: Any
) -> None:
    """A context path (``{{ base_url }}{{ setup_path }}``) is made in the inviter's request;
    its ``next`` is followed from the host's root, so it keeps the prefix."""
    add_app(user)
    make_project("demo", owners=(user,))
    make_user(username="carol")
    sign_in(browser, user)
    sent = browser.post(site.at("/manage/project/demo/invite/"),
                        {"username": "carol", "kind": "maintainer"})
    assert sent.status_code == 302
    message = mail.last("carol@example.org")
    mailed_link(mail, message, site, "/manage/invitations/")
    setup = mailed_link(mail, message, site, "/account/two-factor/")
    [url] = [u for u in mail.links(message) if "/account/two-factor/" in u]
    assert urlsplit(url).query == "next=" + site.at("/manage/invitations/").replace("/", "%2F")
    assert browser.get(setup).status_code in (200, 302)


def test_the_api_points_to_the_password_page(browser: Browser, site: Site, user: User) -> None:
    add_app(user)
    sign_in(browser, user, reauthenticated=False)
    refused = browser.post(site.at("/api/v1/account/tokens"), {"name": "ci"},
                           content_type="application/json")
    assert refused.status_code == 403
    url = refused.json()["detail"].removeprefix("Confirm your password first: ")
    assert url == site.base_url + "/account/reauthenticate/"
    assert browser.get(urlsplit(url).path).status_code == 200


@pytest.mark.parametrize("script_prefix", ["/pypi/", "/"])  # in a request, in the worker
def test_links_shown_on_pages_carry_the_prefix_once(
    settings: Any, user: User, make_user: Any, script_prefix: str
) -> None:
    """The links a page shows (vouching, a proof, the desk) or a mail builder makes (the
    self-recovery cancel link), whichever side makes them."""
    settings.BASE_URL, settings.BASE_PATH = HOST + "/pypi", "/pypi"
    staff = make_user(username="dana", is_staff=True)
    recovery, proof = asked(user, staff, ProofKind.CO_OWNER)
    set_script_prefix(script_prefix)
    try:
        made = {
            "vouch": requester_proof(proof).vouch_url,
            "proof": proof_page_url(proof),
            "desk": desk_url(recovery),
            "cancel": cancel_link(recovery_id=recovery.pk),
        }
    finally:
        set_script_prefix("/")
    for name, url in made.items():
        assert url.startswith(HOST + "/pypi/"), (name, url)
        assert url.count("/pypi/") == 1, (name, url)
    assert made["vouch"] == f"{HOST}/pypi/recovery/proof/vouch/{proof.pk}/"


@pytest.mark.parametrize(("base_url", "name", "path"), [
    ("https://example.org", "__Host-relatch-device", "/"),
    # __Host- requires Path=/: under a path the cookie is scoped there, as __Secure-.
    ("https://example.org/pypi", "__Secure-relatch-device", "/pypi"),
    ("http://localhost:8000/pypi", "relatch-device", "/pypi"),
])
def test_the_device_cookie_stays_on_the_sites_path(
    settings: Any, user: User, base_url: str, name: str, path: str
) -> None:
    settings.BASE_URL, settings.BASE_PATH = base_url, urlsplit(base_url).path
    settings.BASE_URL_IS_HTTPS = base_url.startswith("https:")
    response = HttpResponse()
    remember_device(request=RequestFactory().get("/"), response=response, user=user)
    assert cookie_name() == name
    morsel = response.cookies[name]
    assert (morsel["path"], bool(morsel["secure"]), bool(morsel["httponly"])) == (
        path, settings.BASE_URL_IS_HTTPS, True)
    # Read back from a request that carries it.
    request = RequestFactory().get("/", headers={"Cookie": f"{name}={morsel.value}"})
    assert device_id_from_request(request)
