"""Relatch settings, read from the environment (DESIGN §6).

Every value has a safe production default; the embedded defaults (SQLite and files in a data
directory, mail to a local outbox) need no configuration at all.
"""

import os
import re
import secrets
from datetime import timedelta
from email.utils import parseaddr
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import dj_database_url
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


DATA_DIR = Path(os.environ.get("RELATCH_DATA_DIR") or Path.cwd() / "data").resolve()
DEBUG = _env_bool("RELATCH_DEBUG")
TESTING = _env_bool("RELATCH_TESTING")

BASE_URL = os.environ.get("RELATCH_BASE_URL", "http://localhost:8000").rstrip("/")
_base = urlsplit(BASE_URL)
if _base.scheme not in {"http", "https"} or not _base.hostname:
    raise ValueError(f"RELATCH_BASE_URL must be an http(s) URL, not {BASE_URL!r}")
BASE_URL_IS_HTTPS = _base.scheme == "https"
# The path Relatch is served under behind a proxy ("/pypi" for https://example.org/pypi; ""
# at the host's root). relatch.web.path_prefix makes it every request's SCRIPT_NAME, so links,
# redirects, static files and cookies carry it (the proxy may strip it or pass it through).
BASE_PATH = _base.path.rstrip("/")
if _base.query or _base.fragment or not re.fullmatch(r"(/[A-Za-z0-9._~-]+)*", BASE_PATH):
    raise ValueError(f"RELATCH_BASE_URL must be scheme://host[:port][/path] with a plain "
                     f"path (letters, digits, . _ ~ -), not {BASE_URL!r}")


def _secret_key() -> str:
    """The signing key: from the environment, else made once and kept in the data directory."""
    if key := os.environ.get("RELATCH_SECRET_KEY"):
        return key
    path = DATA_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    # Created 0600 so other local users cannot forge tokens signed with it; written whole to a
    # file of this process's own, then linked into place, so two processes starting at once
    # on a new data directory (relatch serve beside relatch migrate) agree on one key and
    # neither reads a half-written one.
    partial = DATA_DIR / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    try:
        os.link(partial, path)
    except FileExistsError:
        key = path.read_text().strip()  # another process made it first: theirs is the key
    finally:
        partial.unlink()
    return key


SECRET_KEY = _secret_key()

# Host header: only the configured host (mail links are built from BASE_URL, never from the
# request's Host, which stops reset-link poisoning); loopback names for the embedded default.
# Django compares IPv6 hosts in their bracketed form, as they appear in the Host header.
ALLOWED_HOSTS = [f"[{_base.hostname}]" if ":" in _base.hostname else _base.hostname]
if _base.hostname in {"127.0.0.1", "localhost", "::1"}:
    ALLOWED_HOSTS += ["127.0.0.1", "localhost", "[::1]"]
ALLOWED_HOSTS += [h for h in os.environ.get("RELATCH_EXTRA_HOSTS", "").split(",") if h]
CSRF_TRUSTED_ORIGINS = [f"{_base.scheme}://{_base.netloc}"]
# How many reverse proxies in front of Relatch append to X-Forwarded-For (0: none, use the peer).
RELATCH_PROXY_COUNT = _env_int("RELATCH_PROXY_COUNT", 0)
if RELATCH_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


def _networks(name: str, default: str) -> tuple[IPv4Network | IPv6Network, ...]:
    try:
        return tuple(ip_network(part.strip()) for part in
                     os.environ.get(name, default).split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(f"{name} must be comma-separated networks (CIDR): {exc}") from None


# Who may read /metrics and the detail of /health/ready (relatch.ops.access): clients whose
# address (as RELATCH_PROXY_COUNT lets Relatch see it) is in these networks, or requests with
# "Authorization: Bearer <RELATCH_METRICS_TOKEN>" (unset: no token is accepted).
METRICS_ALLOW = _networks("RELATCH_METRICS_ALLOW", "127.0.0.1/32,::1/128")
METRICS_TOKEN = os.environ.get("RELATCH_METRICS_TOKEN", "").strip()


def _env_seconds(name: str, default: float) -> float:
    value = float(os.environ.get(name, "").strip() or default)
    if not value > 0:
        raise ValueError(f"{name} must be a number of seconds above 0 (the default is {default})")
    return value


# Slow clients (relatch.web.worker, docs/operations.md "Slow clients"): a request's header must
# arrive within HEADER_TIMEOUT seconds; its body may pause at most BODY_TIMEOUT seconds and must
# come at BODY_MIN_RATE bytes a second on average after its first BODY_TIMEOUT seconds.
HEADER_TIMEOUT = _env_seconds("RELATCH_HEADER_TIMEOUT", 10)
BODY_TIMEOUT = _env_seconds("RELATCH_BODY_TIMEOUT", 20)
BODY_MIN_RATE = 500

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tasks_db",
    "relatch.accounts",
    "relatch.audit",
    "relatch.notify",
    "relatch.mfa",
    "relatch.signin",
    "relatch.index",
    "relatch.recovery",
    "relatch.web",
]

