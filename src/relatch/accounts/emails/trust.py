"""Taking back the trust in an address that may no longer be its owner's (issue 17).

Two signs, two answers:

- Its **domain** lapsed, or was registered again after the address was verified
  (relatch.accounts.emails.domains): whoever holds the domain now receives its mail, so the
  address is **unverified**. It then resets nothing, confirms no new device, proves nothing to
  the recovery desk and hears no notice, until its owner verifies it again.
- Mail to it **bounced** for good (relatch.accounts.emails.bounces): it stays verified (nobody
  else holds it), but is **not receiving**: no security mail is sent there until it is
  verified again, which shows it receives mail once more.

Both are recorded in the security history and told to the account's other addresses; the
account page says what to do. Neither ends a session or removes a factor: an account left with
no address it can use keeps working and is asked for a new one at once.
"""

from django.db import transaction
from django.utils import timezone

from relatch.accounts.models import Email
from relatch.accounts.notices import verified_addresses
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.notify.services import send_mail


@transaction.atomic
def unverify_address(*, email: Email, reason: str) -> bool:
    """Take the verification of ``email`` back, saying ``reason`` (shown to its owner);
    False when it was not verified. Recorded and told to the account's other addresses."""
    now = timezone.now()
    changed = Email.objects.filter(pk=email.pk, verified=True).update(
        verified=False, verified_at=None, unverified_at=now, unverified_reason=reason[:300])
    if not changed:
        return False
    record_event(user=email.user, kind=EventKind.EMAIL_UNVERIFIED,
                 details={"address": email.address, "reason": reason})
    _tell_the_others(email, template="email_unverified", reason=reason)
    email.refresh_from_db()
    return True


@transaction.atomic
def mark_not_receiving(*, email: Email, detail: str) -> bool:
    """Stop sending security mail to ``email``, whose mail bounced (``detail``: the DSN's
    status and diagnostic); False when it was so already or is not verified."""
    changed = Email.objects.filter(pk=email.pk, verified=True,
                                   not_receiving_since__isnull=True).update(
        not_receiving_since=timezone.now(), bounce_detail=detail[:300])
    if not changed:
        return False
    record_event(user=email.user, kind=EventKind.EMAIL_NOT_RECEIVING,
                 details={"address": email.address, "detail": detail})
    _tell_the_others(email, template="email_not_receiving", reason=detail)
    email.refresh_from_db()
    return True


def trust_again(*, email: Email) -> None:
    """A verification link was used: the address is its owner's and receives mail again.
    Called by the verification service inside its transaction."""
    Email.objects.filter(pk=email.pk).update(unverified_at=None, unverified_reason="",
                                             not_receiving_since=None, bounce_detail="")


def _tell_the_others(email: Email, *, template: str, reason: str) -> None:
    others = [a for a in verified_addresses(email.user) if a.lower() != email.address.lower()]
    if others:
        send_mail(to=others, template=template,
                  context={"username": email.user.username, "address": email.address,
                           "reason": reason, "security_notice": True})
