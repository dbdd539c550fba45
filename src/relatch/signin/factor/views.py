"""The second-factor step's pages, for any flow (``factor.flow``): the page offering the
account's factors (GET) and one factor's form, sent (POST).

    views = step_views(SIGN_IN, access=login_not_required)   # views.page, views.answer

The flow's URLs pass ``factor`` to ``answer``. Every page renders the flow's template, which
includes ``signin/_factor_choices.html`` with ``factor_choices``' context and the verb of its
buttons ("Sign in", "Confirm").
"""

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from relatch.accounts.models import User
from relatch.audit.models import Factor
from relatch.mfa.forms import AppCodeForm, RecoveryCodeForm, SecurityKeyForm
from relatch.mfa.queries import factor_summary
from relatch.mfa.webauthn.services import authentication_options
from relatch.signin.factor import methods
from relatch.signin.factor.flow import FactorActions, FactorFlow, StepOutcome
from relatch.signin.factor.session import Pending
from relatch.signin.factor.step import answer_factor

type View = Callable[..., HttpResponse]

_APP_ID = "id_app_%s"
_CODE_ID = "id_recovery_%s"


@dataclass(frozen=True)
class StepViews:
    """A flow's factor page and the view its three forms post to."""

    page: View
    answer: View


def step_views[P: Pending](flow: FactorFlow[P], *, access: Callable[[View], View]) -> StepViews:
    """The views of ``flow``'s factor step, each behind ``access`` (who may reach it: anyone
    for a sign-in, the signed-in user for a re-authentication). Never cached: the page holds a
    security-key challenge, and the answers sign in or re-authenticate."""

    def page(request: HttpRequest) -> HttpResponse:
        """Pick a factor: security key, app code or recovery code, whichever the account has."""
        return show_step(request, flow=flow)

    def answer(request: HttpRequest, factor: Factor) -> HttpResponse:
        """One factor's form, sent; ``factor`` comes from the URL."""
        return answer_step(request, flow=flow, factor=factor)

    return StepViews(
        page=access(never_cache(require_GET(page))),
        answer=access(never_cache(require_POST(answer))),
    )


def restart[P: Pending](request: HttpRequest, *, flow: FactorFlow[P]) -> HttpResponse:
    """No step here (never started, expired, or finished): back to the password."""
    messages.info(request, flow.restart_message)
    return redirect(flow.start_again(request))


def show_step[P: Pending](request: HttpRequest, *, flow: FactorFlow[P]) -> HttpResponse:
    """The factor page of ``flow``'s step in this browser."""
    pending = flow.pending(request)
    if pending is None or not flow.offers_factors(pending):
        # Its factors were removed meanwhile: the password page alone will do.
        return restart(request, flow=flow)
    # ?method= picks another of the account's factors ("Use another method"); anything else
    # is ignored and the usual one is shown.
    return _page(request, flow, pending, method=request.GET.get("method", ""))


def answer_step[P: Pending](
    request: HttpRequest, *, flow: FactorFlow[P], factor: Factor
) -> HttpResponse:
    """Check the form for ``factor``; act on what the answer led to."""
    pending = flow.pending(request)
    if pending is None:
        return restart(request, flow=flow)
    form = _answer_form(factor, request.POST)
    if not form.is_valid():
        return _invalid(request, flow, pending, form)
    response = HttpResponseRedirect(reverse("account:overview"))
    outcome = answer_factor(
        request=request,
        response=response,
        flow=flow,
        pending=pending,
        factor=factor,
        answer=form.cleaned_data[_answer_field(form)],
    )
    if outcome.kind == "refused":
        return _refused(request, flow, pending, form, outcome)
    _tell(request, outcome)
    response["Location"] = outcome.redirect_to
    return response


