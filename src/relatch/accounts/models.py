"""Users, their email addresses, browser sessions and known devices.

Models are thin: rules the database can hold are constraints; every change goes through a service.
"""

from typing import ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower, Upper
from django.utils import timezone

from relatch.accounts.byte_order import ByteOrder

# The longest name a person can give one of their devices.
DEVICE_NAME_MAX_LENGTH = 60
SIGNIN_METHOD_MAX_LENGTH = 60


class UserManager(BaseUserManager["User"]):
    def get_by_natural_key(self, username: str | None) -> "User":
        return self.get(username__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """An account. The username is public and unique ignoring case (PyPI's rules)."""

    username = models.CharField(max_length=50)
    name = models.CharField(max_length=100, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    # Set by a recovery request's "this wasn't me" (relatch.accounts.freeze): the account's
    # addresses, factors, tokens, roles and uploads cannot change until staff unfreeze it.
    is_frozen = models.BooleanField(default=False)
    frozen_at = models.DateTimeField(null=True, blank=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # Consecutive failed password attempts from devices not known to the account (NIST N20).
    failed_signins = models.PositiveIntegerField(default=0)
    last_failed_signin_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "username"  # addresses live in Email; Django's reset helpers are not used
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(Lower("username"), name="user_username_ci_unique"),
        ]
        indexes: ClassVar = [
            # ``username__iexact`` (sign-in, reset, recovery filing, profile pages) is
            # UPPER(username) = UPPER(%s) on PostgreSQL, which the Lower() constraint above
            # cannot serve: without this, every sign-in read all the users (2 s at 1 M).
            models.Index(Upper("username"), name="user_username_upper"),
            # The desk's user search by prefix (issue 7 §1): a range of UPPER(username) in
            # byte order, read in index order up to the page's 25 rows. The index above is in
            # the database's collation, where a prefix is not a range (see byte_order).
            models.Index(ByteOrder(Upper("username")), name="user_username_upper_bytes"),
            # The desk's list of staff to assign a request to: a few rows among a million.
            models.Index(
                fields=["username"], condition=models.Q(is_staff=True), name="user_staff_username"
            ),
        ]

    def __str__(self) -> str:
        return self.username


class Email(models.Model):
    """An address of an account. Only verified addresses receive security notices."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="emails")
    address = models.EmailField(max_length=254)
    primary = models.BooleanField(default=False)
    verified = models.BooleanField(default=False)
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Set when Relatch took the verification back (relatch.accounts.emails.domains): the
    # address's domain lapsed, or was registered again after the address was verified (a
    # resurrected domain resets passwords for whoever bought it). Why, for the account page.
    unverified_at = models.DateTimeField(null=True, blank=True)
    unverified_reason = models.CharField(max_length=300, blank=True)
    # Mail to it bounced for good (a hard bounce, or three soft ones in 7 days): it stays
    # verified, but no security mail goes to it until it is verified again.
    not_receiving_since = models.DateTimeField(null=True, blank=True)
    bounce_detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering: ClassVar = ["-primary", "created_at"]
        constraints: ClassVar = [
            # A verified address belongs to one account; an unverified one may be claimed by
            # several (a typo or a squatter cannot block the real owner from registering).
            models.UniqueConstraint(
                Lower("address"), condition=models.Q(verified=True), name="email_verified_ci_unique"
            ),
            models.UniqueConstraint("user", Lower("address"), name="email_user_address_ci_unique"),
            models.UniqueConstraint(
                "user", condition=models.Q(primary=True), name="email_one_primary_per_user"
            ),
            models.CheckConstraint(
                condition=models.Q(verified=False) | models.Q(verified_at__isnull=False),
                name="email_verified_has_time",
            ),
        ]
        indexes: ClassVar = [
            # ``address__iexact`` (sign-in and reset by address, registration) is
            # UPPER(address) = UPPER(%s) on PostgreSQL: without this, a scan of every address.
            models.Index(Upper("address"), name="email_address_upper"),
        ]

    def __str__(self) -> str:
        return self.address


class KnownDevice(models.Model):
    """A browser that signed in to the account, named by a long-lived signed cookie.

    A device, not an IP address: failed-password limits for strangers never apply to it, so an
    attacker guessing passwords cannot lock the owner out of their own browser.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="known_devices")
    # SHA-256 of the random id in the cookie: a database leak does not yield usable cookies.
    device_digest = models.CharField(max_length=64)
    user_agent = models.CharField(max_length=512, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    # When this browser last completed a sign-in to the account (remember_device).
    last_seen = models.DateTimeField(default=timezone.now)
    confirmed = models.BooleanField(default=False)
    # What the owner calls it on the devices page; empty: named after its browser and system.
    name = models.CharField(max_length=DEVICE_NAME_MAX_LENGTH, blank=True)
    # How it last signed in ("Password and app code"); empty for rows from before this field.
    signin_method = models.CharField(max_length=SIGNIN_METHOD_MAX_LENGTH, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint("user", "device_digest", name="knowndevice_user_digest_unique"),
        ]

    def __str__(self) -> str:
        return f"device of {self.user_id} first seen {self.first_seen:%Y-%m-%d}"


class UserSession(models.Model):
    """A signed-in browser session, listed on the sessions page so it can be ended."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="user_sessions")
    # SHA-256 of Django's session key: the page can name sessions without exposing keys.
    session_digest = models.CharField(max_length=64, unique=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    # SHA-256 of the session's auth hash (Django derives it from the password hash): a session
    # whose digest is not the account's current one was ended by a password change, even when
    # its row was written after the change's clean-up (a sign-in checked against the old
    # password in the same moment). Empty for rows from before this field; those count as live.
    auth_digest = models.CharField(max_length=64, blank=True)
    # The device digest (KnownDevice.device_digest) of the browser the session runs in, so the
    # devices page shows a browser and its sessions as one entry. Empty: a browser without the
    # device cookie, or a session not seen since it signed in (the tracking middleware fills it).
    device_digest = models.CharField(max_length=64, blank=True)
    # How the session signed in, written with the row (empty for rows from before this field).
    signin_method = models.CharField(max_length=SIGNIN_METHOD_MAX_LENGTH, blank=True)

    class Meta:
        ordering: ClassVar = ["-last_seen"]

    def __str__(self) -> str:
        return f"session of {self.user_id} since {self.created_at:%Y-%m-%d %H:%M}"


class EmailDomain(models.Model):
    """A domain of verified addresses, as its registry last described it over RDAP (RFC 9083).

    One row a domain, however many addresses use it: a domain is looked up at most once every
    7 days (sooner after a failed lookup), whatever the number of accounts on it.
    """

    name = models.CharField(max_length=253, unique=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(default=timezone.now)
    # Consecutive failed lookups (timeouts, 429, unknown TLD): they change nothing.
    failures = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    registered_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    statuses = models.JSONField(default=list, blank=True)

    class Meta:
        indexes: ClassVar = [models.Index(fields=["next_check_at"], name="emaildomain_due")]

    def __str__(self) -> str:
        return self.name


class Bounce(models.Model):
    """A delivery-status notification (RFC 3464) for mail Relatch sent to an address."""

    email = models.ForeignKey(Email, on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="bounces")
    address = models.EmailField(max_length=254)
    hard = models.BooleanField()
    # The DSN's Status field ("5.1.1") and Diagnostic-Code, as received (never a secret).
    status = models.CharField(max_length=20)
    diagnostic = models.CharField(max_length=500, blank=True)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes: ClassVar = [models.Index(fields=["address", "received_at"],
                                          name="bounce_address_time")]

    def __str__(self) -> str:
        return f"{'hard' if self.hard else 'soft'} bounce for {self.address} ({self.status})"


class AccountReminders(models.Model):
    """When an account was last reminded to keep its ways back in working (issue 17)."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="reminders")
    # "Add a second address": mailed every 90 days, unless dismissed (for a year).
    second_address_reminded_at = models.DateTimeField(null=True, blank=True)
    second_address_dismissed_until = models.DateTimeField(null=True, blank=True)
    # "Is your recovery information still right?": asked every 12 months of accounts with a
    # second factor, confirmed in one click.
    recovery_info_asked_at = models.DateTimeField(null=True, blank=True)
    recovery_info_confirmed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"reminders of {self.user_id}"


class LimitCounter(models.Model):
    """The shared state of one rate limit for one key (``relatch.accounts.limit_store``): the
    times of the events it counted in its moving window, and the password checks still in
    flight under it. Every web process reads and changes it under its row lock, so several
    processes share one count and a check and its count are one step."""

    scope = models.CharField(max_length=60)
    key = models.CharField(max_length=400)
    hits = models.JSONField(default=list)  # Unix times of counted events, oldest first
    pending = models.JSONField(default=dict)  # reservation token -> Unix time it was taken
    expires_at = models.DateTimeField()  # nothing in the row matters after this

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["scope", "key"], name="limitcounter_scope_key")
        ]
        indexes: ClassVar = [models.Index(fields=["expires_at"], name="limitcounter_expiry")]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key}"
