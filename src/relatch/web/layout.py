"""Which part of the site a page belongs to: the account area with its navigation, the sign-in
and recovery pages (one calm column), the staff desk (wide tables), or the public index.

The base template reads this, so every page of an area gets the same frame without each template
saying so, and a page added to an app joins its area by its URL namespace alone.
"""

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import reverse


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    # "namespace:" takes every page of the namespace; "namespace:name" takes one page.
    covers: tuple[str, ...]

    def is_current(self, view: str) -> bool:
        return any(view.startswith(c) if c.endswith(":") else view == c for c in self.covers)


ACCOUNT_NAV = (
    NavItem("Overview", "account:overview", ("account:overview",)),
    NavItem("Email addresses", "emails:manage",
            ("emails:manage", "emails:add", "emails:resend", "emails:primary", "emails:remove",
             "emails:replace")),
    NavItem("Password", "passwords:change", ("passwords:change",)),
    NavItem("Two-step sign-in", "mfa:overview",
            ("mfa:", "totp:", "webauthn:", "recovery_codes:")),
    NavItem("Sessions and devices", "sessions:list", ("sessions:",)),
    NavItem("Security history", "account:history", ("account:history",)),
    NavItem("API tokens", "tokens:list", ("tokens:",)),
    NavItem("Your projects", "manage:projects", ("manage:",)),
)
# One column, no distractions: people here are signing in, or locked out and anxious.
ENTRY_NAMESPACES = {"signin", "registration", "newdevice", "selfrecovery", "requester", "proofs"}
ENTRY_VIEWS = {"passwords:reset", "passwords:reset_link", "passwords:reset_set_password",
               "emails:verify", "emails:verified"}


def _view_name(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return match.view_name if match else ""


def _area(view: str, signed_in: bool) -> str:
    namespace = view.partition(":")[0]
    if namespace == "desk":
        return "desk"
    if namespace in ENTRY_NAMESPACES or view in ENTRY_VIEWS:
        return "entry"
    if signed_in and any(item.is_current(view) for item in ACCOUNT_NAV):
        return "account"
    return "public"


def layout(request: HttpRequest) -> dict[str, Any]:
    """Context processor: ``area`` (a CSS hook) and, in the account area, ``account_nav``."""
    view = _view_name(request)
    user = getattr(request, "user", None)
    area = _area(view, bool(user and user.is_authenticated))
    if area != "account":
        return {"area": area, "account_nav": ()}
    nav = [{"label": i.label, "url": reverse(i.url_name), "current": i.is_current(view)}
           for i in ACCOUNT_NAV]
    return {"area": area, "account_nav": nav}
