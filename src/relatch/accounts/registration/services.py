"""Creating an account from the registration form (issue 2, point 4)."""

from django.db import IntegrityError, transaction
from django.http import HttpRequest

from relatch.accounts import ratelimit
from relatch.accounts.emails.services import normalize_address, queue_verification_mail
from relatch.accounts.models import Email, User
from relatch.accounts.usernames import is_username_taken, validate_username_format
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.notify.services import send_mail

# However many visitors (or one bot on many addresses) register with an address, its inbox
# gets at most this many registration mails an hour.
SIGNUP_MAIL_LIMIT = "5/hour"


class UsernameTakenError(Exception):
    """The username belongs to another account (possibly registered a moment ago)."""


@transaction.atomic
def register_account(
    *, request: HttpRequest | None, username: str, name: str, email: str, password: str
) -> User | None:
    """Create an account with one unverified primary address, and mail it a verification link.

    When the address is already verified on an account, nothing is created: its owner gets a
    mail saying someone tried, and the caller shows the same page as for a real sign-up, so the
    visitor cannot tell the two apart (ASVS 6.3.8). Returns the new user, or None then.
    Raises UsernameTakenError. Does not sign anyone in.
    """
    validate_username_format(username)
    if is_username_taken(username):
        raise UsernameTakenError(username)
    email = normalize_address(email)
    owned = Email.objects.select_related("user").filter(address__iexact=email, verified=True)
    if (existing := owned.first()) is not None:
        _warn_owner(request=request, existing=existing, username=username, password=password)
        return None
    return _create_account(
        request=request, username=username, name=name, email=email, password=password
    )


def _create_account(
    *, request: HttpRequest | None, username: str, name: str, email: str, password: str
) -> User:
    user = User(username=username, name=name)
    user.set_password(password)  # Argon2id (settings.PASSWORD_HASHERS)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # registered a moment ago by a concurrent request
        raise UsernameTakenError(username) from exc
    address = Email.objects.create(user=user, address=email, primary=True)
    record_event(
        user=user,
        kind=EventKind.ACCOUNT_CREATED,
        request=request,
        details={"by": "registration", "address": email},
    )
    if _may_mail(email):
        queue_verification_mail(email=address, template="signup_verify")
    return user


def _warn_owner(
    *, request: HttpRequest | None, existing: Email, username: str, password: str
) -> None:
    # Hash the password anyway: the real sign-up hashes one, and the two paths must take
    # about as long (ASVS 6.3.8, OWASP FP2).
    User().set_password(password)
    owner = existing.user
    record_event(
        user=owner,
        kind=EventKind.SIGNUP_ATTEMPT_WITH_EMAIL,
        request=request,
        details={"address": existing.address, "attempted_username": username},
    )
    if _may_mail(existing.address):
        send_mail(
            to=[existing.address],
            template="signup_existing_address",
            context={"username": owner.username},
        )


def _may_mail(address: str) -> bool:
    return ratelimit.hit(scope="signup-mail", key=address.lower(), limit=SIGNUP_MAIL_LIMIT)
