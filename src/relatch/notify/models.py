"""Outgoing mail, kept as rows so delivery survives restarts and can be retried."""

from typing import ClassVar

from django.db import models
from django.utils import timezone


class Outcome(models.TextChoices):
    """How one delivery attempt ended (relatch.notify.retries.outcome_of tells them apart)."""

    SENT = "sent", "Accepted by the mail server"
    # The server could not be reached, dropped the connection, refused the session (421, TLS,
    # authentication): nothing was wrong with the message, so it goes as soon as one works.
    UNREACHABLE = "unreachable", "Mail server unreachable"
    # The server answered and refused this message (its sender, recipient or content).
    REFUSED = "refused", "Refused by the mail server"
    # Relatch could not make the message (a template or a link builder failed).
    ERROR = "error", "Could not be prepared"


class OutgoingEmail(models.Model):
    """One message to one address, rendered when it is delivered.

    The row holds no secret: a message that carries a link with a token names a link builder,
    and the token is made at delivery time, so the database and the task queue never hold it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        # Still stored as "failed": queries written against earlier versions keep working.
        # A message is given up only once it has failed for RELATCH_EMAIL_GIVE_UP_HOURS.
        FAILED = "failed", "Given up"

    class Bounce(models.TextChoices):
        SOFT = "soft", "Delayed (a soft bounce)"
        HARD = "hard", "Failed for good (a hard bounce)"

    to = models.EmailField(max_length=254)
    template = models.CharField(max_length=100)
    context = models.JSONField(default=dict, blank=True)
    link_builder = models.CharField(max_length=200, blank=True)
    link_args = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    # The latest attempt (its row is a DeliveryAttempt), and when the next one is due: null
    # while the first attempt has not been made, and once the message is sent or given up.
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=12, choices=Outcome.choices, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    gave_up_at = models.DateTimeField(null=True, blank=True)
    # What its delivery-status notifications said (relatch.accounts.emails.bounces): each
    # message counts once as a soft bounce and once as a hard one, however often it is told.
    bounce = models.CharField(max_length=4, choices=Bounce.choices, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["-created_at", "-id"]
        indexes: ClassVar = [
            # Every delivery asks which mail waits for the server, and the sweep and the staff
            # page read the pending mail: a few rows among all the mail ever sent.
            models.Index(
                fields=["next_attempt_at"], condition=models.Q(status="pending"),
                name="notify_pending_idx",
            ),
            models.Index(
                fields=["gave_up_at"], condition=models.Q(status="failed"),
                name="notify_given_up_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template} to {self.to} ({self.status})"


class DeliveryAttempt(models.Model):
    """One try at handing a message to the mail server, and what the server said.

    Kept while the message waits, and for ATTEMPTS_KEPT_FOR after it was sent or given up
    (``relatch.notify.leftovers.prune_delivery_attempts``).
    """

    message = models.ForeignKey(
        OutgoingEmail, on_delete=models.CASCADE, related_name="delivery_attempts"
    )
    attempted_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering: ClassVar = ["attempted_at", "id"]
        indexes: ClassVar = [
            models.Index(fields=["message", "attempted_at"], name="notify_attempt_message_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} at {self.attempted_at:%Y-%m-%d %H:%M:%S}: {self.outcome}"
