"""The requester's pages: "Can't sign in?", the request form, the contact code, the secret
status page, and the owner's "this wasn't me" page. All public (no sign-in)."""

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from relatch.recovery.models import RecoveryRequest, State
from relatch.recovery.objections import object_to_request
from relatch.recovery.proofs.services import CODE_LIFETIME
from relatch.recovery.requester import links, services
from relatch.recovery.requester.forms import (
    HONEYPOT_FIELD,
    MAX_ACCOUNT_NAME,
    AccountNameForm,
    ContactCodeForm,
    MessageForm,
    RecoveryRequestForm,
    StillHasForm,
)
from relatch.recovery.requester.queries import requester_status
from relatch.recovery.requester.routing import route
from relatch.recovery.requester.signin_requests import proves_mailbox
from relatch.web.referrer import keep_url_out_of_referrers

_T = "recovery/requester"
# The browser that started a request holds its public id until the code is entered.
PENDING_KEY = "relatch_recovery_pending"


def _private(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The URL holds a secret: out of referrers, and no caching."""
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        keep_url_out_of_referrers(response)
        return response
    return login_not_required(never_cache(wrapper))


@login_not_required
@never_cache
@require_GET
def start_here(request: HttpRequest) -> HttpResponse:
    """ "Can't sign in?": the account's name first, then what the person still has, then the
    shortest safe path. The advice reads the answers only, never the account: an existing
    and an unknown name get the same pages, apart from the name echoed back (ASVS 6.3.8)."""
    named = AccountNameForm(request.GET if "account" in request.GET else None)
    if not named.is_valid():
        return render(request, f"{_T}/start_here.html", {"named": named},
                      status=400 if named.is_bound else 200)
    account = named.cleaned_data["account"].strip()
    asked = "asked" in request.GET
    form = StillHasForm(request.GET if asked else None)
    if not (asked and form.is_valid()):
        return render(request, f"{_T}/still_has.html", {"form": form, "account": account},
                      status=400 if asked else 200)
    has = form.cleaned_data["has"]
    return render(request, f"{_T}/advice.html", {
        "advice": route(set(has)), "account": account, "is_address": "@" in account,
        "sign_in_url": _with_query("signin:login", username=account),
        "request_url": _with_query("requester:new", username=account, has=has),
    })


def _with_query(url_name: str, **values: str | list[str]) -> str:
    """The next step's URL, its form filled in (the name is no secret; it is in the page)."""
    return f"{reverse(url_name)}?{urlencode(values, doseq=True)}"


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def new(request: HttpRequest) -> HttpResponse:
    """The request form; every accepted submission ends on the same "enter the code" page."""
    if request.method != "POST":
        initial = {"still_has": request.GET.getlist("has"),
                   "username": request.GET.get("username", "")[:MAX_ACCOUNT_NAME]}
        return render(request, f"{_T}/new.html", {"form": RecoveryRequestForm(initial=initial)})
    if request.POST.get(HONEYPOT_FIELD):
        # A bot sees what a person would; nothing is made or sent.
        request.session.pop(PENDING_KEY, None)
        return redirect("requester:confirm")
    form = RecoveryRequestForm(request.POST)
    if not form.is_valid():
        return render(request, f"{_T}/new.html", {"form": form}, status=400)
    data = form.cleaned_data
    try:
        recovery = services.start_request(
            request=request, username=data["username"], contact_email=data["contact_email"],
            still_has=data["still_has"], description=data["description"],
            agreed=data["agreed"], acknowledged=data["acknowledged"],
        )
    except services.RequesterError as refusal:
        form.add_error(None, refusal.message)
        return render(request, f"{_T}/new.html", {"form": form}, status=refusal.status)
    request.session[PENDING_KEY] = recovery.public_id
    return redirect("requester:confirm")


def _pending(request: HttpRequest) -> RecoveryRequest | None:
    public_id = request.session.get(PENDING_KEY)
    if not isinstance(public_id, str):
        return None
    return RecoveryRequest.objects.filter(public_id=public_id).first()


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest) -> HttpResponse:
    """Enter the code mailed to the contact address; a right code files the request."""
    recovery = _pending(request)
    form = ContactCodeForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if recovery is None:
            return _confirm_page(request, ContactCodeForm(), 400,
                                 error="No request is waiting for a code in this browser. "
                                       "Start again.")
        if "new_code" in request.POST:
            return _new_code(request, recovery)
        if form.is_valid():
            if services.confirm_contact(recovery=recovery, code=form.cleaned_data["code"]):
                request.session.pop(PENDING_KEY, None)
                return redirect("requester:filed")
            form.add_error("code", services.why_code_refused(recovery))
            status = 400
        else:
            status = 400
    return _confirm_page(request, form, status)


