"""Sample recovery request for ``relatch demo``: carol lost her authenticator app.

Filed through the requester's services, as the public form files it, so the request, its
history, its mails (to the local outbox on the embedded defaults) and carol's security event
are the real ones; it then waits in the staff queue at /desk/.
"""

from django.db import transaction
from django.http import HttpRequest

from relatch.accounts.demo import DEMO_PEOPLE, DemoRun, demo_account
from relatch.recovery.models import OPEN_STATES, RecoveryRequest, State
from relatch.recovery.requester import services
from relatch.recovery.requester.routing import StillHas

USERNAME = "carol"
STILL_HAS = [StillHas.PASSWORD, StillHas.EMAIL]
DESCRIPTION = (
    "My phone was stolen, and the authenticator app was on it. I never saved my recovery "
    "codes. I still know my password and read this address."
)


@transaction.atomic
def seed_request(run: DemoRun) -> None:
    """One filed recovery request for carol's account, waiting in the staff queue."""
    carol = demo_account(USERNAME)
    if carol is None:
        run.notes.append(f"Skipped the recovery request: there is no demo account {USERNAME}.")
        return
    if RecoveryRequest.objects.filter(
        user=carol, state__in=OPEN_STATES, contact_confirmed_at__isnull=False
    ).exists():
        run.notes.append(f"Skipped the recovery request: {USERNAME} has an open request.")
        return
    try:
        recovery = _file_request()
    except services.RequesterError as refusal:  # a rate limit used up: nothing was made
        run.notes.append(f"Skipped the recovery request: {refusal.message}")
        return
    run.created.append(f"recovery request {recovery.public_id}")
    run.notes.append(_filed_note(recovery))


def _file_request() -> RecoveryRequest:
    contact = next(p.email for p in DEMO_PEOPLE if p.username == USERNAME)
    # No browser here: an empty request counts against the per-address limit as a client
    # whose address is unknown; the per-contact limit applies as for anyone.
    recovery = services.start_request(
        request=HttpRequest(), username=USERNAME, contact_email=contact,
        still_has=list(STILL_HAS), description=DESCRIPTION, agreed=True, acknowledged=True,
    )
    # The requester would type the code from the mail. The demo cannot read it without
    # opening the outbox, so it asks ``contact_code`` (the function the mail delivery calls to
    # make the code) for a fresh one: it returns the code and stores only its digest, as on
    # delivery, and the queued mail's code then no longer works. The right code then files the
    # request through the same ``confirm_contact`` as the form.
    code = services.contact_code(recovery_id=recovery.pk)
    services.confirm_contact(recovery=recovery, code=code)
    return recovery


def _filed_note(recovery: RecoveryRequest) -> str:
    recovery.refresh_from_db()
    if recovery.state == State.ON_HOLD:
        # After "this wasn't me", every request for the account is held for staff.
        return f"Filed recovery request {recovery.public_id}, on hold: {USERNAME} is blocked."
    return (
        f"Filed recovery request {recovery.public_id} for {USERNAME} (lost authenticator; "
        "her password and mailbox proofs are asked for); staff see it at /desk/."
    )
