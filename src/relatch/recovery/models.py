"""Recovery requests, their proofs, state history and staff approvals (DESIGN §4, §5).

Thin models: the allowed transitions live in ``workflow.py``, the completion rules in
``policy.py``; every change goes through a service that records it.
"""

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone


class State(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    AWAITING_PROOF = "awaiting_proof", "Waiting for proof"
    IN_WAITING_PERIOD = "in_waiting_period", "In the waiting period"
    AWAITING_APPROVAL = "awaiting_approval", "Waiting for staff approval"
    COMPLETED = "completed", "Completed"
    DENIED = "denied", "Denied"
    CANCELLED = "cancelled", "Cancelled"
    CLOSED_NO_RESPONSE = "closed_no_response", "Closed for lack of response"
    # Someone said "this wasn't me": nothing moves until staff resume or deny it.
    ON_HOLD = "on_hold", "On hold"


# The desk's working queue: requests that still need someone (recovery.desk.queries).
OPEN_STATES = (State.SUBMITTED, State.AWAITING_PROOF, State.IN_WAITING_PERIOD,
               State.AWAITING_APPROVAL, State.ON_HOLD)


class ProofKind(models.TextChoices):
    REPO_BRANCH = "repo_branch", "A branch pushed to the project's repository"
    API_TOKEN = "api_token", "An API token of the account"
    ACCOUNT_EMAIL = "account_email", "A code sent to an address of the account"
    PASSWORD = "password", "The account's password"
    RECOVERY_CODE = "recovery_code", "A recovery code of the account"
    TOTP = "totp", "A code from the account's authenticator app"
    SECURITY_KEY = "security_key", "One of the account's security keys"
    CO_OWNER = "co_owner", "A co-owner vouches"


class RecoveryRequest(models.Model):
    """A private request to get back into an account, followed by its requester through a
    secret status link and by staff at the desk."""

    public_id = models.CharField(max_length=24, unique=True)
    # Rotated to revoke every status link sent so far (the link is an HMAC over id and nonce).
    link_nonce = models.CharField(max_length=32)
    username_claimed = models.CharField(max_length=50)
    # The account, when the claimed name exists; the requester is never told either way.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
        related_name="recovery_requests",
    )
    contact_email = models.EmailField(max_length=254)
    contact_confirmed_at = models.DateTimeField(null=True, blank=True)
    still_has = models.JSONField(default=list, blank=True)  # what the requester says they have
    description = models.TextField(max_length=5000, blank=True)
    agreed_to_code_of_conduct = models.BooleanField(default=False)
    acknowledged_review_time = models.BooleanField(default=False)
    state = models.CharField(max_length=20, choices=State.choices, default=State.SUBMITTED)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # The enforced waiting period: when the last one started and when it ends (or ended).
    wait_started_at = models.DateTimeField(null=True, blank=True)
    wait_ends_at = models.DateTimeField(null=True, blank=True)
    # When the requester was last asked for something and has not answered since.
    awaiting_requester_since = models.DateTimeField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="assigned_recoveries",
    )
    # A staff override (no proof at all) must say why; it also needs a wait and two approvals.
    override_reason = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The code mailed to the contact address before the request is filed (a digest, never
    # the code); a few attempts, then a new code is needed.
    contact_code_digest = models.CharField(max_length=64, blank=True)
    contact_code_expires_at = models.DateTimeField(null=True, blank=True)
    contact_code_attempts = models.PositiveSmallIntegerField(default=0)
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    # While on hold: the state staff resume it to.
    held_from = models.CharField(max_length=20, choices=State.choices, blank=True)
    # Raised to the top of the desk (a "this wasn't me"); cleared when staff decide.
    urgent_since = models.DateTimeField(null=True, blank=True)
    # In a waiting period announced as ending in completion without staff (DESIGN §5: an
    # account without projects, two independent sources, 24 hours with no objection).
    completes_automatically = models.BooleanField(default=False)

    class Meta:
        ordering: ClassVar = ["created_at"]
        indexes: ClassVar = [
            models.Index(fields=["state", "created_at"], name="recovery_queue"),
            # The desk's default page, oldest first: the open filed requests in page order,
            # read a page at a time whatever the number of closed ones (bench/scale.py).
            models.Index(
                fields=["created_at", "id"],
                condition=models.Q(state__in=OPEN_STATES, contact_confirmed_at__isnull=False),
                name="recovery_open_queue",
            ),
            # The same for "every state".
            models.Index(
                fields=["created_at", "id"],
                condition=models.Q(contact_confirmed_at__isnull=False),
                name="recovery_filed_queue",
            ),
        ]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=~models.Q(state="in_waiting_period")
                | models.Q(wait_ends_at__isnull=False),
                name="recovery_wait_has_end",
            ),
            models.CheckConstraint(
                condition=~models.Q(state="on_hold") | ~models.Q(held_from=""),
                name="recovery_hold_knows_its_state",
            ),
            models.CheckConstraint(
                condition=models.Q(agreed_to_code_of_conduct=True)
                & models.Q(acknowledged_review_time=True),
                name="recovery_agreements_given",
            ),
        ]

    def __str__(self) -> str:
        return f"recovery {self.public_id} ({self.state})"


