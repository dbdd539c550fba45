"""The walk of issue 2's "How it will be checked", against a real ``relatch serve``.

A person registers, finds the verification mail, verifies, signs in, adds and verifies a second
address, makes it primary, signs out, resets the password through the mail, signs in with the
new password, ends another session, and sees all of it in the security history. Plain HTTP with
cookie jars (urllib), mail through the loopback SMTP server, the server's own worker sending it.
"""

import html
import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest

from tests.serving import running_server, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.own_database]

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/139.0.0.0 Safari/537.36")
FIRST_PASSWORD = "ada's first long passphrase"
NEW_PASSWORD = "analytical engine at dawn"


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    text: str = ""  # button text and labels: says which row the form acts on


class _FormParser(HTMLParser):
    """The forms of a page: action, method, hidden and default values, and their text."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._form: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = Form(a.get("action", ""), a.get("method", "get").lower())
            self.forms.append(self._form)
        elif self._form is not None:
            if tag in ("input", "textarea") and a.get("name") and a.get("type") != "submit":
                self._form.fields[a["name"]] = a.get("value", "")
            self._form.text += " " + a.get("aria-label", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None

    def handle_data(self, data: str) -> None:
        if self._form is not None:
            self._form.text += data


@dataclass
class Page:
    status: int
    url: str
    text: str

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.url).path

    def forms(self) -> list[Form]:
        parser = _FormParser()
        parser.feed(self.text)
        return parser.forms

    def form(self, action: str = "", text: str = "") -> Form:
        """The POST form whose action contains ``action`` and whose text contains ``text``
        (the header's sign-out form only when asked for by its action)."""
        found = [f for f in self.forms()
                 if f.method == "post" and action in f.action and text in f.text
                 and ("/logout/" in action or "/logout/" not in f.action)]
        assert found, f"no form with {action!r}/{text!r} on {self.url}:\n{self.text}"
        return found[0]


class Browser:
    """One browser: its own cookie jar and user agent; follows redirects like a browser."""

    def __init__(self, base_url: str, user_agent: str) -> None:
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.opener.addheaders = [("User-Agent", user_agent)]

    def _open(self, url: str, data: bytes | None = None) -> Page:
        url = urllib.parse.urljoin(self.base_url + "/", url)
        try:
            with self.opener.open(url, data=data, timeout=30) as response:
                return Page(response.status, response.url, response.read().decode())
        except urllib.error.HTTPError as error:
            return Page(error.code, error.url, error.read().decode())

    def get(self, url: str) -> Page:
        return self._open(url)

    def submit(self, page: Page, form: Form, **values: str) -> Page:
        """Send ``form`` as the browser would: its hidden fields (the csrfmiddlewaretoken with
        them; the csrftoken cookie rides in the jar) plus ``values``."""
        data = urllib.parse.urlencode({**form.fields, **values}).encode()
        return self._open(urllib.parse.urljoin(page.url, form.action or page.url), data)

    def cookie(self, name: str) -> http.cookiejar.Cookie | None:
        return next((c for c in self.jar if c.name == name), None)


def press(browser: Browser, url: str, action: str, text: str = "", *, password: str,
          **values: str) -> Page:
    """Send the form on the page at ``url``. A sensitive action may first ask for the password
    again (ASVS 7.5.1): then confirm it, and send the form again, as a person would."""
    page = browser.get(url)
    result = browser.submit(page, page.form(action, text), **values)
    if result.path == "/account/reauthenticate/":
        browser.submit(result, result.form(), password=password)
        page = browser.get(url)
        result = browser.submit(page, page.form(action, text), **values)
    return result


# A token link, not the "reset your password" address in a security notice's footer.
VERIFY_LINK = re.compile(r"/account/emails/verify/[^/\s]+/$")
RESET_LINK = re.compile(r"/account/reset/[^/\s]+/[^/\s]+/$")


def link_in_mail(mail, address: str, pattern: re.Pattern[str]) -> str:
    """The newest link matching ``pattern`` mailed to ``address``, waiting for the worker."""

    def find() -> str | None:
        for message in reversed(mail.to(address)):
            for url in mail.links(message):
                if pattern.search(url):
                    return str(url)
        return None

    link = wait_for(find, timeout=45, interval=0.2)
    assert link, f"no link to {address}: {[m['Subject'] for m in mail.messages]}"
    return link


def sign_in(browser: Browser, identifier: str, password: str) -> Page:
    page = browser.get("/account/login/")
    return browser.submit(page, page.form(), identifier=identifier, password=password)


def test_the_account_walk_of_issue_2(tmp_path, mail):
    email_url = f"smtp://127.0.0.1:{mail.port}"
    with running_server(tmp_path, RELATCH_EMAIL_URL=email_url) as server:
        walk(server, mail)


def walk(server, mail) -> None:
    ada = Browser(server.url, FIREFOX)

    # Register.
    page = ada.get("/account/register/")
    assert page.status == 200
    page = ada.submit(page, page.form(), username="ada", name="Ada Lovelace",
                      email="ada@example.org", password=FIRST_PASSWORD,
                      password_again=FIRST_PASSWORD)
    assert page.status == 200 and "mail" in page.text.lower(), page.text

    # Find the verification mail and verify (GET shows a button; the POST verifies).
    page = ada.get(link_in_mail(mail, "ada@example.org", VERIFY_LINK))
    assert page.status == 200 and "ada@example.org" in page.text
    page = ada.submit(page, page.form())
    assert page.status == 200 and "verified" in page.text.lower(), page.text

    # Sign in: a new session, an HttpOnly session cookie.
    page = sign_in(ada, "ada", FIRST_PASSWORD)
    assert page.status == 200 and page.path == "/account/", page.text
    session_cookie = ada.cookie("relatch-session")
    assert session_cookie is not None and session_cookie.has_nonstandard_attr("HttpOnly")

    # Add a second address and verify it.
    page = press(ada, "/account/emails/", "/add/", password=FIRST_PASSWORD,
                 address="ada.lovelace@example.net")
    assert page.status == 200 and "ada.lovelace@example.net" in page.text, page.text
    page = ada.get(link_in_mail(mail, "ada.lovelace@example.net", VERIFY_LINK))
    page = ada.submit(page, page.form())
    assert page.status == 200 and page.path == "/account/emails/", page.text

    # Make it primary.
    page = press(ada, "/account/emails/", "/primary/", "ada.lovelace@example.net",
                 password=FIRST_PASSWORD)
    assert page.status == 200 and page.path == "/account/emails/"
    assert re.search(r"ada\.lovelace@example\.net</td>\s*<td>\s*<span class=\"badge\">Primary",
                     page.text), page.text

    # Sign out.
    page = ada.submit(page, page.form("/account/logout/"))
    assert page.status == 200 and "Sign in" in page.text
    assert ada.get("/account/").path == "/account/login/"

    # Reset the password through the mail.
    page = ada.get("/account/reset/")
    page = ada.submit(page, page.form(), identifier="ada")
    assert page.status == 200
    page = ada.get(link_in_mail(mail, "ada.lovelace@example.net", RESET_LINK))
    assert page.status == 200 and "new_password1" in page.form().fields, page.text
    page = ada.submit(page, page.form(), new_password1=NEW_PASSWORD, new_password2=NEW_PASSWORD)
    assert page.status == 200 and page.path == "/account/login/", page.text
    assert ada.get("/account/").path == "/account/login/"  # the reset never signs in (FP9)

    # The old password is dead; the new one works, here and in a second browser.
    assert sign_in(ada, "ada", FIRST_PASSWORD).path == "/account/login/"
    assert sign_in(ada, "ada@example.org", NEW_PASSWORD).path == "/account/"
    other = Browser(server.url, CHROME)
    assert sign_in(other, "ada", NEW_PASSWORD).path == "/account/"

    # List the devices and end the other one: it is signed out and forgotten.
    page = ada.get("/account/sessions/")
    assert page.status == 200 and "This device" in page.text
    assert "Chrome" in page.text and "Firefox" in page.text
    page = press(ada, "/account/sessions/", "/end/", "Chrome", password=NEW_PASSWORD)
    assert page.status == 200 and page.path == "/account/sessions/"
    assert "Chrome" not in ada.get("/account/sessions/").text
    assert other.get("/account/").path == "/account/login/"  # that browser is signed out

    # All of it in the security history, newest first.
    labels = history_labels(ada)
    assert in_order(labels, [
        "Session ended", "Signed in", "Failed sign-in", "Password reset by email",
        "Password reset requested", "Signed out", "Primary email address changed",
        "Email address verified", "Email address added", "Signed in",
        "Email address verified", "Account created",
    ]), f"history was: {labels}"


def history_labels(browser: Browser) -> list[str]:
    """The "What" cells of every page of the security history, newest first."""
    labels: list[str] = []
    url = "/account/history/"
    for _ in range(20):
        page = browser.get(url)
        assert page.status == 200, page.text
        labels += [m.strip() for m in re.findall(r"<td>([^<]+?)(?:<br>|</td>)", page.text)]
        older = re.search(r'<a rel="next" href="([^"]+)"', page.text)
        if older is None:
            break
        url = "/account/history/" + html.unescape(older[1])
    return labels


def in_order(found: list[str], expected: list[str]) -> bool:
    """``expected`` occurs in ``found`` in this order (other entries may come between)."""
    remaining = iter(found)
    return all(any(item == wanted for item in remaining) for wanted in expected)