MIDDLEWARE = [
    # First, so a request's time covers every other middleware (relatch.web.health).
    "relatch.web.health.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "relatch.accounts.sessions.middleware.SessionTrackingMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "relatch.accounts.emails.middleware.RequireVerifiedEmailMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "relatch.urls"
WSGI_APPLICATION = "relatch.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "relatch.web.context.site",
                "relatch.web.layout.layout",
                "relatch.accounts.registration.context.signup",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("RELATCH_DATABASE_URL") or f"sqlite:///{DATA_DIR / 'relatch.sqlite3'}"
# A kept connection is checked before a request first uses it (CONN_HEALTH_CHECKS; one
# "SELECT 1" on PostgreSQL, nothing on SQLite): after a database restart each web thread
# reconnects instead of failing its next request with a 500 (issue 18 §1,
# tests/test_database_outage.py).
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60,
                                              conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Connections are kept (60 s, as for PostgreSQL): a new SQLite connection runs the pragmas
    # below and re-reads the schema on its first query, about half the cost of a cached
    # /simple/ page (bench/index_pages.py).
    # WAL and a busy timeout let the web server and the worker write without "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("RELATCH_REDIS_URL", "")
if REDIS_URL:
    # Redis, or this process's memory while Redis does not answer (relatch.accounts.redis_outage).
    CACHES = {"default": {"BACKEND": "relatch.accounts.redis_outage.FallbackRedisCache",
                          "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Rate-limit counters: in Redis when set (the database while it is down), else in the database,
# shared by every web process (relatch.accounts.ratelimit).
RATELIMIT_STORAGE_URL = REDIS_URL or "database"

# What every worker does every WORKER_HOUSEKEEPING_SECONDS besides running tasks
# (relatch.notify.worker): put back tasks a dead worker left running (a dead host's only after
# an hour: another host's processes cannot be seen), and keep the recovery desk's tick queued.
WORKER_HOUSEKEEPING = [
    "relatch.notify.leftovers.release_stranded_tasks",
    "relatch.recovery.tasks.ensure_tick_scheduled",
]
WORKER_HOUSEKEEPING_SECONDS = _env_seconds("RELATCH_WORKER_HOUSEKEEPING_SECONDS", 300)

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default"],
    }
}

AUTH_USER_MODEL = "accounts.User"
# The username is unique ignoring case through a database constraint on Lower(username), which
# this check does not see.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]
AUTHENTICATION_BACKENDS = ["relatch.accounts.signin.backends.UsernameOrEmailBackend"]
LOGIN_URL = "signin:login"
LOGIN_REDIRECT_URL = "account:overview"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 8}},
    {"NAME": "relatch.accounts.passwords.validation.MaximumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
     "OPTIONS": {"user_attributes": ["username", "name"]}},
    {"NAME": "relatch.accounts.passwords.validation.ContextWordValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# A reset link lives one hour (OWASP FP4); it also dies at sign-in and password change.
PASSWORD_RESET_TIMEOUT = 3600
EMAIL_VERIFICATION_MAX_AGE = 24 * 3600
# Self-service recovery (password + a second factor, mailbox lost): the wait before the device
# is trusted, announced to every verified address.
SELF_RECOVERY_WAIT = timedelta(hours=_env_int("RELATCH_SELF_RECOVERY_WAIT_HOURS", 72))
# The link that confirms a sign-in from a new device lives ten minutes (ASVS 6.5.5).
NEW_DEVICE_LINK_MAX_AGE = 10 * 60
# Days after enrolling a second factor when a mail asks the user to check their codes and app.
FACTOR_REMINDER_DAYS = _env_int("RELATCH_FACTOR_REMINDER_DAYS", 14)
# Sensitive actions ask for the password again when the last one is older than this (ASVS 7.5.1).
REAUTH_MAX_AGE = _env_int("RELATCH_REAUTH_MAX_AGE", 10 * 60)
# A MaxMind DB file (GeoLite2-City.mmdb) that names the city and country of each device on the
# devices page; unset, the page shows the device's network (relatch.accounts.sessions.places).
GEOIP_DATABASE = os.environ.get("RELATCH_GEOIP_DATABASE", "").strip()

SESSION_ENGINE = "django.contrib.sessions.backends.db"
# AAL2 reauthentication limits (NIST N31): 12 h overall, idle sessions end with the browser.
SESSION_COOKIE_AGE = 12 * 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = BASE_URL_IS_HTTPS
# Under a path the cookies stay under it (other sites on the host never get them); a __Host-
# cookie must have Path=/, so a prefixed site uses __Secure- (still HTTPS-only).
SESSION_COOKIE_NAME = (
    "relatch-session" if not BASE_URL_IS_HTTPS
    else "__Secure-relatch-session" if BASE_PATH else "__Host-relatch-session"
)
SESSION_COOKIE_PATH = CSRF_COOKIE_PATH = BASE_PATH or "/"
CSRF_COOKIE_SECURE = BASE_URL_IS_HTTPS
CSRF_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "relatch.web.views.csrf_failure"
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = BASE_URL_IS_HTTPS and _env_bool("RELATCH_SSL_REDIRECT", True)
# A load balancer's probe over plain HTTP gets its answer, not a redirect (nothing secret
# travels in it); /metrics stays behind HTTPS, as its token would travel in the clear.
SECURE_REDIRECT_EXEMPT = [r"(^|/)health/(live|ready)$"]
SECURE_HSTS_SECONDS = 365 * 24 * 3600 if BASE_URL_IS_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = BASE_URL_IS_HTTPS
SECURE_CSP = {
    "default-src": [CSP.NONE],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# Distribution files: on disk in the data directory by default, or in an S3 bucket
# (RELATCH_FILES_URL=s3://bucket/prefix; docs/operations.md "Several machines"), reached with
# the usual AWS variables: AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL) for a store that is not
# AWS, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the instance's role), AWS_REGION.
FILES_DIR = Path(os.environ.get("RELATCH_FILES_DIR") or DATA_DIR / "files").resolve()
FILES_URL = os.environ.get("RELATCH_FILES_URL", "").strip()


def _files_storage() -> dict[str, object]:
    if not FILES_URL:
        return {"BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(FILES_DIR), "base_url": f"{BASE_PATH}/files/"}}
    parts = urlsplit(FILES_URL)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError("RELATCH_FILES_URL must be s3://bucket or s3://bucket/prefix "
                         f"(got {FILES_URL!r}); leave it empty for files on disk")
    endpoint = (os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
                or "").strip()
    return {"BACKEND": "relatch.index.store.s3.RelatchS3Storage", "OPTIONS": {
        "bucket_name": parts.netloc, "location": parts.path.strip("/"),
        "endpoint_url": endpoint or None,
        "region_name": (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                        or "us-east-1"),
        "signature_version": "s3v4",
        # Path-style (endpoint/bucket/key) is what every S3-compatible store answers; AWS
        # itself picks its own style when no endpoint is named.
        "addressing_style": "path" if endpoint else None,
        "file_overwrite": True, "default_acl": None, "querystring_auth": True}}


STORAGES = {
    "default": _files_storage(),
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# How /files/ sends a file kept in a bucket, once every access check passed: "stream" (Relatch
# reads it from the store and sends it) or "redirect" (a 302 to a presigned URL that works for
# FILES_URL_SECONDS; clients must reach the store, and anyone holding the URL may read the file
# until it expires). Files on disk are always sent by Relatch or nginx.
FILES_DOWNLOAD = os.environ.get("RELATCH_FILES_DOWNLOAD", "stream").strip() or "stream"
if FILES_DOWNLOAD not in {"stream", "redirect"}:
    raise ValueError("RELATCH_FILES_DOWNLOAD must be stream or redirect")
FILES_URL_SECONDS = int(_env_seconds("RELATCH_FILES_URL_SECONDS", 60))
# Files sent by nginx (relatch.index.simple.accel, deploy/nginx.conf): a path such as
# "/internal-files/" makes /files/ answer checked requests with X-Accel-Redirect to it. Empty:
# Relatch sends the bytes. Only behind a proxy that honours it: clients reaching Relatch
# directly would get empty bodies, so a malformed value stops the start rather than guessing.
ACCEL_REDIRECT = os.environ.get("RELATCH_ACCEL_REDIRECT", "").strip()
if ACCEL_REDIRECT and not re.fullmatch(r"(/(?!\.+/)[A-Za-z0-9._~-]+)+/", ACCEL_REDIRECT):
    raise ValueError("RELATCH_ACCEL_REDIRECT must be a path with a slash at each end "
                     f"(e.g. /internal-files/), or empty, not {ACCEL_REDIRECT!r}")
# Uploads stream to temporary files above this size, so a large upload never sits in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
# In a directory of Relatch's own (made when needed), where what a killed upload leaves can be
# found and removed (relatch.index.upload.temp_files), not in the system's shared /tmp.
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "tmp" / "uploads")
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "relatch.index.upload.temp_files.UploadTempFileHandler",
]
# Django's check that FILE_UPLOAD_TEMP_DIR exists: the handler above makes it when needed (a new
# data directory, or one whose tmp/ an operator cleared), so its absence is no error.
SILENCED_SYSTEM_CHECKS.append("files.E001")
# The largest distribution file accepted (RELATCH_MAX_UPLOAD_MB), and room for metadata fields.
MAX_UPLOAD_SIZE = _env_int("RELATCH_MAX_UPLOAD_MB", 300) * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# Who reads /simple/, /files/ and /pypi/ (relatch.index.simple.access): "public" (anyone; a
# private project only its people) or "authenticated" (every page and file needs a read token
# or a signed-in session). Anything else stops the start: a typo must not leave code public.
READ_ACCESS = os.environ.get("RELATCH_READ_ACCESS", "public").strip()
if READ_ACCESS not in {"public", "authenticated"}:
    raise ValueError(f"RELATCH_READ_ACCESS must be public or authenticated, not {READ_ACCESS!r}")
# Who may create an account (relatch.accounts.registration.policy): "open" (anyone), "closed"
# (only operators, with `relatch createuser`) or "domains" (only addresses at the
# RELATCH_SIGNUP_DOMAINS, comma-separated, and the account works once that address is
# verified). The default follows READ_ACCESS: an index that makes reads private is closed
# unless it says otherwise, so a team need not remember a second switch (with open sign-up,
# "authenticated" would mean anyone who fills in the form).
SIGNUP = os.environ.get("RELATCH_SIGNUP", "open" if READ_ACCESS == "public" else "closed").strip()
if SIGNUP not in {"open", "closed", "domains"}:
    raise ValueError(f"RELATCH_SIGNUP must be open, closed or domains, not {SIGNUP!r}")
SIGNUP_DOMAINS = tuple(
    domain.strip().lower().rstrip(".")
    for domain in os.environ.get("RELATCH_SIGNUP_DOMAINS", "").split(",") if domain.strip()
)
if (SIGNUP == "domains") != bool(SIGNUP_DOMAINS):
    raise ValueError("RELATCH_SIGNUP_DOMAINS (comma-separated email domains) is required with "
                     "RELATCH_SIGNUP=domains, and only allowed with it")
if bad_domains := [d for d in SIGNUP_DOMAINS if not re.fullmatch(r"[^\s@*/:]+\.[^\s@*/:.]+", d)]:
    raise ValueError(f"RELATCH_SIGNUP_DOMAINS: not an email domain: {', '.join(bad_domains)}")
# The upstream index (relatch.index.upstream): names with no local project are served from it.
# Empty turns it off. Pages are kept UPSTREAM_PAGE_SECONDS before they are revalidated.
UPSTREAM_URL = os.environ.get("RELATCH_UPSTREAM", "https://pypi.org/simple/").strip()
if UPSTREAM_URL and (urlsplit(UPSTREAM_URL).scheme not in {"http", "https"}
                     or not urlsplit(UPSTREAM_URL).hostname or not UPSTREAM_URL.endswith("/")):
    raise ValueError("RELATCH_UPSTREAM must be an http(s) URL ending in / (or empty: no "
                     "upstream), e.g. https://pypi.org/simple/")
UPSTREAM_PAGE_SECONDS = _env_seconds("RELATCH_UPSTREAM_PAGE_SECONDS", 600)
UPSTREAM_TIMEOUT = _env_seconds("RELATCH_UPSTREAM_TIMEOUT", 15)
# The largest upstream file fetched (PyPI holds wheels far above MAX_UPLOAD_SIZE).
UPSTREAM_MAX_FILE_SIZE = max(
    MAX_UPLOAD_SIZE, _env_int("RELATCH_UPSTREAM_MAX_FILE_MB", 2048) * 1024 * 1024
)
# Trusted publishing (relatch.index.trusted): the OIDC issuers whose CI tokens may be exchanged
# for 15-minute upload tokens, as DIALECT=ISSUER_URL pairs. The dialect names the claims the
# issuer's tokens carry: github (GitHub, Forgejo and Gitea Actions) or gitlab (GitLab CI/CD).
# Setting it replaces the default list; empty turns trusted publishing off.
_DEFAULT_OIDC_ISSUERS = "github=https://token.actions.githubusercontent.com,gitlab=https://gitlab.com"


def _oidc_issuers(text: str) -> dict[str, str]:
    issuers: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        dialect, _, url = entry.partition("=")
        parts = urlsplit(url.strip())
        if dialect.strip() not in {"github", "gitlab"} or parts.scheme != "https" \
                or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"RELATCH_OIDC_ISSUERS: {entry!r} is not DIALECT=https://issuer "
                             "with DIALECT github or gitlab")
        issuers[url.strip().rstrip("/")] = dialect.strip()
    return issuers


OIDC_ISSUERS = _oidc_issuers(os.environ.get("RELATCH_OIDC_ISSUERS", _DEFAULT_OIDC_ISSUERS))
# The audience CI asks its issuer for (GET /_/oidc/audience). Unique per index by default (the
# host), so a token minted for PyPI or for another Relatch is refused here.
OIDC_AUDIENCE = os.environ.get("RELATCH_OIDC_AUDIENCE", "").strip() or (_base.hostname or "")
# API tokens: new tokens expire after TOKEN_DEFAULT_DAYS unless their maker picks another date,
# at most TOKEN_MAX_DAYS ahead; a token unused for TOKEN_UNUSED_DAYS is disabled, with a mail
# (0: never).
TOKEN_DEFAULT_DAYS = _env_int("RELATCH_TOKEN_DEFAULT_DAYS", 90)
TOKEN_MAX_DAYS = _env_int("RELATCH_TOKEN_MAX_DAYS", 366)
TOKEN_UNUSED_DAYS = _env_int("RELATCH_TOKEN_UNUSED_DAYS", 180)
if not 1 <= TOKEN_DEFAULT_DAYS <= TOKEN_MAX_DAYS:
    raise ValueError("RELATCH_TOKEN_DEFAULT_DAYS must be at least 1 and at most "
                     "RELATCH_TOKEN_MAX_DAYS")
# GitHub secret scanning (relatch.index.tokens.scanning): where the public keys that sign its
# alerts are read. Empty turns the endpoint off.
SECRET_SCANNING_KEYS_URL = os.environ.get(
    "RELATCH_SECRET_SCANNING_KEYS_URL", "https://api.github.com/meta/public_keys/secret_scanning"
).strip()
# Account recovery (DESIGN §5): the enforced wait when one proof must be backed by time, and
# how long "this wasn't me" blocks new requests for the account.
RECOVERY_WAIT = timedelta(days=_env_int("RELATCH_RECOVERY_WAIT_DAYS", 7))
RECOVERY_BLOCK = timedelta(days=_env_int("RELATCH_RECOVERY_BLOCK_DAYS", 30))
# An account that owns no project, with two independent sources, completes by itself after this
# announced wait if nobody says "this wasn't me" (DESIGN §5).
RECOVERY_AUTO_WAIT = timedelta(hours=_env_int("RELATCH_RECOVERY_AUTO_WAIT_HOURS", 24))
# Repository proofs (DESIGN §5): the only hosts (names or IP literals) git may contact. A host
# must also resolve to public addresses only, unless the address itself is listed (SSRF).
REPOSITORY_HOSTS = [
    h.strip().lower().strip("[]") for h in os.environ.get(
        "RELATCH_REPOSITORY_HOSTS", "github.com,gitlab.com,codeberg.org,bitbucket.org"
    ).split(",") if h.strip()
]
# Each check (git ls-remote, in the worker) is killed after this many seconds, and at most this
# many run at once across worker processes (through the shared cache: RELATCH_REDIS_URL).
REPOSITORY_CHECK_TIMEOUT = 10
REPOSITORY_CHECK_WORKERS = 4
# Invitations to a project role expire after this many days.
ROLE_INVITATION_DAYS = 7
# Domain checks over RDAP (issue 17, relatch.accounts.emails.domains): the bootstrap file
# (RFC 9224) as a URL, fetched and cached in the data directory for a week, or a file path.
# Lookups go over https only; plain http only to loopback, and only when this URL is itself
# on a loopback address (a test server or a local mirror). Each lookup (redirects included)
# gets at most RDAP_TIMEOUT seconds.
RDAP_BOOTSTRAP = (os.environ.get("RELATCH_RDAP_BOOTSTRAP", "").strip()
                  or "https://data.iana.org/rdap/dns.json")
RDAP_TIMEOUT = 10

STATIC_URL = f"{BASE_PATH}/static/"
# WhiteNoise matches the path below the prefix (PATH_INFO without SCRIPT_NAME).
WHITENOISE_STATIC_PREFIX = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Served from the package directory, so `relatch serve` needs no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG


def _smtp_mailer(url: str) -> dict[str, object]:
    """The SMTP mailer from RELATCH_EMAIL_URL: smtp://, smtp+tls:// (STARTTLS) or smtps://."""
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtp+tls", "smtps"}:
        raise ValueError("RELATCH_EMAIL_URL must start with smtp://, smtp+tls:// or smtps://")
    query = parse_qs(parts.query)
    return {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": parts.hostname or "localhost",
            "port": parts.port or {"smtp": 25, "smtp+tls": 587, "smtps": 465}[parts.scheme],
            "username": unquote(parts.username or ""),
            "password": unquote(parts.password or ""),
            "use_tls": parts.scheme == "smtp+tls",
            "use_ssl": parts.scheme == "smtps",
            "timeout": int(query.get("timeout", ["20"])[0]),
        },
    }


