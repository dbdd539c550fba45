"""The signed-in account of a request."""

from django.http import HttpRequest

from relatch.accounts.models import User


def signed_in_user(request: HttpRequest) -> User:
    """The account behind a login-required view (LoginRequiredMiddleware let only it in)."""
    user = request.user
    assert isinstance(user, User)
    return user
