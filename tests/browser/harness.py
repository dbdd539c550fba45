"""What the browser tests drive: a live Relatch and a visitor in Debian's Chromium.

A ``Visitor`` is one person in one browser profile (a Playwright context) on a network of
their own (the server trusts one proxy, and each visitor sends its own X-Forwarded-For, so the
per-IP limits see different people, as in life). Every page the visitor loads must be audited
(``see`` or ``audit``): axe-core finds no serious or critical violation, and the page does not
scroll sideways on a phone-sized screen. At the end of a test, a page loaded but never audited,
a script error, a blocked resource or a content-security-policy violation fails the test.
"""

import itertools
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Response, expect
from tests.conftest import Mailbox
from tests.serving import Server, wait_for

ROOT = Path(__file__).resolve().parents[2]
AXE_JS = ROOT / ".cache/npm/node_modules/axe-core/axe.min.js"
PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1200, "height": 900}
_networks = itertools.count(10)

AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
}"""
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


@dataclass
class Live:
    """A running ``relatch serve`` (own data directory, mail to the loopback SMTP server)."""

    server: Server
    mailbox: Mailbox
    links_given: set[str] = field(default_factory=set)

    @property
    def url(self) -> str:
        return self.server.url

    def create_user(self, username: str, password: str, *, staff: bool = False) -> str:
        """A verified account made the way an operator would (a Django shell); its address."""
        email = f"{username}@example.org"
        code = (
            "from relatch.accounts.provisioning import create_verified_user as c; "
            f"c(username={username!r}, email={email!r}, password={password!r}, "
            f"name={username.title()!r}, is_staff={staff!r})"
        )
        done = self.server.relatch("shell", "-c", code)
        assert done.returncode == 0, done.stderr
        return email

    def link(self, address: str, pattern: str) -> str:
        """The newest link matching ``pattern`` in mail to ``address`` not given before,
        waiting for the worker. (Mailed links work once: while a second one is on its way,
        the first must not be mistaken for it.)"""
        wanted = re.compile(pattern)

        def find() -> str | None:
            for message in reversed(self.mailbox.to(address)):
                for url in self.mailbox.links(message):
                    if wanted.search(url) and url not in self.links_given:
                        return str(url)
            return None

        url = wait_for(find, timeout=45, interval=0.2)
        assert url, f"no new link like {pattern} to {address}: {self.subjects(address)}"
        self.links_given.add(url)
        return str(url)

    def mail_text(self, address: str, subject_part: str) -> str:
        """The text of the newest mail to ``address`` whose subject contains ``subject_part``."""

        def find() -> str | None:
            for message in reversed(self.mailbox.to(address)):
                if subject_part.lower() in str(message["Subject"]).lower():
                    return self.mailbox.text(message)
            return None

        text = wait_for(find, timeout=45, interval=0.2)
        assert text, f"no mail about {subject_part!r} to {address}: {self.subjects(address)}"
        return str(text)

    def subjects(self, address: str) -> list[str]:
        return [str(m["Subject"]) for m in self.mailbox.to(address)]


@dataclass
class Visitor:
    """One person's browser. Use ``page`` with Playwright; call ``see`` after each page load."""

    context: BrowserContext
    page: Page
    live: Live
    ip: str
    problems: list[str] = field(default_factory=list)
    loads: list[str] = field(default_factory=list)
    audited: set[int] = field(default_factory=set)
    axe_source: str = ""
    cdp_sessions: list[Any] = field(default_factory=list)

    def watch(self) -> None:
        self.page.on("load", lambda: self.loads.append(self.page.url))
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        self.page.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        # A failed subresource is reported by _response with its URL; a failed main document is
        # a page the test itself looks at (a 404 it expects, say).
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console: {message.text}")

    def _response(self, response: Response) -> None:
        request = response.request
        if response.status >= 400 and request.resource_type not in ("document", "fetch"):
            self.problems.append(f"{response.status} for {request.resource_type} {response.url}")

    def goto(self, path: str) -> Response | None:
        return self.page.goto(self.live.url + path)

    def see(self, heading: str | re.Pattern[str]) -> None:
        """The page's main heading says ``heading``; then the page is audited. (The first h1:
        a project's README may bring its own, inside the page.)"""
        expect(self.page.get_by_role("heading", level=1).first).to_have_text(heading)
        self.audit()

    def audit(self) -> None:
        """axe-core (no serious or critical violations) and a phone-width layout check."""
        self.page.wait_for_load_state("load")
        if not self.page.evaluate("() => typeof axe !== 'undefined'"):
            self.page.evaluate(self.axe_source)
        violations = self.page.evaluate(AXE_RUN)
        assert not violations, f"{self.page.url}:\n{json.dumps(violations, indent=1)}"
        self.page.set_viewport_size(PHONE)
        overflow = self.page.evaluate(OVERFLOW)
        self.page.set_viewport_size(DESKTOP)
        assert overflow <= 0, f"{self.page.url} scrolls sideways by {overflow}px on a phone"
        self.audited.add(len(self.loads))

    def unaudited(self) -> list[str]:
        return [url for n, url in enumerate(self.loads, 1) if n not in self.audited]

    def fill_form(self, **fields: str) -> None:
        """Fill fields by their visible label (``Email_address`` means "Email address")."""
        for label, value in fields.items():
            self.page.get_by_label(label.replace("_", " "), exact=True).fill(value)

    def press(self, button: str) -> None:
        self.page.get_by_role("button", name=button, exact=True).click()
        self.page.wait_for_load_state("load")

    def sign_in(self, identifier: str, password: str) -> None:
        self.goto("/account/login/")
        self.see("Sign in")
        self.page.get_by_label("Username or email").fill(identifier)
        self.page.get_by_label("Password", exact=True).fill(password)
        self.press("Sign in")


def totp_now(secret: str, *, after: str = "") -> str:
    """A code of ``secret`` the server takes after ``after`` was used: the current step's,
    or the next step's (inside the one-step window the server accepts) when ``after`` was
    the current one, so a walk waits for the clock only when it used the next step already.
    Codes work once, and only for a later step than the last used."""
    totp = pyotp.TOTP(secret)
    now = int(time.time()) // 30
    used = next((step for step in (now + 1, now, now - 1)
                 if after and totp.at(step * 30) == after), None)
    if used is None or used < now:
        return str(totp.at(now * 30))
    if used == now + 1:
        wait_for(lambda: int(time.time()) // 30 > now, timeout=35, interval=0.5)
    return str(totp.at((used + 1) * 30))


def network_for_next_visitor() -> str:
    """A documentation-range address (RFC 5737) no other visitor of this run has."""
    n = next(_networks)
    return f"198.51.{n // 250}.{n % 250 + 1}"


def new_visitor(context: BrowserContext, live: Live, axe_source: str, ip: str) -> Visitor:
    page = context.new_page()
    page.set_default_timeout(20_000)
    visitor = Visitor(context, page, live, ip, axe_source=axe_source)
    visitor.watch()
    return visitor


def virtual_authenticator(visitor: Visitor, **options: Any) -> str:
    """A security key in Chromium's WebAuthn emulation (DevTools protocol); its id."""
    cdp = visitor.context.new_cdp_session(visitor.page)
    cdp.send("WebAuthn.enable")
    base = {"protocol": "ctap2", "transport": "usb", "hasResidentKey": True,
            "hasUserVerification": True, "isUserVerified": True}
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": base | options})
    visitor.cdp_sessions.append(cdp)  # the key lives as long as this DevTools session
    return str(added["authenticatorId"])
