"""Factories for recovery requests and proofs (the requester pages come later)."""

import secrets
from datetime import timedelta
from typing import Any

from django.utils import timezone

from relatch.recovery.models import ProofKind, RecoveryProof, RecoveryRequest, State


def make_request(user: Any, *, contact: str = "new@example.net", state: State = State.SUBMITTED,
                 **extra: Any) -> RecoveryRequest:
    extra.setdefault("contact_confirmed_at", timezone.now())
    if state == State.IN_WAITING_PERIOD:
        extra.setdefault("wait_ends_at", timezone.now() + timedelta(days=7))
    return RecoveryRequest.objects.create(
        public_id=secrets.token_hex(8), link_nonce=secrets.token_hex(8),
        username_claimed=user.username if user else "nobody", user=user, contact_email=contact,
        agreed_to_code_of_conduct=True, acknowledged_review_time=True, state=state, **extra,
    )


def satisfy(recovery: RecoveryRequest, *kinds: ProofKind) -> None:
    for kind in kinds:
        RecoveryProof.objects.create(request=recovery, kind=kind,
                                     status=RecoveryProof.Status.SATISFIED,
                                     checked_at=timezone.now())


def end_wait(recovery: RecoveryRequest) -> None:
    RecoveryRequest.objects.filter(pk=recovery.pk).update(
        wait_ends_at=timezone.now() - timedelta(minutes=1)
    )
    recovery.refresh_from_db()
