"""Request and response bodies of the JSON API. Every text field has a length limit, so an
overlong value is a 422 with a message, never a 500 or a truncated write."""

from datetime import datetime
from typing import Annotated, Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from ninja import Schema
from pydantic import AfterValidator, Field
from pydantic.json_schema import JsonDict

from relatch.recovery.desk.lookup import MAX_SEARCH, SEARCH_HELP, has_control_characters
from relatch.recovery.models import ProofKind, State

MAX_TEXT = 5000
MAX_REASON = 2000


def _email(value: str) -> str:
    value = value.strip()
    try:
        validate_email(value)
    except DjangoValidationError:
        raise ValueError("Enter a valid email address.") from None
    return value


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold NUL: stored or looked up, it was a 500 (found by schemathesis).
    if "\x00" in value:
        raise ValueError("This may not contain NUL characters.")
    return value


def _not_blank(value: str) -> str:
    if not _storable(value).strip():
        raise ValueError("This may not be empty.")
    return value


# The schema's word for what the validators enforce, so a client's validator refuses what the
# server would answer with a 422. Whitespace is exactly what str.isspace() (and so strip())
# calls whitespace, spelled out so every regex engine reads the same set; the not-blank form
# reads as: leading whitespace, one character that is neither whitespace nor NUL, no NUL after
# (one way to match, so it costs a client's regex engine linear time).
_SPACE = (r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f"
          r"\u3000")
NO_NUL: JsonDict = {"pattern": r"^[^\x00]*$"}
NOT_BLANK: JsonDict = {"pattern": rf"^[{_SPACE}]*[^\x00{_SPACE}][^\x00]*$"}
Plain = Annotated[str, AfterValidator(_storable)]
Email = Annotated[str, Field(max_length=254, json_schema_extra={"format": "email"}),
                  AfterValidator(_email)]
Text = Annotated[str, Field(max_length=MAX_TEXT, json_schema_extra=NOT_BLANK),
                 AfterValidator(_not_blank)]
Reason = Annotated[str, Field(max_length=MAX_REASON, json_schema_extra=NOT_BLANK),
                   AfterValidator(_not_blank)]
StillHasValue = Literal["password", "email", "totp", "security_key", "recovery_codes",
                        "api_token", "repo_push"]


class ErrorOut(Schema):
    detail: str


class DetailOut(Schema):
    detail: str


# -- requester ------------------------------------------------------------------------------


class NewRequestIn(Schema):
    username: Annotated[str, Field(min_length=1, max_length=50, json_schema_extra=NOT_BLANK),
                        AfterValidator(_not_blank)]
    contact_email: Email
    still_has: list[StillHasValue] = Field(default_factory=list, max_length=7)
    description: Plain = Field(default="", max_length=MAX_TEXT, json_schema_extra=NO_NUL)
    agreed: bool = Field(description="Agreement to the code of conduct.")
    acknowledged: bool = Field(description="Acknowledgement that review takes time.")


class StartedOut(Schema):
    public_id: str
    detail: str


class CodeIn(Schema):
    code: Plain = Field(min_length=1, max_length=20, json_schema_extra=NO_NUL)


class MessageIn(Schema):
    body: Text


class ProofOut(Schema):
    id: int
    kind: str
    kind_label: str
    status: str
    expires_at: datetime | None
    instructions: str = ""


class AddressChoiceOut(Schema):
    choice: int = Field(description="Send this as address_choice to send-code.")
    masked: str


class RequesterProofOut(ProofOut):
    """A pending proof as its page shows it: for repo_branch the repository and the exact
    branch name to push; for account_email the account's addresses, masked."""

    repository: str = ""
    project: str = ""
    branch: str = ""
    addresses: list[AddressChoiceOut] = Field(default_factory=list)
    code_sent_to: str = ""
    attempts_left: int
    vouch_url: str = ""
    checking: bool = Field(default=False, description="repo_branch: a check is queued or "
                           "running; the page says \"Checking the repository…\".")
    last_result: str = Field(default="", description="repo_branch: what the last check "
                             "saw, e.g. \"branch absent\" or \"no answer\".")
    last_checked_at: datetime | None = None


