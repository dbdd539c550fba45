"""The staff desk's pages: the queue, a request's detail and its actions (issue 5 point 7).

Only staff see the desk: anyone else, signed in or not, gets the same 404 as for a page that
does not exist, so the desk is not even revealed. Staff need a second factor for every page and
a fresh password for every action (a stolen staff session must not recover accounts).
"""

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from relatch.accounts.models import User
from relatch.accounts.reauth import is_recently_authenticated, reauthenticate_url
from relatch.mfa.policy import has_second_factor
from relatch.recovery.desk import queries, services
from relatch.recovery.desk.forms import (
    AssignForm,
    CompleteForm,
    DenyForm,
    LiftBlockForm,
    MessageForm,
    OverrideForm,
    ProofForm,
    QueueFilterForm,
    ResumeForm,
    UnfreezeForm,
)
from relatch.recovery.desk.services import DeskRefusedError
from relatch.recovery.models import RecoveryRequest
from relatch.recovery.takeover import Change, recent_changes

View = Callable[..., HttpResponse]
FORMS: dict[str, type[forms.Form]] = {
    "assign_form": AssignForm, "message_form": MessageForm, "proof_form": ProofForm,
    "deny_form": DenyForm, "override_form": OverrideForm, "resume_form": ResumeForm,
    "lift_form": LiftBlockForm, "unfreeze_form": UnfreezeForm, "complete_form": CompleteForm,
}


def _staff(request: HttpRequest) -> User:
    user = request.user
    # 404, not 403: people without the role must not learn that a desk exists here.
    if not (isinstance(user, User) and user.is_authenticated and user.is_staff
            and user.is_active):
        raise Http404("No such page.")
    return user


def staff_only(view: View) -> View:
    """Staff with a second factor only; everyone else sees a 404."""

    @login_not_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        staff = _staff(request)
        if not has_second_factor(staff):
            # Back to this page once a factor is set up (a form sent comes back to the queue).
            back = request.get_full_path() if request.method == "GET" else reverse("desk:queue")
            return render(request, "recovery/desk/needs_second_factor.html", {"next": back},
                          status=403)
        return view(request, *args, **kwargs)

    return wrapper


@staff_only
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    """The queue, oldest first, with its filters, ``QUEUE_PAGE`` requests a page."""
    form = QueueFilterForm(request.GET or None)
    filters: dict[str, Any] = {}
    if form.is_bound and form.is_valid():
        filters = _filters(form.cleaned_data, _staff(request))
    after = request.GET.get("after", "")[:queries.MAX_PUBLIC_ID] or None
    # One more than a page: whether a next page exists, without counting the whole queue.
    rows = queries.queue(**filters, after=after, limit=queries.QUEUE_PAGE + 1)
    shown = rows[: queries.QUEUE_PAGE]
    return render(request, "recovery/desk/queue.html", {
        "form": form, "rows": shown, "urgent": queries.urgent(), "after": after,
        "first_query": _page_query(request, None),
        "next_query": _page_query(request, shown[-1].public_id) if len(rows) > len(shown)
        else "",
        "target": queries.first_answer_target(),
    }, status=400 if form.is_bound and form.errors else 200)


def _page_query(request: HttpRequest, after: str | None) -> str:
    """The query string of another page with the same filters (``after=None``: the first)."""
    query = request.GET.copy()
    query.pop("after", None)
    if after:
        query["after"] = after
    return query.urlencode()


def _filters(data: dict[str, Any], staff: User) -> dict[str, Any]:
    owns = {"yes": True, "no": False}.get(data.get("owns_projects") or "")
    days = data.get("older_than")
    return {
        "state": data.get("state") or None,
        "older_than": timedelta(days=days) if days is not None else None,
        "owns_projects": owns,
        "assigned_to": staff if data.get("mine") else None,
    }


def _recovery(public_id: str) -> RecoveryRequest:
    """The filed request, as the API finds it; one never filed is not found here either."""
    recovery = queries.filed_request(public_id)
    if recovery is None:
        raise Http404("No such request.")
    return recovery


@staff_only
@require_GET
def detail(request: HttpRequest, public_id: str) -> HttpResponse:
    """A request with the account's facts, the proofs, the history and the actions."""
    return _detail_page(request, _recovery(public_id))


def _detail_page(request: HttpRequest, recovery: RecoveryRequest, *, status: int = 200,
                 **bound: forms.Form) -> HttpResponse:
    staff = _staff(request)
    # The API's read model (GET /api/v1/desk/requests/<id>); the forms are the page's own.
    detail = queries.request_detail(recovery)
    # The completion form offers the changes the page lists: read once, not once per use
    # (each read lists up to 200 events).
    context: dict[str, Any] = {name: _form(name, recovery, changes=detail.changes)
                               for name in FORMS}
    context.update(bound)
    context.update({
        "detail": detail, "facts": detail.facts, "changes": detail.changes,
        "standing": detail.standing, "proofs": detail.proofs,
        "weak_evidence": detail.weak_evidence, "approvals": detail.approvals,
        "transitions": detail.transitions, "messages_": detail.messages,
        # The policy's section is for requests that name an account.
        "verdict": detail.verdict if detail.account_matched else None,
        "own_account": recovery.user_id == staff.pk, "outcome": detail.outcome,
        "wait_days": settings.RECOVERY_WAIT.days,
        "target": queries.first_answer_target(),
    })
    return render(request, "recovery/desk/detail.html", context, status=status)


