"""The API-token pages: the list, create (shown once), revoke.

Creating needs a second factor and a fresh re-authentication (which, for an account with a
second factor, asks for it too). The new token's text is rendered straight into the POST's
response with ``Cache-Control: no-store`` and is kept nowhere else, not even in the session:
a reload shows that it is gone.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from relatch.accounts.current import signed_in_user
from relatch.accounts.reauth import require_recent_auth, require_recent_auth_then
from relatch.index.models import APIToken
from relatch.index.tokens import services
from relatch.index.tokens.forms import CreateTokenForm
from relatch.index.tokens.queries import token_lines
from relatch.mfa.policy import SecondFactorRequiredError, has_second_factor
from relatch.web.once import issue_form_token, use_form_token

_TEMPLATES = "index/tokens"
_FORM_TOKEN_KEY = "relatch_token_create_form"  # noqa: S105 (a session key name)
ALREADY_SENT = (
    "This form was already sent, or the page was out of date. Nothing more was made: a token "
    "created by the first submit is on your list, but its text cannot be shown again. Revoke "
    "it if you did not save it, and create a new one."
)


@never_cache
@require_GET
def token_list(request: HttpRequest) -> HttpResponse:
    """The account's own tokens: name, scope, created, last use (when, from which address,
    with which program), expires, revoked and why."""
    user = signed_in_user(request)
    context = {
        "tokens": token_lines(user),
        "live_count": services.live_tokens(user).count(),
        "max_tokens": services.MAX_LIVE_TOKENS,
        "has_second_factor": has_second_factor(user),
        "default_days": settings.TOKEN_DEFAULT_DAYS,
        "max_days": settings.TOKEN_MAX_DAYS,
        "unused_days": settings.TOKEN_UNUSED_DAYS,
    }
    return render(request, f"{_TEMPLATES}/list.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
def create(request: HttpRequest) -> HttpResponse:
    """The form for a new token; its result page shows the token once."""
    # Checked before re-authentication: without a factor there is nothing to confirm for.
    if not has_second_factor(signed_in_user(request)):
        return _needs_factor(request, SecondFactorRequiredError(services.CREATE_ACTION).message)
    return _create_after_reauth(request)


@require_recent_auth
def _create_after_reauth(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    if request.method != "POST":
        return _form_page(request, CreateTokenForm(user=user))
    form = CreateTokenForm(request.POST, user=user)
    if not _use_form_token(request):
        return _form_page(request, form, error=ALREADY_SENT, status=400)
    if not form.is_valid():
        return _form_page(request, form, status=400)
    try:
        token, text = services.create_token(
            request=request,
            user=user,
            name=form.cleaned_data["name"],
            project=form.chosen_project(),
            expires_at=form.chosen_expiry(),
            purpose=form.chosen_purpose(),
        )
    except SecondFactorRequiredError as refusal:  # a factor removed in another tab meanwhile
        return _needs_factor(request, refusal.message)
    except services.TokenError as refusal:
        return _form_page(request, form, error=refusal.message, status=refusal.status)
    return _created_page(request, token=token, text=text)


def _created_page(request: HttpRequest, *, token: APIToken, text: str) -> HttpResponse:
    context = {
        "token": token,
        "token_text": text,
        "repository_url": f"{settings.BASE_URL}/legacy/",
        "index_url": f"{settings.BASE_URL}/simple/",
        "index_host": urlsplit(settings.BASE_URL).hostname,
        "is_read_token": token.purpose == APIToken.Purpose.READ,
    }
    # never_cache on the view marks this no-store: no browser or proxy keeps the token.
    return render(request, f"{_TEMPLATES}/created.html", context)


def _form_page(
    request: HttpRequest, form: CreateTokenForm, *, error: str = "", status: int = 200
) -> HttpResponse:
    if error:
        form.add_error(None, error)
    context = {"form": form, "form_token": _form_token(request)}
    return render(request, f"{_TEMPLATES}/create.html", context, status=status)


def _needs_factor(request: HttpRequest, message: str) -> HttpResponse:
    # Set up a factor, then back to the new-token form (GET: nothing is sent twice).
    context = {"message": message, "next": reverse("tokens:create")}
    return render(request, f"{_TEMPLATES}/needs_factor.html", context, status=403)


def _form_token(request: HttpRequest) -> str:
    return issue_form_token(request, key=_FORM_TOKEN_KEY)


def _use_form_token(request: HttpRequest) -> bool:
    return use_form_token(request, key=_FORM_TOKEN_KEY)


@require_POST
@require_recent_auth_then("tokens:list")
def revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    """Revoke one token of the account; it stops working at once."""
    try:
        token = services.revoke_token(
            request=request, user=signed_in_user(request), token_id=token_id
        )
    except services.TokenNotFoundError:
        # Another account's token, or none: the same answer, nothing changes.
        return render(request, f"{_TEMPLATES}/not_found.html", status=404)
    except services.TokenError as refusal:
        messages.error(request, refusal.message)
        return redirect("tokens:list")
    messages.success(request, f"Token “{token.name}” revoked. It no longer works.")
    return redirect("tokens:list")
