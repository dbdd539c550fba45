"""Accounts made by an index's operators (``relatch createuser``), the way in when
RELATCH_SIGNUP is closed: the operator vouches for the address, the person chooses the password."""

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from relatch.accounts.models import User
from relatch.accounts.provisioning import create_verified_user
from relatch.notify.services import send_mail
from relatch.web.path_prefix import site_url

# The link is a password-reset link (relatch.accounts.passwords.reset): it dies once used,
# when the password is set, or after PASSWORD_RESET_TIMEOUT; the reset page sends a new one.
RESET_LINK_BUILDER = "relatch.accounts.passwords.reset.reset_link"


@transaction.atomic
def create_account_for(*, username: str, email: str, name: str = "") -> User:
    """An account with ``email`` verified and no password, and a mail to that address with a
    link to choose one. The operator never knows the password, and it never travels in a mail
    or a command line (only the single-use link does, made at delivery)."""
    user = create_verified_user(username=username, email=email, password=None, name=name)
    send_mail(
        to=[email],
        template="account_created_by_operator",
        context={
            "username": user.username,
            "minutes": settings.PASSWORD_RESET_TIMEOUT // 60,
            "reset_url": site_url(reverse("passwords:reset")),
        },
        link_builder=RESET_LINK_BUILDER,
        link_args={"user_id": user.pk},
    )
    return user
