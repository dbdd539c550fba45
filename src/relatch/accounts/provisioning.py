"""Creating ready-to-use accounts outside the registration form: staff, demo data, tests."""

from django.db import transaction
from django.utils import timezone

from relatch.accounts.models import Email, User
from relatch.audit.models import EventKind
from relatch.audit.services import record_event


@transaction.atomic
def create_verified_user(
    *, username: str, email: str, password: str | None, name: str = "", is_staff: bool = False
) -> User:
    """An account with one verified primary address (the operator vouches for the address).

    ``password=None`` makes an account that can only get in through a password reset.
    """
    user = User(username=username, name=name, is_staff=is_staff)
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.save()
    Email.objects.create(
        user=user, address=email, primary=True, verified=True, verified_at=timezone.now()
    )
    record_event(user=user, kind=EventKind.ACCOUNT_CREATED, details={"by": "operator"})
    return user
