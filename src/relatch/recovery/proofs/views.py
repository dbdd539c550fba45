"""The requester's proof pages (reached from the status link) and the co-owner's vouch page."""

from typing import Any

from django import forms as django_forms
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_http_methods

from relatch.accounts.emails.middleware import verified_email_not_required
from relatch.accounts.models import User
from relatch.accounts.reauth import require_recent_auth
from relatch.mfa.forms import AppCodeForm, RecoveryCodeForm, SecurityKeyForm
from relatch.recovery.models import ProofKind, RecoveryProof
from relatch.recovery.proofs import branch_checks, forms, services, wording
from relatch.recovery.proofs.evidence import (
    mask_address,
    shared_owned_projects,
    verified_account_emails,
)
from relatch.recovery.proofs.factors import security_key_options, submit_factor
from relatch.recovery.proofs.queries import requester_proof, why_not
from relatch.recovery.sources import vouch_refusal
from relatch.web.path_prefix import site_url

MAX_PATH_PART = 100
# The same forms as the sign-in's second step: the same bounds and the same words.
FACTOR_FORMS: dict[ProofKind, type[django_forms.Form]] = {
    ProofKind.TOTP: AppCodeForm, ProofKind.RECOVERY_CODE: RecoveryCodeForm,
    ProofKind.SECURITY_KEY: SecurityKeyForm,
}


def proof_page_url(proof: RecoveryProof) -> str:
    """The absolute URL of ``proof``'s page for the holder of the status link (secret)."""
    from relatch.recovery.requester.links import status_token

    recovery = proof.request
    path = reverse("proofs:proof", kwargs={"proof_id": proof.pk, "public_id": recovery.public_id,
                                           "token": status_token(recovery)})
    return site_url(path)


def _proof_for_link(proof_id: int, public_id: str, token: str) -> RecoveryProof:
    """The proof, if the link is the request's own; otherwise 404, the same for every case,
    so one request's link shows nothing of another."""
    from relatch.recovery.requester.links import status_token_is_valid

    proof = None
    if len(public_id) <= MAX_PATH_PART and len(token) <= MAX_PATH_PART:
        proof = (RecoveryProof.objects.select_related("request__user")
                 .filter(pk=proof_id, request__public_id=public_id).first())
    if proof is None or not status_token_is_valid(proof.request, token):
        raise Http404("No such proof.")
    return proof


def _status_url(proof: RecoveryProof, token: str) -> str:
    try:
        return reverse("requester:status",
                       kwargs={"public_id": proof.request.public_id, "token": token})
    except NoReverseMatch:
        return ""


@login_not_required
@verified_email_not_required
@require_http_methods(["GET", "POST"])
def proof_page(request: HttpRequest, proof_id: int, public_id: str, token: str) -> HttpResponse:
    """Show the proof and take the requester's answer (POST, then back here)."""
    proof = _proof_for_link(proof_id, public_id, token)
    if request.method == "POST":
        _answer(request, proof)
        return redirect(request.path)
    return render(request, "recovery/proofs/proof.html", _page_context(request, proof, token))


def _page_context(request: HttpRequest, proof: RecoveryProof, token: str) -> dict[str, Any]:
    # What the page shows of the proof is the API's read model; the forms are the page's own.
    shown = requester_proof(proof)
    context: dict[str, Any] = {"shown": shown, "status_url": _status_url(proof, token)}
    if proof.kind == ProofKind.API_TOKEN:
        context["form"] = forms.ApiTokenForm()
    elif proof.kind == ProofKind.PASSWORD:
        context["form"] = forms.PasswordForm()
    elif proof.kind == ProofKind.ACCOUNT_EMAIL:
        context["address_form"] = _address_form(proof)
        context["form"] = forms.CodeForm()
    elif proof.kind in FACTOR_FORMS:
        context["form"] = FACTOR_FORMS[ProofKind(proof.kind)]()
        if proof.kind == ProofKind.SECURITY_KEY and shown.is_pending:
            context["webauthn_options"] = security_key_options(request=request, proof=proof)
    return context


def _address_form(proof: RecoveryProof, data: Any = None) -> forms.AddressForm:
    user = proof.request.user
    emails = verified_account_emails(user) if user is not None else []
    return forms.AddressForm(data, emails=emails,
                             masked={e.pk: mask_address(e.address) for e in emails})


