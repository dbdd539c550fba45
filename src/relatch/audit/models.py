"""Append-only records: what happened to an account, and what staff did."""

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone


class EventKind(models.TextChoices):
    """Every kind of security event. The label is what the user reads in their history."""

    ACCOUNT_CREATED = "account_created", "Account created"
    SIGNIN_SUCCEEDED = "signin_succeeded", "Signed in"
    SIGNIN_FAILED = "signin_failed", "Failed sign-in"
    SIGNIN_THROTTLED = "signin_throttled", "Sign-in refused: too many attempts"
    SIGNED_OUT = "signed_out", "Signed out"
    REAUTH_SUCCEEDED = "reauth_succeeded", "Confirmed password"
    REAUTH_FAILED = "reauth_failed", "Failed to confirm password"
    PASSWORD_CHANGED = "password_changed", "Password changed"
    PASSWORD_RESET_REQUESTED = "password_reset_requested", "Password reset requested"
    PASSWORD_RESET = "password_reset", "Password reset by email"
    EMAIL_ADDED = "email_added", "Email address added"
    EMAIL_VERIFIED = "email_verified", "Email address verified"
    EMAIL_REMOVED = "email_removed", "Email address removed"
    EMAIL_REPLACED = "email_replaced", "Unverified email address replaced"
    EMAIL_PRIMARY_CHANGED = "email_primary_changed", "Primary email address changed"
    EMAIL_VERIFICATION_SENT = "email_verification_sent", "Verification email sent"
    EMAIL_UNVERIFIED = "email_unverified", "Email address no longer trusted: verify it again"
    EMAIL_NOT_RECEIVING = "email_not_receiving", "Mail to an email address bounced"
    SIGNUP_ATTEMPT_WITH_EMAIL = (
        "signup_attempt_with_email",
        "Someone tried to register with your address",
    )
    NAME_CHANGED = "name_changed", "Name changed"
    TOTP_ADDED = "totp_added", "Authenticator app added"
    TOTP_REMOVED = "totp_removed", "Authenticator app removed"
    WEBAUTHN_ADDED = "webauthn_added", "Security key added"
    WEBAUTHN_RENAMED = "webauthn_renamed", "Security key renamed"
    WEBAUTHN_REMOVED = "webauthn_removed", "Security key removed"
    RECOVERY_CODES_GENERATED = "recovery_codes_generated", "New recovery codes made"
    RECOVERY_CODES_CONFIRMED = "recovery_codes_confirmed", "Recovery codes confirmed as saved"
    RECOVERY_CODE_USED = "recovery_code_used", "Recovery code used"
    SECOND_FACTOR_FAILED = "second_factor_failed", "Wrong second factor after a correct password"
    NEW_DEVICE_CONFIRMATION_SENT = "new_device_confirmation_sent", "New-device sign-in link sent"
    NEW_DEVICE_CONFIRMED = "new_device_confirmed", "Sign-in from a new device confirmed"
    DEVICE_FORGOTTEN = "device_forgotten", "Trusted device removed"
    DEVICE_RENAMED = "device_renamed", "Device renamed"
    SELF_RECOVERY_STARTED = "self_recovery_started", "Self-service recovery started"
    SELF_RECOVERY_CANCELLED = "self_recovery_cancelled", "Self-service recovery cancelled"
    SELF_RECOVERY_COMPLETED = "self_recovery_completed", "Self-service recovery completed"
    FACTOR_REMINDER_SENT = "factor_reminder_sent", "Reminder to check second factors sent"
    RECOVERY_INFO_CONFIRMED = "recovery_info_confirmed", "Recovery information confirmed as right"
    API_TOKEN_CREATED = "api_token_created", "API token created"
    API_TOKEN_REVOKED = "api_token_revoked", "API token revoked"
    API_TOKEN_USED = "api_token_used", "API token used"
    API_TOKEN_REFUSED = "api_token_refused", "API token refused"
    API_TOKEN_DISABLED_UNUSED = "api_token_disabled_unused", "API token disabled: unused"
    API_TOKEN_LEAKED = "api_token_leaked", "API token revoked: found in public"
    TRUSTED_PUBLISHER_ADDED = "trusted_publisher_added", "Trusted publisher added"
    TRUSTED_PUBLISHER_REMOVED = "trusted_publisher_removed", "Trusted publisher removed"
    TRUSTED_PUBLISHER_PINNED = (
        "trusted_publisher_pinned", "Trusted publisher tied to its repository's id"
    )
    TRUSTED_PUBLISHER_USED = (
        "trusted_publisher_used", "Upload token minted for a trusted publisher"
    )
    PENDING_PUBLISHER_INVALIDATED = (
        "pending_publisher_invalidated", "Pending trusted publisher dropped: the name was taken"
    )
    PROJECT_CREATED = "project_created", "Project created"
    FILE_UPLOADED = "file_uploaded", "File uploaded"
    UPLOAD_REFUSED = "upload_refused", "Upload refused"
    UPLOAD_SKIPPED = "upload_skipped", "Upload skipped: the same file was already there"
    PROJECT_STATUS_CHANGED = "project_status_changed", "Project status changed"
    PROJECT_VISIBILITY_CHANGED = "project_visibility_changed", "Project visibility changed"
    UPSTREAM_NAME_RESERVED = "upstream_name_reserved", "Name kept from the upstream index"
    RELEASE_YANKED = "release_yanked", "Release yanked"
    RELEASE_UNYANKED = "release_unyanked", "Release un-yanked"
    RELEASE_DELETED = "release_deleted", "Release deleted"
    ROLE_INVITED = "role_invited", "Invited to a project role"
    ROLE_INVITATION_SENT = "role_invitation_sent", "Invitation to a project role sent"
    ROLE_INVITATION_ACCEPTED = "role_invitation_accepted", "Project role invitation accepted"
    ROLE_INVITATION_DECLINED = "role_invitation_declined", "Project role invitation declined"
    ROLE_INVITATION_REVOKED = "role_invitation_revoked", "Project role invitation revoked"
    ROLE_CHANGED = "role_changed", "Project role changed"
    ROLE_REMOVED = "role_removed", "Removed from a project"
    RECOVERY_REQUESTED = "recovery_requested", "Account recovery requested"
    RECOVERY_STATE_CHANGED = "recovery_state_changed", "Account recovery request changed"
    RECOVERY_COMPLETED = "recovery_completed", "Account recovered by staff"
    RECOVERY_APPROVED = "recovery_approved", "Account recovery approved by staff"
    RECOVERY_PROOF_REQUESTED = "recovery_proof_requested", "Recovery proof requested"
    RECOVERY_PROOF_CHECKED = "recovery_proof_checked", "Recovery proof checked"
    RECOVERY_HELD = "recovery_held", "Account recovery request put on hold"
    RECOVERY_OBJECTED = "recovery_objected", "Someone said a recovery request was not theirs"
    ACCOUNT_FROZEN = "account_frozen", "Account frozen: sensitive changes stopped"
    ACCOUNT_UNFROZEN = "account_unfrozen", "Account unfrozen by staff"
    SESSION_ENDED = "session_ended", "Session ended"
    OTHER_SESSIONS_ENDED = "other_sessions_ended", "All other sessions ended"


