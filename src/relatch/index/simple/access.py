"""Who may read the installer pages and files: RELATCH_READ_ACCESS and private projects.

A **reader** is an account, proved by one of:

- HTTP Basic with the user name ``__token__`` and a read token (APIToken.Purpose.READ) as the
  password: what pip (URL credentials, netrc, keyring) and uv (UV_INDEX_<NAME>_USERNAME and
  _PASSWORD) send. Upload and staff tokens do not read: a CI secret that publishes should not
  also open every private project, and a leaked read token must not publish (least privilege).
- a signed-in browser session (the installer views then run on the full stack: a request
  carrying the session cookie never takes the lean path, see ``relatch.index.simple.lean``).

Rules (``may_read``):

- ``public`` (the default): a project that is not private is readable by anyone; a private one
  only by accounts with a role on it.
- ``authenticated``: every page and file needs a reader; any active account reads the projects
  that are not private, role holders read private ones.
- A read token limited to one project reads only that project of this index (in public mode
  it also reads what anyone reads). Staff get no way around a private project here: their
  sessions are the most valuable to steal, and the staff pages show what they need.

Refusals: no reader, or credentials that do not prove one, get 401 with
``WWW-Authenticate: Basic`` (never a redirect to a sign-in page: installers cannot follow
it). A reader without rights to a private project gets 404, as for a name that does not
exist, so accounts do not learn each other's private names.

Why an anonymous request for a private project gets 401, not 404, in public mode: pip sends
netrc and keyring credentials only after a 401, so a 404 would make those setups fail, and
a 404 (or, with an upstream, the upstream's project of the same name) would send a client
without credentials to another package under the same name: dependency confusion. The cost
is that an anonymous client can tell a private name exists (401 rather than 404 or the
upstream's page); it learns nothing else. Operators for whom names are secret use
``authenticated``, where every anonymous request gets the same 401.
"""

import base64
import binascii
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, NamedTuple

from django.conf import settings
from django.db.models import Q
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotFound,
    JsonResponse,
)
from django.utils import timezone
from django.utils.cache import patch_cache_control, patch_vary_headers

from relatch.accounts.emails.middleware import has_verified_email, trust_taken_back
from relatch.accounts.models import User
from relatch.index.models import APIToken, Role
from relatch.index.tokens import services

PUBLIC = "public"
AUTHENTICATED = "authenticated"
TOKEN_USERNAME = "__token__"  # noqa: S105 (the fixed user name, not a secret)
CHALLENGE = 'Basic realm="Relatch"'
NEEDS_READER = (
    "Reading this index needs a read token: use __token__ as the user name and a read token "
    "(from your account's API tokens page) as the password."
)
NOT_A_TOKEN = f"Only read tokens are accepted here. {NEEDS_READER}"
# An Authorization header longer than this holds no token (a token's text is 68 characters).
MAX_AUTHORIZATION = 512
# A read token is used on every page and file of every install: its last-used time and an
# API_TOKEN_USED event are written at most this often per token, not per request.
USE_NOTE_INTERVAL = timedelta(minutes=5)
_READER = "_relatch_reader"
View = Callable[..., HttpResponseBase]


class Reader(NamedTuple):
    """An account reading the index; ``token`` is None for a signed-in browser session."""

    user: User
    token: APIToken | None

    @property
    def limited_to(self) -> int | None:
        """The one project a project-limited read token reaches, else None."""
        return self.token.project_id if self.token is not None else None


class Unauthorized(Exception):  # noqa: N818 (named for the status it becomes)
    """Credentials were sent that prove no reader; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def unauthorized(message: str = NEEDS_READER) -> HttpResponse:
    """401 with a Basic challenge, so pip asks netrc or keyring and tries again."""
    response = HttpResponse(message + "\n", status=401, content_type="text/plain; charset=utf-8")
    response["WWW-Authenticate"] = CHALLENGE
    # Never stored: a cache must not answer a later request that carries credentials with it.
    response["Cache-Control"] = "no-store"
    patch_vary_headers(response, ["Authorization", "Cookie"])
    return response


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or len(encoded) > MAX_AUTHORIZATION:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, separator, password = decoded.partition(":")
    return (username, password) if separator else None


def _token_reader(request: HttpRequest, header: str) -> Reader:
    credentials = _basic_credentials(header)
    # An account's password never reads: it would let a stolen netrc sign in to the web.
    if credentials is None or credentials[0] != TOKEN_USERNAME:
        raise Unauthorized(NOT_A_TOKEN)
    try:
        token = services.authenticate_token(raw=credentials[1], purpose=APIToken.Purpose.READ)
    except services.TokenRefusedError as refusal:
        services.note_token_refusal(request=request, refusal=refusal)
        raise Unauthorized(refusal.message) from None
    _note_use(request, token)
    return Reader(token.user, token)


def _note_use(request: HttpRequest, token: APIToken) -> None:
    last = token.last_used_at
    if last is None or timezone.now() - last >= USE_NOTE_INTERVAL:
        services.note_token_use(request=request, token=token)


def identify(request: HttpRequest) -> Reader | None:
    """The reader of ``request``, None for an anonymous one; Unauthorized when credentials
    were sent but prove no reader (they never fall back to anonymous or to the session)."""
    if (header := request.META.get("HTTP_AUTHORIZATION")) is not None:
        return _token_reader(request, header)
    # request.user is set only on the full stack, i.e. when the request carried a session
    # cookie (relatch.index.simple.lean).
    return session_reader(request)


def readers_only(view: View) -> View:
    """Identify the reader before ``view`` runs: 401 for credentials that prove none, and
    for no reader at all when RELATCH_READ_ACCESS is authenticated. What a reader sees is
    kept out of shared caches (Cache-Control: private, Vary: Authorization, Cookie)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            reader = identify(request)
        except Unauthorized as refusal:
            return unauthorized(refusal.message)
        if reader is None and settings.READ_ACCESS != PUBLIC:
            return unauthorized()
        setattr(request, _READER, reader)
        response = view(request, *args, **kwargs)
        if is_kept_private(request):
            keep_private(response)
        return response

    return wrapper


