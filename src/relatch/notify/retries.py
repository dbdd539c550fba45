"""When a message that failed is tried again, and when it is given up.

Security mail (reset links, codes, notices, recovery steps: every template but the test
message) is retried for RELATCH_EMAIL_GIVE_UP_HOURS (72) after its first failed attempt, with
a back-off of 1 minute doubling up to an hour. An SMTP outage of hours or days therefore loses
nothing: the mail waits, and goes as soon as the server takes mail again, because

- while the server is unreachable, one waiting message is always due within PROBE_EVERY,
  however far the others have backed off (``probe_delay``);
- the first delivery that succeeds moves every message that waits for the server to now
  (``relatch.notify.services.requeue_mail_waiting_for_the_server``).
"""

import smtplib
from datetime import timedelta

from django.conf import settings

from relatch.notify.models import Outcome

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)
PROBE_EVERY = timedelta(minutes=1)
# The dev test message (`relatch sendtestmail`) checks the set-up now; retrying it for days
# would only hide from the operator that the set-up is wrong.
TEST_MAIL_GIVE_UP = timedelta(hours=1)
NOT_SECURITY_MAIL = frozenset({"test_message"})

# The server answered, and refused this message; anything else smtplib raises (and every
# OSError: refused, reset, timed out, unknown host, TLS) is the server or the way to it.
_MESSAGE_REFUSALS = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused,
                     smtplib.SMTPDataError)
_SERVICE_NOT_AVAILABLE = 421  # RFC 5321: the server is closing the session, try later


def is_security_mail(template: str) -> bool:
    """Whether mail made from ``template`` is security mail: retried for days, and shown to
    the account's owner when it could not be sent."""
    return template not in NOT_SECURITY_MAIL


def security_mail_give_up() -> timedelta:
    """How long security mail is retried after its first failed attempt."""
    return timedelta(hours=settings.EMAIL_GIVE_UP_HOURS)


def give_up_after(template: str) -> timedelta:
    """How long after its first failed attempt a message made from ``template`` is given up."""
    window = security_mail_give_up()
    return window if is_security_mail(template) else min(window, TEST_MAIL_GIVE_UP)


def retry_delay(attempts: int) -> timedelta:
    """Back off 1 min, 2 min, 4 min … up to an hour after the ``attempts``-th failure."""
    doubled = FIRST_RETRY * 2 ** min(max(attempts - 1, 0), 16)  # 2**16 min is past the cap
    return min(doubled, LONGEST_RETRY)


def outcome_of(exc: BaseException) -> Outcome:
    """What a failed attempt says about the mail server (see ``Outcome``)."""
    if isinstance(exc, _MESSAGE_REFUSALS):
        return Outcome.UNREACHABLE if _codes(exc) == {_SERVICE_NOT_AVAILABLE} else Outcome.REFUSED
    if isinstance(exc, OSError):  # smtplib.SMTPException is an OSError
        return Outcome.UNREACHABLE
    return Outcome.ERROR


def _codes(exc: BaseException) -> set[int]:
    """The SMTP reply codes of a refusal (one per refused recipient)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return {code for code, _ in exc.recipients.values()}
    code = getattr(exc, "smtp_code", None)
    return {code} if isinstance(code, int) else set()


def error_text(exc: BaseException) -> str:
    """The error as operators see it on the staff page: its type and message, bounded."""
    return f"{type(exc).__name__}: {exc}"[:500]
