"""Configuration from the environment and the security headers it produces (issue 2 §3).

Settings are computed when ``relatch.settings`` is imported, so each configuration is read by a
fresh interpreter with that environment; the behaviour is then checked in-process with the
values that interpreter computed.
"""

import json
import re
import subprocess
import sys

import pytest
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from tests.conftest import sign_in
from tests.serving import relatch_env

pytestmark = pytest.mark.django_db

_SETTINGS_SCRIPT = """
import json, sys
import relatch.settings as s
print(json.dumps({name: getattr(s, name) for name in sys.argv[1:]}, default=str))
"""
HTTPS_NAMES = [
    "DEBUG", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_NAME", "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_SSL_REDIRECT",
    "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS",
]


def settings_for(tmp_path, env: dict[str, str], *names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _SETTINGS_SCRIPT, *names],
        env=relatch_env(tmp_path / "data", RELATCH_SECRET_KEY="k" * 50, **env),
        capture_output=True, text=True, timeout=60, check=False,
    )


def computed(tmp_path, env: dict[str, str], *names: str) -> dict:
    done = settings_for(tmp_path, env, *names)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# ---------------------------------------------------------------------------------------------
# Headers on every page


def test_a_page_carries_the_security_headers(client):
    """ASVS V3 (DESIGN §7): strict CSP, frame denial, no sniffing, a referrer policy."""
    response = client.get("/")
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["frame-ancestors"] == "'none'"
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["form-action"] == "'self'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response  # http base URL: no HSTS


def test_pages_have_no_inline_script_or_style(client):
    """The CSP forbids inline code, so the pages must not depend on any."""
    body = client.get("/").content.decode()
    scripts = re.findall(r"<script[^>]*>", body)
    assert scripts and all(re.search(r' src="/static/relatch/[\w.-]+\.js"', s) for s in scripts)
    assert "<style" not in body and " style=" not in body


def test_cookies_are_http_only(client, user):
    """Session and CSRF cookies are out of reach of scripts (DESIGN §7)."""
    sign_in(client, user)
    csrf = client.get("/").cookies["csrftoken"]  # the page's sign-out form sets it
    assert csrf["httponly"] and csrf["samesite"] == "Lax" and not csrf["secure"]
    session = _session_cookie_set_by_middleware(RequestFactory().get("/"))
    assert session.key == "relatch-session"
    assert session["httponly"] and session["samesite"] == "Lax"


def _session_cookie_set_by_middleware(request: HttpRequest):
    """The cookie Django's session middleware sets, under the current settings, when a view
    writes to the session (the sign-in view, tested elsewhere, is one such view)."""

    def view(request: HttpRequest) -> HttpResponse:
        request.session["seen"] = True
        return HttpResponse()

    response = SessionMiddleware(view)(request)
    from django.conf import settings

    return response.cookies[settings.SESSION_COOKIE_NAME]


# ---------------------------------------------------------------------------------------------
# https base URL


@pytest.mark.own_database
def test_defaults_are_for_plain_http_on_loopback_and_without_debug(tmp_path):
    values = computed(tmp_path, {}, *HTTPS_NAMES, "BASE_URL", "OUTBOX_ENABLED")
    assert values["DEBUG"] is False
    assert values["BASE_URL"] == "http://localhost:8000"
    assert values["SESSION_COOKIE_SECURE"] is False and values["SECURE_HSTS_SECONDS"] == 0
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SESSION_COOKIE_NAME"] == "relatch-session"
    assert set(values["ALLOWED_HOSTS"]) == {"127.0.0.1", "localhost", "[::1]"}
    assert values["OUTBOX_ENABLED"] is True