class Factor(models.TextChoices):
    PASSWORD = "password", "Password"
    EMAIL_LINK = "email_link", "Emailed link"
    TOTP = "totp", "Authenticator app"
    WEBAUTHN = "webauthn", "Security key"
    RECOVERY_CODE = "recovery_code", "Recovery code"
    API_TOKEN = "api_token", "API token"
    TRUSTED_PUBLISHER = "trusted_publisher", "Trusted publisher (OIDC)"


# After these, earlier second-factor failures no longer count (NIST N21), and the failures
# that do count: the indexes of SecurityEvent below serve relatch.mfa.throttling's queries.
RESETTING_KINDS = (EventKind.SIGNIN_SUCCEEDED, EventKind.PASSWORD_RESET, EventKind.REAUTH_SUCCEEDED)
FAILURE_KINDS = (EventKind.SIGNIN_FAILED, EventKind.REAUTH_FAILED)
# The changes of an account's addresses, factors, tokens, roles and password that the recovery
# desk lists around a request (relatch.recovery.takeover), served by event_user_changes below.
ACCOUNT_CHANGE_KINDS = (
    EventKind.EMAIL_ADDED, EventKind.EMAIL_REMOVED, EventKind.EMAIL_REPLACED,
    EventKind.EMAIL_PRIMARY_CHANGED, EventKind.TOTP_ADDED, EventKind.TOTP_REMOVED,
    EventKind.WEBAUTHN_ADDED, EventKind.WEBAUTHN_REMOVED, EventKind.RECOVERY_CODES_GENERATED,
    EventKind.API_TOKEN_CREATED, EventKind.PASSWORD_CHANGED, EventKind.PASSWORD_RESET,
    EventKind.ROLE_INVITATION_SENT, EventKind.ROLE_CHANGED, EventKind.ROLE_REMOVED,
)


