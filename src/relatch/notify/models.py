"""Outgoing mail, kept as rows so delivery survives restarts and can be retried."""

from typing import ClassVar

from django.db import models
from django.utils import timezone


class OutgoingEmail(models.Model):
    """One message to one address, rendered when it is delivered.

    The row holds no secret: a message that carries a link with a token names a link builder,
    and the token is made at delivery time, so the database and the task queue never hold it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    class Bounce(models.TextChoices):
        SOFT = "soft", "Delayed (a soft bounce)"
        HARD = "hard", "Failed for good (a hard bounce)"

    to = models.EmailField(max_length=254)
    template = models.CharField(max_length=100)
    context = models.JSONField(default=dict, blank=True)
    link_builder = models.CharField(max_length=200, blank=True)
    link_args = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    # What its delivery-status notifications said (relatch.accounts.emails.bounces): each
    # message counts once as a soft bounce and once as a hard one, however often it is told.
    bounce = models.CharField(max_length=4, choices=Bounce.choices, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.template} to {self.to} ({self.status})"
