"""Second factors, and the state of sign-ins that need more than a password.

Models are thin; every change goes through the services of the factor's subpackage.
"""

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class TotpDevice(models.Model):
    """An enrolled authenticator app (RFC 6238). A row exists only once a code confirmed it."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="totp_device"
    )
    # The shared secret, encrypted with a key derived from the signing key: it cannot be
    # hashed (the server must compute codes), but a database dump alone does not reveal it.
    encrypted_secret = models.TextField()
    # The last 30-second step accepted: a code is accepted once (NIST N26, ASVS 6.5.1).
    last_used_step = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"authenticator app of {self.user_id}"


class WebAuthnCredential(models.Model):
    """A security key or passkey registered to an account."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webauthn_credentials"
    )
    label = models.CharField(max_length=64)
    credential_id = models.CharField(max_length=1400, unique=True)  # base64url
    public_key = models.BinaryField()
    sign_count = models.PositiveBigIntegerField(default=0)
    transports = models.JSONField(default=list, blank=True)
    discoverable = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["created_at"]
        constraints: ClassVar = [
            models.UniqueConstraint("user", Lower("label"), name="webauthn_label_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.label


class RecoveryCodeSet(models.Model):
    """The account's current set of recovery codes; a new set replaces it whole."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_code_set"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # When the user proved they saved the codes by entering one back (without spending it).
    confirmed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"recovery codes of {self.user_id} ({self.created_at:%Y-%m-%d})"


class RecoveryCode(models.Model):
    """One code: a short public identifier, so a check costs one hash, and an Argon2id hash."""

    code_set = models.ForeignKey(RecoveryCodeSet, on_delete=models.CASCADE, related_name="codes")
    identifier = models.CharField(max_length=8)
    code_hash = models.CharField(max_length=200)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint("code_set", "identifier", name="recoverycode_set_identifier"),
        ]

    def __str__(self) -> str:
        return f"recovery code {self.identifier}"


class NewDeviceConfirmation(models.Model):
    """A sign-in from a device the account does not know, waiting for the link mailed to its
    verified addresses. It completes once, and only in the browser that started it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="new_device_confirmations"
    )
    # SHA-256 of a random nonce kept in the starting browser's session.
    browser_digest = models.CharField(max_length=64)
    factor = models.CharField(max_length=20)
    # A recovery code is spent only when the confirmation succeeds.
    recovery_code = models.ForeignKey(
        RecoveryCode, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"new-device sign-in of {self.user_id} at {self.created_at:%Y-%m-%d %H:%M}"


class SelfServiceRecovery(models.Model):
    """Password and a second factor, but the mailbox is gone: after a waiting period announced
    to every verified address, this device becomes trusted."""

    class State(models.TextChoices):
        WAITING = "waiting", "Waiting"
        CANCELLED = "cancelled", "Cancelled"
        COMPLETED = "completed", "Completed"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="self_recoveries"
    )
    device_digest = models.CharField(max_length=64)
    factor = models.CharField(max_length=20)
    state = models.CharField(max_length=10, choices=State.choices, default=State.WAITING)
    started_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.CharField(max_length=40, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)

    class Meta:
        ordering: ClassVar = ["-started_at"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                "user", condition=models.Q(state="waiting"), name="selfrecovery_one_waiting"
            ),
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("started_at")),
                name="selfrecovery_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"self-service recovery of {self.user_id} ({self.state})"
