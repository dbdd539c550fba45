"""The account page's "Two-step sign-in" section, rendered by the factors' app: the account
page (accounts) shows it without importing mfa."""

from django import template

from relatch.accounts.models import User
from relatch.mfa.queries import factor_summary

register = template.Library()


@register.inclusion_tag("mfa/overview/account_section.html")
def two_step_section(user: User) -> dict[str, object]:
    """What of the app, the keys and the recovery codes is set up, linked to their page."""
    return {"factors": factor_summary(user=user)}