class RecoveryProof(models.Model):
    """One proof, checked by the server (never by eye)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SATISFIED = "satisfied", "Satisfied"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"

    request = models.ForeignKey(RecoveryRequest, on_delete=models.CASCADE, related_name="proofs")
    kind = models.CharField(max_length=20, choices=ProofKind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # What the server saw (e.g. the refs git ls-remote listed); never a secret.
    evidence = models.JSONField(default=dict, blank=True)
    # A code or branch token the requester must give back, as a digest (never in clear).
    secret_digest = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    checked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["created_at"]

    def __str__(self) -> str:
        return f"{self.kind} proof of {self.request_id} ({self.status})"


class RecoveryMessage(models.Model):
    """A message between the requester and staff, shown on the status page and at the desk."""

    class Author(models.TextChoices):
        REQUESTER = "requester", "Requester"
        STAFF = "staff", "Staff"
        SYSTEM = "system", "Relatch"

    request = models.ForeignKey(RecoveryRequest, on_delete=models.CASCADE, related_name="messages")
    author = models.CharField(max_length=10, choices=Author.choices)
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+",
    )
    body = models.TextField(max_length=5000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering: ClassVar = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.author} message on {self.request_id}"


class RecoveryTransition(models.Model):
    """The request's state history: append-only, one row per transition."""

    class Actor(models.TextChoices):
        REQUESTER = "requester", "Requester"
        STAFF = "staff", "Staff"
        OWNER = "owner", "Account owner"
        SYSTEM = "system", "Relatch"

    request = models.ForeignKey(
        RecoveryRequest, on_delete=models.CASCADE, related_name="transitions"
    )
    from_state = models.CharField(max_length=20, choices=State.choices)
    to_state = models.CharField(max_length=20, choices=State.choices)
    actor = models.CharField(max_length=10, choices=Actor.choices)
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+",
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering: ClassVar = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.from_state} → {self.to_state}"


class RecoveryApproval(models.Model):
    """A staff member's approval; completion may need two different ones."""

    request = models.ForeignKey(
        RecoveryRequest, on_delete=models.CASCADE, related_name="approvals"
    )
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint("request", "staff", name="recovery_one_approval_per_staff"),
        ]

    def __str__(self) -> str:
        return f"approval of {self.request_id} by {self.staff_id}"


class RecoveryBlock(models.Model):
    """After someone says "this wasn't me", every request for the account is held until
    ``until`` or until staff lift the block with a written reason."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_blocks"
    )
    until = models.DateTimeField()
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+",
    )
    lift_reason = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"recovery block on {self.user_id} until {self.until:%Y-%m-%d}"
