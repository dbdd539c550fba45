"""The requester's status as the JSON API answers it (GET /api/v1/recovery/status and the
answers of cancel and reopen).

Every field is read from the status page's read model (relatch.recovery.requester.queries),
so the API says what the page says and nothing more: no account fact (ASVS 6.3.8), not even
whether the account exists. Its own module because relatch.api.schemas is long enough.
"""

from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import Field

from relatch.api.schemas import MessageOut, ProofOut
from relatch.recovery.models import ProofKind

ANSWERING = ("Answer each with its id under /api/v1/recovery/status/proofs/{proof_id}/; "
             "GET /api/v1/recovery/status/proofs says what each one needs.")


class TimelineEntryOut(Schema):
    """One line of "What happened" on the status page, oldest first."""

    at: datetime = Field(description="When it happened.")
    text: str = Field(description="The page's words for it; a message's text. The page "
                      "follows a waiting period's entry with when it ends (ends_at).")
    kind: Literal["filed", "proof", "state", "message"] = Field(
        description="filed (the request), proof (asked, accepted, failed, expired), state "
                    "(the request moved on) or message.")
    author: Literal["", "requester", "staff", "system"] = Field(
        description="A message's author (system: Relatch itself); \"\" for other entries.")
    ends_at: datetime | None = Field(
        description="On the entry of the last waiting period that started: when it ends.")
    ended: bool = Field(description="That waiting period's end is past.")


class KindOfProofOut(Schema):
    kind: Literal[tuple(ProofKind.values)] = Field(  # type: ignore[valid-type]
        description="The kind, as proofs name it.")
    label: str = Field(description="Its name on the page.")


class NextStepOut(Schema):
    """The page's one next step: what to do now, or that nothing is to be done and until
    when, or how the request ended."""

    kind: Literal["proofs", "wait", "staff", "reopen", "finished"] = Field(
        description="proofs: give the proofs listed; wait: nothing to do until wait_ends_at; "
                    "staff: nothing to do, staff act next; reopen: closed because we heard "
                    "nothing, POST /api/v1/recovery/status/reopen to go on; finished: see "
                    "outcome.")
    proofs: list[ProofOut] = Field(
        description=f"kind proofs: the proofs still to give, oldest first. {ANSWERING}")
    wait_ends_at: datetime | None = Field(description="kind wait: when the wait ends.")
    wait_over: bool = Field(description="kind wait: it has ended; the request moves on "
                            "within minutes.")
    completes_automatically: bool = Field(
        description="kind wait: unless someone objects, the request completes by itself "
                    "when the wait ends; otherwise staff then decide.")
    sooner: bool = Field(description="kind wait: one more independent proof ends the wait "
                         "sooner.")
    sooner_proofs: list[ProofOut] = Field(
        description=f"The proofs already asked for that could end it sooner. {ANSWERING}")
    sooner_kinds: list[KindOfProofOut] = Field(
        description="Every kind of proof that could end it sooner; one not asked for yet is "
                    "something to tell staff about (POST /api/v1/recovery/status/messages).")
    outcome: Literal["completed", "denied", "cancelled"] | None = Field(
        description="kind finished: how the request ended; null otherwise.")


class StatusOut(Schema):
    """The request as its status page shows it to the holder of the status link."""

    public_id: str
    state: str
    state_label: str
    created_at: datetime
    wait_ends_at: datetime | None
    waiting_for_you_since: datetime | None
    pending_proofs: list[ProofOut]
    messages: list[MessageOut]
    may_cancel: bool
    may_reopen: bool
    timeline: list[TimelineEntryOut] = Field(
        description="What happened, oldest first, as the status page tells it.")
    next_step: NextStepOut = Field(description="What to do now, as the status page says it.")