EMAIL_URL = os.environ.get("RELATCH_EMAIL_URL", "")
OUTBOX_DIR = DATA_DIR / "outbox"
OUTBOX_ENABLED = not EMAIL_URL
MAILERS = {
    "default": _smtp_mailer(EMAIL_URL)
    if EMAIL_URL
    else {"BACKEND": "relatch.notify.outbox.OutboxEmailBackend"}
}
DEFAULT_FROM_EMAIL = os.environ.get("RELATCH_FROM_EMAIL", f"Relatch <noreply@{_base.hostname}>")
# Security mail is retried (1 min doubling up to an hour) for this long after its first failed
# attempt before it is given up (relatch.notify.retries). It replaces RELATCH_EMAIL_MAX_ATTEMPTS,
# which gave up after about 16 minutes; a system check warns when that is still set.
EMAIL_GIVE_UP_HOURS = _env_int("RELATCH_EMAIL_GIVE_UP_HOURS", 72)
if EMAIL_GIVE_UP_HOURS < 1:
    raise ValueError("RELATCH_EMAIL_GIVE_UP_HOURS must be at least 1 (the default is 72)")

# Bounces (issue 17). Each message leaves with its own return path, bounces+<token>@<domain>
# (VERP), so a delivery-status notification names the message it is about; "off" sends with
# the From address as the envelope sender instead (a relay that allows no other sender).
_from_domain = parseaddr(DEFAULT_FROM_EMAIL)[1].rpartition("@")[2].lower() or _base.hostname
BOUNCE_DOMAIN = os.environ.get("RELATCH_BOUNCE_DOMAIN", "").strip().lower() or _from_domain
VERP_ENABLED = BOUNCE_DOMAIN != "off"


def _listen_address(name: str) -> tuple[str, int] | None:
    """HOST:PORT (an IPv6 host in brackets) from the environment; None when unset."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    host, _, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{name} must be HOST:PORT (e.g. 127.0.0.1:2525), not {value!r}")
    return host, int(port)


# Where `relatch bounce_listener` (started by `relatch serve` when set) takes DSNs over SMTP.
BOUNCE_LISTEN = _listen_address("RELATCH_BOUNCE_LISTEN")
# The secret that signs POST /hooks/bounces (HMAC-SHA256 of the body); unset: the hook is off.
BOUNCE_WEBHOOK_SECRET = os.environ.get("RELATCH_BOUNCE_WEBHOOK_SECRET", "")
# The largest DSN taken, over SMTP or the webhook: Relatch's own mail, returned whole, fits.
BOUNCE_MAX_BYTES = 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "relatch.web.logging.RedactSecretsFilter"},
        "database_outage": {"()": "relatch.web.outage.DatabaseOutageLogFilter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # A database outage is one line per 30 s, not a traceback per request (web.outage).
        "django.request": {"handlers": ["console"], "level": "INFO", "propagate": False,
                           "filters": ["database_outage"]},
    },
}