def kind_label(kind: str) -> str:
    """What the history calls an event's kind (its own value when the kind is no longer
    known). A lookup in the enum: Django's get_kind_display() rebuilds a dict of every
    kind's choice at each call, which cost the desk's page ~10 ms for its 200 listed events."""
    try:
        return str(EventKind(kind).label)
    except ValueError:
        return kind


class SecurityEvent(models.Model):
    """Something that happened to an account's security, shown to its owner newest first."""

    # No index of its own: both indexes below start with the user.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="security_events",
        db_index=False,
    )
    kind = models.CharField(max_length=40, choices=EventKind.choices)
    factor = models.CharField(max_length=20, choices=Factor.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering: ClassVar = ["-created_at", "-id"]
        indexes: ClassVar = [
            # The history page and the desk, newest first. With the id in it, a page deep in
            # a long history is found from the index alone (audit.queries), not by reading
            # every row before it.
            models.Index(fields=["user", "-created_at", "-id"], name="event_user_time_id"),
            # The second-factor limits (mfa.throttling) look, at every code typed, for the
            # account's last success and the failures of a factor after it, by id. Without
            # these, an account with 100 k events since its last sign-in (API uploads) read
            # them all at each attempt (1.4 s on bench/scale.py's database); with them, only
            # the rows asked for. The kinds are those of mfa.throttling (a test checks).
            models.Index(
                fields=["user", "id"],
                condition=models.Q(kind__in=RESETTING_KINDS),
                name="event_user_resets",
            ),
            models.Index(
                fields=["user", "factor", "id"],
                condition=models.Q(kind__in=FAILURE_KINDS),
                name="event_user_failures",
            ),
            # The desk's changes around a recovery request, newest first. Without it, an
            # account with 100 k API uploads and sign-ins in the window and few changes read
            # them all for each view of the request (390 ms on bench/scale.py's database);
            # with it, the changes alone. The kinds are those of recovery.takeover (a test
            # checks: with others, PostgreSQL could not use it).
            models.Index(
                fields=["user", "-created_at", "-id"],
                condition=models.Q(kind__in=ACCOUNT_CHANGE_KINDS),
                name="event_user_changes",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.created_at:%Y-%m-%d %H:%M})"


class StaffAction(models.Model):
    """What a staff member did to an account, with the state before and after."""

    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="staff_actions_taken"
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="staff_actions_received",
    )
    action = models.CharField(max_length=60)
    reason = models.TextField(blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering: ClassVar = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.staff_id} at {self.created_at:%Y-%m-%d %H:%M}"