def _form(name: str, recovery: RecoveryRequest, data: Any = None, *,
          changes: list[Change] | None = None) -> forms.Form:
    if name == "complete_form":
        listed = recent_changes(recovery) if changes is None else changes
        offered = [(c.event_id, c.undo) for c in listed if c.undo]
        return CompleteForm(data, changes=offered)
    return FORMS[name](data)


Handler = Callable[[HttpRequest, RecoveryRequest, User, dict[str, Any]], str]


def _action(form_name: str | None, handler: Handler, *, on_account: bool = False) -> View:
    """A POST-only desk action: fresh password, valid form, then the service; a refusal is
    shown on the detail page and changes nothing. Only actions ``on_account`` (the block, the
    freeze) are taken from a finished request: the account may still need them."""

    @staff_only
    def view(request: HttpRequest, public_id: str) -> HttpResponse:
        recovery = _recovery(public_id)
        back = reverse("desk:detail", args=[recovery.public_id])
        if request.method != "POST":  # GET never changes state
            return redirect(back)
        if not on_account and recovery.state not in services.ACTIVE:
            # Said before the password and the form: neither could change the answer. The
            # service refuses it again under its lock.
            messages.error(request, services.finished_message(recovery.state))
            return _detail_page(request, recovery, status=409)
        if not is_recently_authenticated(request):
            messages.info(request, "Confirm your password, then send the form again.")
            return redirect(reauthenticate_url(back))
        form = _form(form_name, recovery, request.POST) if form_name else None
        if form is not None and form_name and not form.is_valid():
            return _detail_page(request, recovery, status=400, **{form_name: form})
        try:
            done = handler(request, recovery, _staff(request), form.cleaned_data if form else {})
        except DeskRefusedError as refusal:
            messages.error(request, refusal.message)
            return _detail_page(request, _recovery(public_id), status=409)
        messages.success(request, done)
        return redirect(back)

    return view


def _assign(request: HttpRequest, r: RecoveryRequest, staff: User, data: dict[str, Any]) -> str:
    assignee = data.get("assignee")
    services.assign(recovery=r, staff=staff, assignee=assignee)
    return f"Assigned to {assignee.username}." if assignee else "Unassigned."


def _assign_me(request: HttpRequest, r: RecoveryRequest, staff: User, data: dict[str, Any]) -> str:
    services.assign(recovery=r, staff=staff, assignee=staff)
    return "Assigned to you."


def _message(request: HttpRequest, r: RecoveryRequest, staff: User, data: dict[str, Any]) -> str:
    services.message_requester(recovery=r, staff=staff, body=data["body"])
    return "Message sent to the requester."


def _proof(request: HttpRequest, r: RecoveryRequest, staff: User, data: dict[str, Any]) -> str:
    proof = services.request_proof(recovery=r, staff=staff, kind=data["kind"],
                                   project=data.get("project"))
    return f"Asked the requester for a proof: {proof.get_kind_display()}."


def _approve(request: HttpRequest, r: RecoveryRequest, staff: User, data: dict[str, Any]) -> str:
    count = services.approve(recovery=r, staff=staff, request=request)
    return f"Approved ({count} approval{'s' if count != 1 else ''} so far)."


def _deny(request: HttpRequest, r: RecoveryRequest, staff: User, data: dict[str, Any]) -> str:
    services.deny(recovery=r, staff=staff, reason=data["reason"])
    return "The request is denied."


def _override(request: HttpRequest, r: RecoveryRequest, staff: User, data: dict[str, Any]) -> str:
    services.override(recovery=r, staff=staff, reason=data["reason"])
    return "Override recorded: the waiting period has started."


def _complete(request: HttpRequest, r: RecoveryRequest, staff: User, data: dict[str, Any]) -> str:
    chosen = list(data.get("reverse") or [])
    services.complete(recovery=r, staff=staff, request=request, reverse=chosen)
    undone = f" {len(chosen)} recent change(s) reversed." if chosen else ""
    return f"The recovery is complete; the requester was sent a link to set a password.{undone}"


def _resume(request: HttpRequest, r: RecoveryRequest, staff: User, data: dict[str, Any]) -> str:
    services.resume(recovery=r, staff=staff, reason=data["reason"])
    return "The request goes on; the block on the account is lifted."


def _lift(request: HttpRequest, r: RecoveryRequest, staff: User, data: dict[str, Any]) -> str:
    services.lift_block(recovery=r, staff=staff, reason=data["reason"])
    return "The block is lifted. Requests on hold stay on hold until resumed or denied."


def _unfreeze(request: HttpRequest, r: RecoveryRequest, staff: User, data: dict[str, Any]) -> str:
    services.unfreeze(recovery=r, staff=staff, reason=data["reason"])
    return "The account is unfrozen."


assign = _action("assign_form", _assign)
assign_me = _action(None, _assign_me)
message = _action("message_form", _message)
request_proof = _action("proof_form", _proof)
approve = _action(None, _approve)
deny = _action("deny_form", _deny)
override = _action("override_form", _override)
complete = _action("complete_form", _complete)
resume = _action("resume_form", _resume)
lift_block = _action("lift_form", _lift, on_account=True)
unfreeze = _action("unfreeze_form", _unfreeze, on_account=True)