def factor_choices(
    request: HttpRequest,
    user: User,
    *,
    actions: FactorActions,
    method: str = "",
    app_form: AppCodeForm | None = None,
    code_form: RecoveryCodeForm | None = None,
) -> dict[str, object]:
    """The template context of the one factor form shown (``methods.chosen``: ``method`` if
    the account has it) and the links to the others.

    With the security key shown, this issues a new challenge for that account's keys (the
    previous one of this session stops working: one live request per browser).
    """
    summary = factor_summary(user=user)
    offers = methods.offered(summary)
    shown = methods.chosen(user=user, offers=offers, asked=method)
    app_form = app_form or AppCodeForm(auto_id=_APP_ID)
    code_form = code_form or RecoveryCodeForm(auto_id=_CODE_ID)
    # The shown code field has the keyboard: no Tab through links to reach it.
    if shown in (Factor.TOTP, Factor.RECOVERY_CODE):
        _focus(app_form if shown == Factor.TOTP else code_form)
    page = reverse(actions.page)
    return {
        "summary": summary,
        "shown": shown,
        "others": [
            {"method": factor, "url": f"{page}?{urlencode({'method': factor})}"}
            for factor in offers
            if factor != shown
        ],
        "codes_left": summary.codes.unused if summary.codes else 0,
        "webauthn_options": authentication_options(request=request, user=user)
        if shown == Factor.WEBAUTHN
        else None,
        "app_form": app_form,
        "code_form": code_form,
        "actions": FactorActions(
            page=page,
            key=reverse(actions.key),
            app=reverse(actions.app),
            code=reverse(actions.code),
        ),
    }


def _focus(form: forms.Form) -> None:
    # The form's own copy of the field and widget: other pages using the form are unchanged.
    form.fields["code"].widget.attrs["autofocus"] = True


def _answer_form(factor: Factor, data: QueryDict) -> forms.Form:
    if factor == Factor.TOTP:
        return AppCodeForm(data, auto_id=_APP_ID)
    if factor == Factor.RECOVERY_CODE:
        return RecoveryCodeForm(data, auto_id=_CODE_ID)
    return SecurityKeyForm(data)


def _answer_field(form: forms.Form) -> str:
    return "credential" if isinstance(form, SecurityKeyForm) else "code"


def _refused[P: Pending](
    request: HttpRequest, flow: FactorFlow[P], pending: P, form: forms.Form, outcome: StepOutcome
) -> HttpResponse:
    """A wrong answer, or one a limit refused: the page again, saying why."""
    if isinstance(form, SecurityKeyForm):
        return _page(
            request,
            flow,
            pending,
            error=outcome.message,
            status=outcome.status,
            method=Factor.WEBAUTHN,
        )
    form.add_error("code", outcome.message)  # at the field, which gets the focus
    return _page(request, flow, pending, form=form, status=outcome.status)


def _invalid[P: Pending](
    request: HttpRequest, flow: FactorFlow[P], pending: P, form: forms.Form
) -> HttpResponse:
    """Not an answer at all (empty, too long, malformed): nothing was checked or counted."""
    if isinstance(form, SecurityKeyForm):
        error = " ".join(str(e) for e in form.errors.get("credential", []))
        return _page(request, flow, pending, error=error, status=400, method=Factor.WEBAUTHN)
    return _page(request, flow, pending, form=form, status=400)


def _page[P: Pending](
    request: HttpRequest,
    flow: FactorFlow[P],
    pending: P,
    *,
    error: str = "",
    status: int = 200,
    form: forms.Form | None = None,
    method: str = "",
) -> HttpResponse:
    choices = factor_choices(
        request,
        pending.user,
        actions=flow.actions,
        method=method or _method_of(form),
        app_form=form if isinstance(form, AppCodeForm) else None,
        code_form=form if isinstance(form, RecoveryCodeForm) else None,
    )
    context = {
        **choices,
        **flow.page_context(request, pending),
        "error": error,
        "expires_at": pending.expires_at,
    }
    return render(request, flow.template, context, status=status)


def _method_of(form: forms.Form | None) -> str:
    """The factor of a form sent back with its error: the page shows that form again."""
    if isinstance(form, AppCodeForm):
        return Factor.TOTP
    if isinstance(form, RecoveryCodeForm):
        return Factor.RECOVERY_CODE
    return ""


def _tell(request: HttpRequest, outcome: StepOutcome) -> None:
    """What the user is told on the page they go to next."""
    if outcome.kind == "recovery_completed":
        messages.success(
            request,
            "The waiting period is over: you are signed in and this browser is now trusted. "
            "Add an email address you can read and verify it, then remove the one you lost.",
        )
        if outcome.used_code:
            messages.warning(
                request,
                "You used a recovery code: once your new address is verified, make a new set "
                "of recovery codes.",
            )
    if outcome.kind == "recovery_waiting":
        messages.info(request, "Your self-service recovery is still waiting; see below.")
    if outcome.codes_left is not None:
        # NIST N2: a used code is replaced; the user goes on with what they came to do.
        messages.warning(
            request,
            f"You used a recovery code: it no longer works, and {outcome.codes_left} are left. "
            "Make a new set now, on the Recovery codes page of your account.",
        )