class AnswerIn(Schema):
    answer: Plain = Field(min_length=1, max_length=MAX_REASON, json_schema_extra=NO_NUL,
                          description="The API token, the password or the 6-digit code.")


class AddressChoiceIn(Schema):
    address_choice: int = Field(ge=1, le=2**31 - 1)


class ProofAnsweredOut(Schema):
    detail: str
    proof: RequesterProofOut


class MessageOut(Schema):
    author: str
    body: str
    created_at: datetime


# -- staff ----------------------------------------------------------------------------------


class QueueFilters(Schema):
    state: Literal[tuple(State.values) + ("all",)] | None = None  # type: ignore[valid-type]
    older_than_days: int | None = Field(default=None, ge=0, le=3650)
    owns_projects: bool | None = None
    assigned_to_me: bool = False


class QueueRowOut(Schema):
    public_id: str
    username_claimed: str
    account_matched: bool
    owns_projects: bool
    state: str
    state_label: str
    created_at: datetime
    age_seconds: int
    first_answer_at: datetime | None
    over_target: bool
    assigned_to: str


class StaffProofOut(ProofOut):
    evidence: dict[str, object]
    created_at: datetime
    checked_at: datetime | None
    requested_by: str = Field(description="The staff member who asked; \"\" when it was "
                                          "asked automatically from what the requester said.")
    counts: bool | None = Field(default=None, description="For a satisfied proof: whether the "
                                "policy counts it as an independent source.")
    source: str = Field(default="", description="What it rests on: mailbox, knowledge, factor, "
                        "repository, token or person (\"\" when it rests on nothing counted).")
    why: str = Field(default="", description="Why it counts, or why not, in words for staff.")


class StaffMessageOut(MessageOut):
    staff: str


class TransitionOut(Schema):
    from_state: str
    to_state: str
    actor: str
    staff: str
    reason: str
    created_at: datetime


class VerdictOut(Schema):
    may_complete: bool
    missing: list[str]
    approvals_needed: int
    approvals: list[str]
    sources: list[str] = Field(default_factory=list, description="The independent sources "
                               "counted so far, one entry each.")


class ChangeOut(Schema):
    """A change of the account around the request (relatch.recovery.takeover)."""

    id: int = Field(description="Pass it in CompleteIn.reverse to undo the change.")
    when: datetime
    label: str
    what: str
    undo: str = Field(description="What reversing it does; \"\" when it cannot be reversed.")
    note: str


class StandingOut(Schema):
    """What a "this wasn't me" left: a hold, a block, a freeze, an urgent mark."""

    held_from: str
    urgent_since: datetime | None
    account_frozen: bool
    block_until: datetime | None
    completes_automatically: bool


class CompleteIn(Schema):
    reverse: list[int] = Field(default_factory=list, max_length=200,
                               description="Ids of recent changes (RequestDetailOut.changes) "
                                           "to reverse as part of the completion.")


class AddressOut(Schema):
    address: str
    primary: bool
    verified: bool
    verified_at: datetime | None


class ProjectOut(Schema):
    name: str
    role: str
    urls: list[tuple[str, str]]


class EventOut(Schema):
    kind: str
    label: str
    created_at: datetime
    ip_address: str | None


class KeyOut(Schema):
    label: str
    created_at: datetime
    last_used_at: datetime | None


class CodesOut(Schema):
    made_at: datetime
    confirmed_at: datetime | None
    total: int
    used: int


class FactsOut(Schema):
    username: str
    is_active: bool
    date_joined: datetime
    totp_since: datetime | None
    keys: list[KeyOut]
    recovery_codes: CodesOut | None
    addresses: list[AddressOut]
    projects: list[ProjectOut]
    signins: list[EventOut]
    events: list[EventOut]
    earlier_requests: list[str]


class OutcomeOut(Schema):
    state_label: str
    at: datetime | None
    by: str = Field(description='Who ended it ("" when no recorded move did).')
    reason: str


