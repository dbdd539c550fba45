"""Email verification links: signed, expiring, single use (ASVS 6.4.1, OWASP FP4).

A token names an address row and a digest of the row's state (address, verified flag, and
when its mail bounced, if it did). It is never stored: the mail's link builder makes it at
delivery, and it dies by itself once the row is verified (single use), its address changes (a
replaced typo) or the row is removed.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core import signing
from django.urls import reverse

from relatch.accounts.models import Email
from relatch.web.path_prefix import site_url

_SALT = "relatch.accounts.emails.verify"


class ForgedTokenError(Exception):
    """Garbled, truncated or signed with another key."""


class ExpiredTokenError(Exception):
    """Older than settings.EMAIL_VERIFICATION_MAX_AGE."""


@dataclass(frozen=True)
class VerificationClaim:
    email_id: int
    state: str


def state_digest(*, address: str, verified: bool,
                 not_receiving_since: datetime | None = None,
                 unverified_at: datetime | None = None) -> str:
    """What the token promises about the row; any change to the row breaks the promise.

    A verified address whose mail bounced is verified again by a link (it receives mail once
    more): the bounce's time is part of the promise, so the link works once, for that bounce.
    So is the time Relatch took a verification back: a link mailed before that (to whoever
    held the domain then) does not come back to life when the row is unverified again.
    """
    material = f"{address.strip().lower()}\n{int(verified)}"
    if not_receiving_since is not None:
        material += f"\n{not_receiving_since.isoformat()}"
    if unverified_at is not None:
        material += f"\nunverified {unverified_at.isoformat()}"
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def email_state(email: Email) -> str:
    """The state digest of ``email`` as it is now."""
    return state_digest(address=email.address, verified=email.verified,
                        not_receiving_since=email.not_receiving_since,
                        unverified_at=email.unverified_at)


def make_verification_token(email: Email) -> str:
    return signing.dumps({"e": email.pk, "s": email_state(email)}, salt=_SALT)


def read_verification_token(token: str) -> VerificationClaim:
    """The claim in ``token``; raises ForgedTokenError or ExpiredTokenError."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=settings.EMAIL_VERIFICATION_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise ExpiredTokenError from exc
    except (signing.BadSignature, ValueError, UnicodeError) as exc:
        raise ForgedTokenError from exc
    if not (
        isinstance(data, dict) and isinstance(data.get("e"), int) and isinstance(data.get("s"), str)
    ):
        raise ForgedTokenError
    return VerificationClaim(email_id=data["e"], state=data["s"])


def verification_link(*, email_id: int) -> str:
    """Link builder for verification mails (runs at delivery, so the token is never stored).

    A row removed before delivery gets the address page instead of a link that cannot work.
    """
    email = Email.objects.filter(pk=email_id).first()
    if email is None:
        return site_url(reverse("emails:manage"))
    return site_url(reverse("emails:verify", kwargs={"token": make_verification_token(email)}))
