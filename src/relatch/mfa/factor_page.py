"""What a page offering the account's second factors shows, for the sign-in's second step
(``relatch.mfa.newdevice``) and for full re-authentication (``relatch.mfa.reauth``).

Both pages render ``mfa/_factor_choices.html`` with this context; each passes where its three
forms post to (``actions``) and the verb of its buttons ("Sign in", "Confirm").
"""

from dataclasses import dataclass

from django.http import HttpRequest

from relatch.accounts.models import User
from relatch.mfa.newdevice.forms import AppCodeForm, RecoveryCodeForm
from relatch.mfa.queries import factor_summary


@dataclass(frozen=True)
class FactorActions:
    """Where the security-key, app-code and recovery-code forms post to."""

    key: str
    app: str
    code: str


def factor_choices(
    request: HttpRequest,
    user: User,
    *,
    actions: FactorActions,
    app_form: AppCodeForm | None = None,
    code_form: RecoveryCodeForm | None = None,
) -> dict[str, object]:
    """The template context of the factor forms ``user`` can use.

    With a security key on the account, this issues a new challenge for that account's keys
    (the previous one of this session stops working: one live request per browser).
    """
    from relatch.mfa.webauthn.services import authentication_options

    summary = factor_summary(user=user)
    return {
        "summary": summary,
        "codes_left": summary.codes.unused if summary.codes else 0,
        "webauthn_options": authentication_options(request=request, user=user)
        if summary.keys
        else None,
        "app_form": app_form or AppCodeForm(auto_id="id_app_%s"),
        "code_form": code_form or RecoveryCodeForm(auto_id="id_recovery_%s"),
        "actions": actions,
    }