@pytest.mark.own_database
def test_an_https_base_url_turns_on_secure_cookies_hsts_and_redirects(tmp_path):
    values = computed(tmp_path, {"RELATCH_BASE_URL": "https://pkg.example.org/"}, *HTTPS_NAMES)
    assert values["SESSION_COOKIE_SECURE"] is True and values["CSRF_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_NAME"] == "__Host-relatch-session"
    assert values["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["ALLOWED_HOSTS"] == ["pkg.example.org"]
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://pkg.example.org"]
    assert values["DEBUG"] is False


@pytest.fixture
def https_settings(settings, tmp_path):
    """The settings an https base URL produces, applied to this process."""
    values = computed(tmp_path, {"RELATCH_BASE_URL": "https://pkg.example.org"}, *HTTPS_NAMES)
    values.pop("DEBUG")
    for name, value in values.items():
        setattr(settings, name, value)
    return settings


@pytest.mark.own_database
def test_https_plain_http_request_is_redirected(https_settings, client):
    response = client.get("/account/", HTTP_HOST="pkg.example.org")
    assert response.status_code == 301
    assert response["Location"] == "https://pkg.example.org/account/"


@pytest.mark.own_database
def test_https_pages_send_hsts_and_secure_host_only_cookies(https_settings, client, user):
    sign_in(client, user)
    response = client.get("/", HTTP_HOST="pkg.example.org", secure=True)
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    csrf = response.cookies["csrftoken"]
    assert csrf["secure"] and csrf["httponly"]
    session = _session_cookie_set_by_middleware(
        RequestFactory().get("/", HTTP_HOST="pkg.example.org", secure=True)
    )
    # __Host-: the browser keeps it only if Secure, Path=/ and no Domain (no subdomain can set
    # or read it).
    assert session.key == "__Host-relatch-session"
    assert session["secure"] and session["httponly"] and session["path"] == "/"
    assert not session["domain"]


@pytest.mark.own_database
@pytest.mark.parametrize(
    ("env", "hosts"),
    [
        ({"RELATCH_BASE_URL": "http://localhost:9000"}, {"localhost", "127.0.0.1", "[::1]"}),
        ({"RELATCH_BASE_URL": "https://pkg.example.org",
          "RELATCH_EXTRA_HOSTS": "pkg.internal,10.0.0.5"},
         {"pkg.example.org", "pkg.internal", "10.0.0.5"}),
        # IPv6 hosts arrive bracketed in the Host header.
        ({"RELATCH_BASE_URL": "http://[::1]:8000"}, {"127.0.0.1", "localhost", "[::1]"}),
        ({"RELATCH_BASE_URL": "https://[2001:db8::5]"}, {"[2001:db8::5]"}),
    ],
)
def test_allowed_hosts_follow_the_base_url(tmp_path, env, hosts):
    assert set(computed(tmp_path, env, "ALLOWED_HOSTS")["ALLOWED_HOSTS"]) == hosts


@pytest.mark.own_database
@pytest.mark.parametrize("base_url", ["ftp://pkg.example.org", "pkg.example.org", "https://"])
def test_a_bad_base_url_stops_the_start(tmp_path, base_url):
    done = settings_for(tmp_path, {"RELATCH_BASE_URL": base_url}, "BASE_URL")
    assert done.returncode != 0
    assert "RELATCH_BASE_URL must be an http(s) URL" in done.stderr


@pytest.mark.own_database
def test_debug_is_only_on_when_asked(tmp_path):
    assert computed(tmp_path, {"RELATCH_DEBUG": "1"}, "DEBUG")["DEBUG"] is True
    assert computed(tmp_path, {"RELATCH_DEBUG": "0"}, "DEBUG")["DEBUG"] is False


# ---------------------------------------------------------------------------------------------
# RELATCH_EMAIL_URL


@pytest.mark.own_database
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.org:2525",
         {"host": "mail.example.org", "port": 2525, "use_tls": False, "use_ssl": False,
          "username": "", "password": ""}),
        ("smtp://mail.example.org", {"port": 25, "use_tls": False, "use_ssl": False}),
        ("smtp+tls://relatch:p%40ss%2Fw0rd@mail.example.org:587",
         {"host": "mail.example.org", "port": 587, "use_tls": True, "use_ssl": False,
          "username": "relatch", "password": "p@ss/w0rd"}),
        ("smtp+tls://mail.example.org", {"port": 587, "use_tls": True, "use_ssl": False}),
        ("smtps://mail.example.org", {"port": 465, "use_tls": False, "use_ssl": True}),
        ("smtps://mail.example.org:2465?timeout=5", {"port": 2465, "use_ssl": True, "timeout": 5}),
    ],
)
def test_email_url_selects_the_smtp_server(tmp_path, url, expected):
    values = computed(tmp_path, {"RELATCH_EMAIL_URL": url}, "MAILERS", "OUTBOX_ENABLED")
    mailer = values["MAILERS"]["default"]
    assert mailer["BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert {k: mailer["OPTIONS"][k] for k in expected} == expected
    assert values["OUTBOX_ENABLED"] is False


@pytest.mark.own_database
def test_without_email_url_mail_goes_to_the_outbox(tmp_path):
    values = computed(tmp_path, {}, "MAILERS", "OUTBOX_ENABLED", "OUTBOX_DIR")
    assert values["MAILERS"]["default"]["BACKEND"] == "relatch.notify.outbox.OutboxEmailBackend"
    assert values["OUTBOX_ENABLED"] is True
    assert values["OUTBOX_DIR"] == str(tmp_path / "data" / "outbox")


@pytest.mark.own_database
@pytest.mark.parametrize(
    "url", ["http://mail.example.org", "smtp2://mail.example.org", "mailto:ops@example.org"]
)
def test_a_bad_email_url_stops_the_start(tmp_path, url):
    done = settings_for(tmp_path, {"RELATCH_EMAIL_URL": url}, "MAILERS")
    assert done.returncode != 0
    assert "RELATCH_EMAIL_URL must start with smtp://, smtp+tls:// or smtps://" in done.stderr


# ---------------------------------------------------------------------------------------------
# Error pages: no debug output, Relatch's own pages


def test_an_unknown_page_shows_relatchs_404(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Page not found" in body and "site.css" in body
    assert "URLconf" not in body and "Traceback" not in body


def test_a_failing_view_shows_relatchs_500(client, monkeypatch):
    """A view error (simulated: the home page's renderer is made to raise, since no real page
    may fail on purpose) gives the plain 500 page, never a traceback."""

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("relatch.index.pages.views.render", broken)
    client.raise_request_exception = False
    response = client.get("/")
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong" in body
    assert "secret internals" not in body and "Traceback" not in body


@pytest.mark.parametrize(
    ("cookie", "token"),
    [(None, None), ("a" * 32, None), ("a" * 32, "b" * 32)],
    ids=["no-cookie", "no-token", "wrong-token"],
)
def test_a_post_without_a_valid_csrf_token_is_refused_and_changes_nothing(user, cookie, token):
    """DESIGN §7: CSRF on every form; the refusal is a clear page, not an error."""
    browser = sign_in(Client(enforce_csrf_checks=True), user)
    if cookie:
        browser.cookies["csrftoken"] = cookie
    data = {"csrfmiddlewaretoken": token} if token else {}
    response = browser.post("/account/logout/", data)
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
    assert "Nothing was changed" in response.content.decode()
    assert browser.get("/").context["user"] == user  # still signed in


@pytest.mark.parametrize("host", ["evil.example.org", "127.0.0.1.evil.example.org", "a b"])
def test_an_unknown_host_header_is_refused(client, host):
    """FP5: pages are never built for a Host the operator did not configure."""
    response = client.get("/", HTTP_HOST=host)
    assert response.status_code == 400
    assert "Bad request" in response.content.decode()


@pytest.mark.own_database
def test_processes_starting_at_once_on_a_new_data_directory_agree_on_one_key(tmp_path):
    """relatch serve and relatch migrate (or two hosts) starting together on a new data
    directory: each made a key and one crashed on the other's file, or read it half-written.
    Now one key wins, whole, 0600, and nothing else is left in the directory."""
    env = relatch_env(tmp_path / "data")
    env.pop("RELATCH_SECRET_KEY", None)
    starts = [subprocess.Popen([sys.executable, "-c", _SETTINGS_SCRIPT, "SECRET_KEY"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(6)]
    results = [(p.communicate(timeout=120), p.returncode) for p in starts]
    assert all(code == 0 for _, code in results), [err for (_, err), _ in results]
    keys = {json.loads(out)["SECRET_KEY"] for (out, _), _ in results}
    stored = (tmp_path / "data" / "secret_key")
    assert keys == {stored.read_text().strip()} and len(keys.pop()) >= 50
    assert stored.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["secret_key"]


# ---------------------------------------------------------------------------------------------
# Where distribution files are kept (RELATCH_FILES_URL)


@pytest.mark.own_database
def test_files_stay_on_disk_unless_a_bucket_is_named(tmp_path):
    values = computed(tmp_path, {}, "STORAGES", "FILES_URL", "FILES_DOWNLOAD")
    assert values["STORAGES"]["default"]["BACKEND"].endswith("FileSystemStorage")
    assert (values["FILES_URL"], values["FILES_DOWNLOAD"]) == ("", "stream")


@pytest.mark.own_database
@pytest.mark.parametrize(("env", "location", "endpoint", "style"), [
    ({"RELATCH_FILES_URL": "s3://pkgs"}, "", None, None),
    ({"RELATCH_FILES_URL": "s3://pkgs/relatch/files/", "AWS_REGION": "eu-west-3"},
     "relatch/files", None, None),
    ({"RELATCH_FILES_URL": "s3://pkgs/f", "AWS_ENDPOINT_URL": "http://10.0.0.20:8333"},
     "f", "http://10.0.0.20:8333", "path"),
    ({"RELATCH_FILES_URL": "s3://pkgs/f", "AWS_ENDPOINT_URL": "http://a:1",
      "AWS_ENDPOINT_URL_S3": "https://s3.example.org"}, "f", "https://s3.example.org", "path"),
])
def test_a_bucket_url_selects_the_s3_storage(tmp_path, env, location, endpoint, style):
    options = computed(tmp_path, env, "STORAGES")["STORAGES"]["default"]["OPTIONS"]
    assert options["bucket_name"] == "pkgs" and options["location"] == location
    assert options["endpoint_url"] == endpoint and options["addressing_style"] == style
    assert options["region_name"] == env.get("AWS_REGION", "us-east-1")


@pytest.mark.own_database
@pytest.mark.parametrize(("env", "message"), [
    ({"RELATCH_FILES_URL": "/srv/files"}, "RELATCH_FILES_URL must be s3://bucket"),
    ({"RELATCH_FILES_URL": "gs://pkgs/f"}, "RELATCH_FILES_URL must be s3://bucket"),
    ({"RELATCH_FILES_URL": "s3:///f"}, "RELATCH_FILES_URL must be s3://bucket"),
    ({"RELATCH_FILES_DOWNLOAD": "proxy"}, "RELATCH_FILES_DOWNLOAD must be stream or redirect"),
    ({"RELATCH_FILES_URL_SECONDS": "0"}, "RELATCH_FILES_URL_SECONDS must be a number"),
])
def test_a_bad_files_setting_stops_the_start(tmp_path, env, message):
    done = settings_for(tmp_path, env, "FILES_URL")
    assert done.returncode != 0
    assert message in done.stderr
