"""Who hears what about a recovery request, by mail (DESIGN §5; NIST N8, N9, N11; issue 19).

One honest recovery used to send two dozen mails, one per proof asked, per proof checked and
per move, each to the requester and to every address of the account. Owners learn to skip
notices that come by the dozen, and then miss the one that matters. So a mail goes out only
when it changes what someone does next:

- Every verified address of the account hears of the filing (``requester.services``), of
  each waiting period with its end, of a failed proof and of the completion: each time with
  the one-click "this wasn't me" link, the owner's way to act (NIST N11).
- The requester's contact address hears of what they did not just see on their own page:
  the proofs asked (one mail for a batch), a proof settled out of their sight (a co-owner's
  word, the worker's branch check, an expiry) and the moves staff or the background tick
  made. Each such mail carries their status link (made at delivery, never stored).
- An address that is both (an owner recovering with an address still on the account) gets
  the account's mail, with the status link as well, and not a second one.
"""

from datetime import datetime
from typing import Any

from relatch.accounts.notices import verified_addresses
from relatch.notify.services import send_mail
from relatch.recovery.models import RecoveryRequest, RecoveryTransition, State
from relatch.recovery.requester.links import LINKS_BUILDER

# What the account's addresses hear of besides the filing: what gives them something to
# stop (a wait with its end) or to undo (a completion, which "this wasn't me" then reports).
ACCOUNT_HEARS = frozenset({State.IN_WAITING_PERIOD, State.COMPLETED})


def requester_hears(transition: RecoveryTransition) -> bool:
    """Whether the requester is mailed about ``transition``: not when another mail says it
    (the proofs asked, the reset link of a completion, the closing notice), nor when they
    made the move themselves on their page, unless it ended the request (a cancel made with
    a leaked status link must reach the real requester)."""
    to, came_from = State(transition.to_state), State(transition.from_state)
    if to in (State.COMPLETED, State.CLOSED_NO_RESPONSE):
        return False
    if came_from == State.SUBMITTED and to == State.AWAITING_PROOF:
        return False
    return transition.actor != RecoveryTransition.Actor.REQUESTER or to == State.CANCELLED


def utc_words(moment: datetime | None) -> str:
    """A moment as mails print it (a mail is read later: a relative time would be wrong)."""
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else ""


def tell_account(*, recovery: RecoveryRequest, template: str, context: dict[str, Any],
                 not_me: bool = True) -> set[str]:
    """Mail ``template`` to every verified address of the account; the lower-cased
    addresses told. The requester's own contact address, if it is one of them, also gets
    the status link."""
    if recovery.user is None:
        return set()
    addresses = verified_addresses(recovery.user)
    contact = recovery.contact_email.lower() if recovery.contact_confirmed_at else ""
    context = {**context, "username": recovery.user.username, "request_id": recovery.public_id}
    for to, status in (([a for a in addresses if a.lower() != contact], False),
                       ([a for a in addresses if a.lower() == contact], True)):
        if to:
            send_mail(to=to, template=template, context=context, link_builder=LINKS_BUILDER,
                      link_args={"recovery_id": recovery.pk, "not_me": not_me,
                                 "status": status})
    return {a.lower() for a in addresses}


def tell_requester(*, recovery: RecoveryRequest, template: str, context: dict[str, Any],
                   told: set[str] | frozenset[str] = frozenset(),
                   reset_user_id: int | None = None) -> None:
    """Mail ``template`` to the requester's confirmed contact address with their status link
    (and a reset link with ``reset_user_id``), unless it is among the addresses ``told``
    already. Nothing for an unconfirmed address: nobody filed anything."""
    if recovery.contact_confirmed_at is None or recovery.contact_email.lower() in told:
        return
    args: dict[str, Any] = {"recovery_id": recovery.pk, "status": True}
    if reset_user_id is not None:
        args["reset_user_id"] = reset_user_id
    send_mail(to=[recovery.contact_email], template=template,
              context={**context, "request_id": recovery.public_id, "requester": True},
              link_builder=LINKS_BUILDER, link_args=args)


def state_context(recovery: RecoveryRequest) -> dict[str, Any]:
    """What a mail says about where ``recovery`` stands now (JSON-safe, no secret)."""
    from relatch.recovery.waits import another_proof_ends_wait

    waiting = recovery.state == State.IN_WAITING_PERIOD
    return {
        "state": recovery.state,
        "completes_automatically": waiting and recovery.completes_automatically,
        "wait_ends_at": utc_words(recovery.wait_ends_at) if waiting else "",
        "sooner": another_proof_ends_wait(recovery),
    }
