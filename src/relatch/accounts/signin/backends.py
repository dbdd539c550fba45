"""Sign-in by username or email address."""

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from relatch.accounts.models import User


def find_user(identifier: str) -> User | None:
    """The account a sign-in or reset form names: by username, or by address (a verified
    address first, since an unverified one may be claimed by more than one account)."""
    identifier = identifier.strip()
    if "@" not in identifier:
        return User.objects.filter(username__iexact=identifier).first()
    for verified in (True, False):
        users = list(
            User.objects.filter(emails__address__iexact=identifier, emails__verified=verified)[:2]
        )
        if len(users) == 1:
            return users[0]
    return None


class UsernameOrEmailBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if not username or password is None:
            return None
        # ``found_user``: the account (or None) the caller's find_user(username) already gave in
        # this request. Known and unknown names then cost the same queries (ASVS 6.3.8).
        user: User | None = kwargs["found_user"] if "found_user" in kwargs else find_user(username)
        if user is None:
            # Hash anyway so an unknown name takes as long as a wrong password (ASVS 6.3.8).
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
