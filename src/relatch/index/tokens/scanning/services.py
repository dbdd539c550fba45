"""Revoking a token GitHub found published."""

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from relatch.accounts.notices import announce_to_account
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.index.models import APIToken
from relatch.index.tokens import primitive
from relatch.index.tokens.services import event_details, in_utc, mail_context, token_spelled_by

GITHUB = "GitHub"


@transaction.atomic
def report_leaked_token(
    *, request: HttpRequest | None, raw: str, url: str, source: str, reporter: str = GITHUB
) -> bool:
    """Whether ``raw`` is a real Relatch token (GitHub's true positive). A real one that
    still worked is revoked (``revoked_because=leaked``) with an API_TOKEN_LEAKED event naming
    ``url``, and every verified address of its owner gets an urgent mail.

    Checked like an upload's token: one lookup, a constant-time comparison (an unknown
    identifier against a dummy digest), so an alert tells nothing about which identifiers
    exist. A token already revoked is a true positive and changes nothing.
    """
    try:
        token = token_spelled_by(raw)
    except primitive.MalformedTokenError:
        return False
    if token is None:
        return False
    now = timezone.now()
    # Conditional: two alerts for one token (GitHub retries, or lists it twice) revoke once.
    # An expired token is revoked too: its owner still needs to know where it was published.
    if APIToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoked_because=APIToken.RevokedBecause.LEAKED
    ):
        token.revoked_at, token.revoked_because = now, APIToken.RevokedBecause.LEAKED
        _record_and_tell(request, token, url=url, source=source, reporter=reporter)
    return True


def _record_and_tell(
    request: HttpRequest | None, token: APIToken, *, url: str, source: str, reporter: str
) -> None:
    record_event(
        user=token.user, kind=EventKind.API_TOKEN_LEAKED, request=request,
        details={**event_details(token), "url": url, "source": source, "reporter": reporter},
    )
    assert token.revoked_at is not None
    context = {**mail_context(None, token), "when": in_utc(token.revoked_at),
               "leak_url": url, "reporter": reporter}
    announce_to_account(user=token.user, template="token_leaked", context=context)