def _answer(request: HttpRequest, proof: RecoveryProof) -> None:
    """Hand the answer to the service; say plainly what happened."""
    try:
        outcome = _dispatch(request, proof)
    except services.ProofError as refused:
        messages.error(request, refused.message)
        return
    if outcome is True:
        messages.success(request, wording.ACCEPTED)
    elif outcome is False:
        proof.refresh_from_db()
        messages.error(request, why_not(proof))
    elif outcome:
        messages.error(request, outcome)


def _dispatch(request: HttpRequest, proof: RecoveryProof) -> bool | str | None:
    kind, data = proof.kind, request.POST
    if kind == ProofKind.REPO_BRANCH:
        # Queued for the worker: git never runs in a web request (a slow host would hold it).
        messages.info(request, branch_checks.request_check(proof=proof, by_requester=True))
        return None
    if kind == ProofKind.API_TOKEN:
        form: Any = forms.ApiTokenForm(data)
        return services.submit_api_token(proof=proof, raw=form.cleaned_data["token"]) \
            if form.is_valid() else wording.UNREADABLE[ProofKind.API_TOKEN]
    if kind == ProofKind.PASSWORD:
        form = forms.PasswordForm(data)
        return services.submit_password(proof=proof, password=form.cleaned_data["password"]) \
            if form.is_valid() else wording.UNREADABLE[ProofKind.PASSWORD]
    if kind == ProofKind.ACCOUNT_EMAIL:
        return _email_step(request, proof)
    if kind in FACTOR_FORMS:
        form = FACTOR_FORMS[ProofKind(kind)](data)
        if not form.is_valid():
            return next(iter(form.errors.values()))[0]
        answer = form.cleaned_data.get("code") or form.cleaned_data.get("credential")
        return submit_factor(request=request, proof=proof, answer=str(answer))
    return wording.CO_OWNER_ANSWERS


def _email_step(request: HttpRequest, proof: RecoveryProof) -> bool | str | None:
    if request.POST.get("step") == "send":
        address_form = _address_form(proof, request.POST)
        if not address_form.is_valid():
            return wording.CHOOSE_ADDRESS
        services.send_account_email_code(proof=proof, address=address_form.chosen_address())
        messages.success(request, wording.CODE_SENT)
        return None
    form = forms.CodeForm(request.POST)
    if not form.is_valid():
        return wording.UNREADABLE[ProofKind.ACCOUNT_EMAIL]
    return services.submit_account_email_code(proof=proof, code=form.cleaned_data["code"])


def _vouchable(request: HttpRequest, proof_id: int) -> tuple[RecoveryProof, User]:
    """The co_owner proof, if the signed-in user owns a project with the account; else 404,
    so nobody else learns that the request exists."""
    user = request.user
    assert isinstance(user, User)
    proof = (RecoveryProof.objects.select_related("request__user")
             .filter(pk=proof_id, kind=ProofKind.CO_OWNER).first())
    account = proof.request.user if proof is not None else None
    if proof is None or account is None or not shared_owned_projects(account, user):
        raise Http404("No such request.")
    return proof, account


@require_recent_auth
@require_http_methods(["GET", "POST"])
def vouch(request: HttpRequest, proof_id: int) -> HttpResponse:
    """A co-owner, signed in with two-step sign-in, sees who asks and vouches (or not)."""
    proof, account = _vouchable(request, proof_id)
    user = request.user
    assert isinstance(user, User)
    if request.method == "POST":
        try:
            services.vouch_as_co_owner(proof=proof, co_owner=user, request=request,
                                       checked_with_them=request.POST.get("checked") == "yes")
            messages.success(request, f"You vouched for {account.username}. Thank you.")
        except services.ProofError as refused:
            messages.error(request, refused.message)
        return redirect(request.path)
    recovery = proof.request
    return render(request, "recovery/proofs/vouch.html", {
        "proof": proof, "account": account, "recovery": recovery,
        "projects": shared_owned_projects(account, user),
        "is_pending": proof.status == RecoveryProof.Status.PENDING,
        "refusal": vouch_refusal(recovery=recovery, co_owner=user),
        "filed_at": recovery.contact_confirmed_at or recovery.created_at,
    })