def json_refusals(view: View) -> View:
    """For the /pypi/ JSON API (outside ``readers_only``): its plain-text refusals become
    PyPI's JSON error body ``{"message": ...}``, with the same status and headers
    (WWW-Authenticate, Cache-Control, Vary), so JSON clients can read why."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        plain = response.get("Content-Type", "").startswith("text/plain")
        if response.status_code in (401, 404) and plain and isinstance(response, HttpResponse):
            return _as_json(response)
        return response

    return wrapper


def _as_json(response: HttpResponse) -> JsonResponse:
    refusal = JsonResponse({"message": response.content.decode().strip()},
                           status=response.status_code)
    for header, value in response.headers.items():
        if header.lower() not in {"content-type", "content-length"}:
            refusal[header] = value
    return refusal


def keep_private(response: HttpResponseBase) -> None:
    """Only the requester's own cache may keep ``response`` (RFC 9111 §5.2.2.7)."""
    patch_cache_control(response, private=True)
    patch_vary_headers(response, ["Authorization", "Cookie"])


def is_kept_private(request: HttpRequest) -> bool:
    """Whether what this request reads is for the requester alone (``readers_only`` marks it
    private): a reader identified, or reads that need one."""
    return reader_of(request) is not None or settings.READ_ACCESS != PUBLIC


def reader_of(request: HttpRequest) -> Reader | None:
    """The reader ``readers_only`` found; a view without it is a bug, refused loudly."""
    if not hasattr(request, _READER):
        raise RuntimeError("an installer view ran without readers_only")
    reader: Reader | None = getattr(request, _READER)
    return reader


def may_read(reader: Reader | None, *, project_id: int, private: bool) -> bool:
    """Whether ``reader`` may read the project (one query only for a private project)."""
    everyone_reads = not private and settings.READ_ACCESS == PUBLIC
    if everyone_reads:
        return True
    if reader is None:
        return False
    if reader.limited_to is not None and reader.limited_to != project_id:
        return False
    if not private:
        return True
    return Role.objects.filter(project_id=project_id, user=reader.user).exists()


def refuse_project(request: HttpRequest, *, project_id: int, private: bool
                   ) -> HttpResponse | None:
    """None when the request's reader may read the project; else its refusal: 401 without a
    reader (see the module docstring for why not 404), 404 for a reader without rights."""
    reader = reader_of(request)
    if may_read(reader, project_id=project_id, private=private):
        return None
    if reader is None:
        return unauthorized()
    return HttpResponseNotFound("Not Found\n", content_type="text/plain; charset=utf-8")


def listed_projects(request: HttpRequest) -> Q | None:
    """Which projects /simple/ lists for this request: None for what anyone may read (the
    list kept in the cache), else a filter for this reader's list (built per request)."""
    return readable_filter(reader_of(request))


def session_reader(request: HttpRequest) -> Reader | None:
    """The signed-in account of a browser page (full stack), as a reader: for the HTML
    pages, which must hide private projects with the same rules (``may_read``)."""
    user = getattr(request, "user", None)
    # An account reads only once an address of it is verified, as its other pages wait
    # (RequireVerifiedEmailMiddleware): registering as someone@team.example, without that
    # mailbox, must not open an index whose reads are private (RELATCH_SIGNUP=domains).
    if (isinstance(user, User) and user.is_authenticated and user.is_active
            and (has_verified_email(user) or trust_taken_back(user))):
        return Reader(user, None)
    return None


def readable_filter(reader: Reader | None) -> Q | None:
    """A filter on Project for what ``reader`` may read; None for an anonymous reader,
    who reads the projects that are not private (public mode only)."""
    if reader is None:
        return None
    theirs = Q(pk__in=Role.objects.filter(user=reader.user).values("project_id"))
    readable = Q(private=False) | theirs
    if reader.limited_to is None:
        return readable
    limited = Q(pk=reader.limited_to) & readable
    return (Q(private=False) | limited) if settings.READ_ACCESS == PUBLIC else limited
