"""Creating an account from the registration form (issue 2, point 4), and signing its
registrant in (issue 19)."""

from django.conf import settings
from django.contrib.auth import login as auth_login
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse

from relatch.accounts import ratelimit
from relatch.accounts.devices import remember_device
from relatch.accounts.emails.services import normalize_address, queue_verification_mail
from relatch.accounts.models import Email, User, UserSession
from relatch.accounts.reauth import mark_reauthenticated
from relatch.accounts.registration.policy import refuse_signup
from relatch.accounts.sessions.methods import method_label
from relatch.accounts.sessions.services import start_session
from relatch.accounts.usernames import is_username_taken, validate_username_format
from relatch.audit.models import EventKind, Factor
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
) -> User:
    """Create an account with one unverified primary address, and mail it a verification link.

    When the address is already verified on another account, the account is made all the same
    and its copy of the address stays unverified for good (verifying it is refused, as for an
    added address): no link goes out, its owner gets a mail saying someone used it instead.
    Both ways the caller signs the new account in and shows the same page, so the visitor
    cannot tell which happened (ASVS 6.3.8). Raises UsernameTakenError, and SignupRefusedError
    when RELATCH_SIGNUP does not let strangers register with this address.
    """
    validate_username_format(username)
    if is_username_taken(username):
        raise UsernameTakenError(username)
    email = normalize_address(email)
    # Checked here too, not only in the form: every way into this service obeys the mode.
    refuse_signup(email)
    owned = Email.objects.select_related("user").filter(address__iexact=email, verified=True)
    existing = owned.first()
    user = _create_account(request=request, username=username, name=name, email=email,
                           password=password, mail_link=existing is None)
    if existing is not None:
        _warn_owner(request=request, existing=existing, username=username)
    return user


def _create_account(
    *, request: HttpRequest | None, username: str, name: str, email: str, password: str,
    mail_link: bool,
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
    if mail_link and _may_mail(email):
        queue_verification_mail(email=address, template="signup_verify")
    return user


def _warn_owner(*, request: HttpRequest | None, existing: Email, username: str) -> None:
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
            context={"username": owner.username, "attempted_username": username},
        )


@transaction.atomic
def sign_in_new_account(
    *, request: HttpRequest, response: HttpResponse, user: User
) -> UserSession:
    """Sign in the account registered a moment ago with the password just typed, as a
    password sign-in does (``relatch.signin.services.complete_signin``, an app this one sits
    below): a new session id, a listed session, a fresh re-authentication, this browser
    remembered (not confirmed) and a SIGNIN_SUCCEEDED event. The rest of complete_signin has
    nothing to act on in a new account: no failures to forget, no waiting recovery, no earlier
    session (registration turns signed-in visitors away). The account has no verified address,
    so RequireVerifiedEmailMiddleware keeps it to its address page, as after any sign-in."""
    # The only backend: the one a password sign-in goes through.
    auth_login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
    # A new account signs in with the password it was just given.
    method = method_label(Factor.PASSWORD, {})
    device = remember_device(request=request, response=response, user=user, method=method)
    row = start_session(request=request, user=user, device=device, method=method)
    mark_reauthenticated(request)
    record_event(user=user, kind=EventKind.SIGNIN_SUCCEEDED, request=request,
                 factor=Factor.PASSWORD, details={"new_device": True, "after": "registration"})
    return row


def _may_mail(address: str) -> bool:
    return ratelimit.hit(scope="signup-mail", key=address.lower(), limit=SIGNUP_MAIL_LIMIT)