def _confirm_page(request: HttpRequest, form: ContactCodeForm, status: int = 200, *,
                  error: str = "", resent: bool = False) -> HttpResponse:
    recovery = _pending(request)
    context = {"form": form, "error": error, "resent": resent,
               "proves_mailbox": recovery is not None and proves_mailbox(recovery),
               "mailbox_minutes": int(CODE_LIFETIME.total_seconds() // 60)}
    return render(request, f"{_T}/confirm.html", context, status=status)


def _new_code(request: HttpRequest, recovery: RecoveryRequest) -> HttpResponse:
    try:
        services.send_new_code(request=request, recovery=recovery)
    except services.RequesterError as refusal:
        return _confirm_page(request, ContactCodeForm(), refusal.status, error=refusal.message)
    return _confirm_page(request, ContactCodeForm(), resent=True)


@login_not_required
@require_GET
def filed(request: HttpRequest) -> HttpResponse:
    return render(request, f"{_T}/filed.html")


def _by_status_link(public_id: str, token: str) -> RecoveryRequest:
    recovery = links.find_by_status_token(public_id, token)
    if recovery is None:
        raise Http404
    return recovery


@_private
@require_GET
def status(request: HttpRequest, public_id: str, token: str) -> HttpResponse:
    """The requester's secret page. It shows no account fact, not even whether it exists."""
    recovery = _by_status_link(public_id, token)
    return _status_page(request, recovery, token, MessageForm())


def _status_page(request: HttpRequest, recovery: RecoveryRequest, token: str,
                 form: MessageForm, status: int = 200, error: str = "") -> HttpResponse:
    return render(request, f"{_T}/status.html", {
        "status": requester_status(recovery, token=token), "form": form, "error": error,
        "token": token,
    }, status=status)


@_private
@require_POST
def send_message(request: HttpRequest, public_id: str, token: str) -> HttpResponse:
    recovery = _by_status_link(public_id, token)
    form = MessageForm(request.POST)
    if not form.is_valid():
        return _status_page(request, recovery, token, form, status=400)
    services.post_message(recovery=recovery, body=form.cleaned_data["body"])
    return redirect("requester:status", public_id, token)


@_private
@require_POST
def cancel(request: HttpRequest, public_id: str, token: str) -> HttpResponse:
    return _act(request, public_id, token, services.cancel_by_requester)


@_private
@require_POST
def reopen(request: HttpRequest, public_id: str, token: str) -> HttpResponse:
    return _act(request, public_id, token, services.reopen)


def _act(request: HttpRequest, public_id: str, token: str,
         action: Callable[..., None]) -> HttpResponse:
    recovery = _by_status_link(public_id, token)
    try:
        action(recovery=recovery)
    except services.RequesterError as refusal:
        recovery.refresh_from_db()
        return _status_page(request, recovery, token, MessageForm(), refusal.status,
                            refusal.message)
    return redirect("requester:status", public_id, token)


@_private
@require_http_methods(["GET", "POST"])
def not_me(request: HttpRequest, public_id: str, token: str) -> HttpResponse:
    """ "This wasn't me": a button (mail scanners follow links), then hold, block and freeze
    (relatch.recovery.objections); never a cancellation, which a hijacker could use."""
    recovery = links.find_by_not_me_token(public_id, token)
    if recovery is None or recovery.user is None:
        raise Http404
    if request.method != "POST":
        return render(request, f"{_T}/not_me.html", {
            "recovery": recovery, "recovery_token": token,
            "completed": recovery.state == State.COMPLETED})
    objection = object_to_request(recovery=recovery)
    return render(request, f"{_T}/not_me_done.html", {"recovery": recovery,
                                                      "objection": objection})