class RequestDetailOut(Schema):
    public_id: str
    username_claimed: str
    account_matched: bool
    contact_email: str
    still_has: list[str]
    description: str
    state: str
    state_label: str
    created_at: datetime
    updated_at: datetime
    wait_ends_at: datetime | None
    awaiting_requester_since: datetime | None
    assigned_to: str
    override_reason: str
    reminders_sent: int
    proofs: list[StaffProofOut]
    messages: list[StaffMessageOut]
    transitions: list[TransitionOut]
    verdict: VerdictOut
    weak_evidence: list[str]
    facts: FactsOut | None
    standing: StandingOut
    changes: list[ChangeOut]
    outcome: OutcomeOut | None = Field(
        default=None, description="How the request ended; null while it is open.")


class AssignIn(Schema):
    assignee: Plain | None = Field(default=None, max_length=50, json_schema_extra=NO_NUL,
                                   description="A staff username, or null to unassign.")


class ProofRequestIn(Schema):
    kind: Literal[tuple(ProofKind.values)]  # type: ignore[valid-type]
    project: Plain | None = Field(default=None, max_length=200, json_schema_extra=NO_NUL)


class ReasonIn(Schema):
    reason: Reason


class ApprovalsOut(Schema):
    detail: str
    approvals: int


# The desk's user search: what a person writing to support says, as the page takes it. No
# username or address holds a control character (and PostgreSQL refuses a NUL).
SEARCH_PATTERN: JsonDict = {"pattern": r"^[^\x00-\x1f\x7f-\x9f]*$"}


def _no_control_characters(value: str) -> str:
    if has_control_characters(value):
        raise ValueError("No username or address has control characters.")
    return value


class UserSearch(Schema):
    q: Annotated[str, Field(max_length=MAX_SEARCH, json_schema_extra=SEARCH_PATTERN,
                            description=SEARCH_HELP),
                 AfterValidator(_no_control_characters)]


class SearchAddressOut(Schema):
    address: str
    verified: bool
    primary: bool


class SearchFactorsOut(Schema):
    authenticator_app: bool
    security_keys: int
    recovery_codes_left: int | None = Field(description="Unused codes; null: no codes made.")


class OpenRequestOut(Schema):
    public_id: str
    state: str
    state_label: str
    created_at: datetime


class AccountMatchOut(Schema):
    username: str
    name: str
    date_joined: datetime
    is_active: bool
    is_frozen: bool
    matched_by: str = Field(description="username, address or prefix: exact matches first.")
    matched_address: SearchAddressOut | None
    addresses: list[SearchAddressOut]
    factors: SearchFactorsOut
    owns: int
    maintains: int
    open_requests: list[OpenRequestOut]


# -- API tokens -----------------------------------------------------------------------------


class TokenOut(Schema):
    id: int
    name: str
    purpose: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None
    last_used_ip: str | None = Field(description="The address the last use came from.")
    last_used_user_agent: str = Field(description="The user agent of the last use, as sent.")
    last_used_client: str = Field(
        description='The last use\'s program in words, e.g. "twine 6.1.0 on Linux 6".')
    expires_at: datetime | None = Field(
        description="None only for a token made before tokens expired by default.")
    revoked_at: datetime | None
    revoked_because: str = Field(
        description='Why it was revoked: "owner", "unused" (for too long), "leaked" (found '
        'published by a secret scanner), ...; empty when it was not (or not said).')


class TokenIn(Schema):
    name: Annotated[str, Field(min_length=1, max_length=100, json_schema_extra=NOT_BLANK),
                    AfterValidator(_not_blank)]
    project: Plain | None = Field(default=None, max_length=200, json_schema_extra=NO_NUL)
    expires_at: datetime | None = Field(
        default=None, description="When it stops working (with its time zone); by default "
        "TOKEN_DEFAULT_DAYS (90) days from now, at most TOKEN_MAX_DAYS (366) ahead.")
    # As on the tokens page: upload (twine) or read (pip and uv on a private index); staff
    # tokens are not made here.
    purpose: Literal["upload", "read"] = Field(
        default="upload", description="upload: publish with twine; read: install with pip or uv "
        "(a read token cannot upload, an upload token cannot read).")


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The token itself: shown this once, never again.")
