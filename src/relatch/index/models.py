"""Projects, roles, releases, files and API tokens.

Models are thin; rules the database can hold are constraints, and every change goes through the
services of this app. Project names are stored as given and as PEP 503 normalises them.
"""

import secrets
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class Project(models.Model):
    """A project, created by its first upload."""

    class Status(models.TextChoices):
        """PEP 792 project status."""

        ACTIVE = "active", "Active"
        # Owners: no new uploads; installs go on.
        ARCHIVED = "archived", "Archived"
        # Staff: hidden from installers (a suspected malicious or compromised project).
        QUARANTINED = "quarantined", "Quarantined"
        # Owners: still installable, marked as not to be used for new work.
        DEPRECATED = "deprecated", "Deprecated"

    name = models.CharField(max_length=200)
    # PEP 503: lowercase, runs of "-", "_", "." become one "-"; the key of /simple/<name>/.
    normalized_name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When the project last changed, for people (the home page, its order); never an ETag: a
    # clock stepped back would give a later change an earlier or equal time.
    last_changed_at = models.DateTimeField(default=timezone.now)
    # +1 on every change the project's pages show (index.changes.mark_project_changed): the
    # source of their ETags and cache keys. db_default: rows inserted by SQL get one too.
    generation = models.PositiveBigIntegerField(default=1, db_default=1)
    # PEP 792: shown on the simple pages; a quarantined project is hidden from installers.
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.ACTIVE, db_default="active"
    )
    status_reason = models.CharField(max_length=500, blank=True, default="", db_default="")
    # Private: only the project's own people (and their read tokens) read its pages and
    # files, whatever RELATCH_READ_ACCESS says for the rest of the index.
    private = models.BooleanField(default=False, db_default=False)
    # PyPI's last_serial: the JournalEntry id of the project's latest change.
    last_serial = models.PositiveBigIntegerField(default=0, db_default=0)

    class Meta:
        ordering: ClassVar = ["normalized_name"]

    def __str__(self) -> str:
        return self.name


def new_epoch() -> str:
    return secrets.token_hex(8)


class IndexState(models.Model):
    """The one row (id 1) naming the version of the list of projects that /simple/ shows.

    Its generation is bumped in the transaction of every change to the list (a project made or
    deleted), and nothing else: uploads to existing projects never touch, hence never lock it.
    """

    ROW_ID = 1

    # Made anew with the row: were the row lost and recreated, its generations would count
    # from 1 again, and an ETag a client kept from the old row must not match a new list.
    epoch = models.CharField(max_length=32, default=new_epoch)
    generation = models.PositiveBigIntegerField(default=1)

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(condition=models.Q(id=1), name="indexstate_one_row"),
        ]

    def __str__(self) -> str:
        return f"index generation {self.epoch}.{self.generation}"


class JournalEntry(models.Model):
    """One change to the index: its id is the global serial (PyPI's ``last_serial`` and
    ``X-PyPI-Last-Serial``). An insert per change, never an update of one shared row, so
    uploads to different projects never wait for each other."""

    id = models.BigAutoField(primary_key=True)
    project_name = models.CharField(max_length=200)
    action = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering: ClassVar = ["-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.project_name}: {self.action}"


class Role(models.Model):
    class Kind(models.TextChoices):
        OWNER = "owner", "Owner"
        MAINTAINER = "maintainer", "Maintainer"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="roles")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="project_roles"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint("project", "user", name="role_one_per_user_project"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind} of {self.project_id}"


class RoleInvitation(models.Model):
    """An owner's invitation to a role; the invitee accepts or declines before it expires."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        REVOKED = "revoked", "Revoked"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="invitations")
    invitee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_invitations"
    )
    inviter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=12, choices=Role.Kind.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                "project", "invitee", condition=models.Q(state="pending"),
                name="invitation_one_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"invitation of {self.invitee_id} to {self.project_id} ({self.state})"


class Release(models.Model):
    """One version of a project, with the metadata of its first upload."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="releases")
    version = models.CharField(max_length=100)
    # packaging's canonicalize_version: "1.0" and "1.0.0" are the same release.
    canonical_version = models.CharField(max_length=100)
    summary = models.CharField(max_length=512, blank=True)
    description = models.TextField(blank=True)
    description_content_type = models.CharField(max_length=100, blank=True)
    requires_python = models.CharField(max_length=200, blank=True)
    author = models.CharField(max_length=500, blank=True)
    author_email = models.CharField(max_length=500, blank=True)
    maintainer = models.CharField(max_length=500, blank=True)
    maintainer_email = models.CharField(max_length=500, blank=True)
    license = models.TextField(blank=True)
    home_page = models.CharField(max_length=500, blank=True)
    # {"Source": "https://…", …} from Project-URL (and Home-page); the recovery desk's evidence.
    project_urls = models.JSONField(default=dict, blank=True)
    # Every other metadata field as uploaded (classifiers, keywords, requires_dist, …).
    extra_metadata = models.JSONField(default=dict, blank=True)
    yanked = models.BooleanField(default=False)
    yanked_reason = models.CharField(max_length=500, blank=True)
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # Set when the release's first file came through a trusted publisher: its metadata was
    # then written by whoever can run that CI job, not by ``uploader``'s own hand (the
    # recovery desk must not read it as the account's declaration).
    trusted_publisher = models.ForeignKey(
        "index.TrustedPublisher", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="releases",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering: ClassVar = ["-created_at"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                "project", "canonical_version", name="release_one_per_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.version}"


class File(models.Model):
    """A distribution file of a release, stored through Django's storage API."""

    class PackageType(models.TextChoices):
        WHEEL = "bdist_wheel", "Wheel"
        SDIST = "sdist", "Source distribution"

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="files")
    filename = models.CharField(max_length=300, unique=True)
    packagetype = models.CharField(max_length=20, choices=PackageType.choices)
    python_version = models.CharField(max_length=50, blank=True)
    requires_python = models.CharField(max_length=200, blank=True)
    size = models.PositiveBigIntegerField()
    sha256_digest = models.CharField(max_length=64)
    blake2_256_digest = models.CharField(max_length=64)
    # The storage name of the file, e.g. "ab/cd/abcd…/name-1.0.tar.gz".
    path = models.CharField(max_length=500, unique=True)
    # PEP 658: the wheel's METADATA, stored beside the file; its digest for the index.
    metadata_sha256_digest = models.CharField(max_length=64, blank=True)
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # How it was published: the token (None: the operator's import), and the trusted
    # publisher whose OIDC exchange minted that token (None: a token the account made).
    upload_token = models.ForeignKey(
        "index.APIToken", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    trusted_publisher = models.ForeignKey(
        "index.TrustedPublisher", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="files",
    )

    class Via(models.TextChoices):
        API_TOKEN = "api_token", "API token"
        TRUSTED_PUBLISHER = "trusted_publisher", "Trusted publisher"
        OPERATOR_IMPORT = "operator_import", "Operator's import"

    # The way in, kept apart from the rows above: an import and a file uploaded before issue 21
    # both have neither, and a token row goes with its deleted account. Empty: not recorded.
    uploaded_via = models.CharField(max_length=20, choices=Via.choices, blank=True)
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering: ClassVar = ["filename"]

    def __str__(self) -> str:
        return self.filename


class UsedFilename(models.Model):
    """Every file name ever uploaded: the same name can never be uploaded again, even after
    its file was deleted (installers may have cached the old bytes under that name)."""

    filename = models.CharField(max_length=300)
    project_name = models.CharField(max_length=200)
    first_uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(Lower("filename"), name="usedfilename_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.filename


class APIToken(models.Model):
    """An upload token. The secret is shown once; only its SHA-256 is kept (it is 256 random
    bits, so a fast hash is enough and a check costs the same for every token)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    class Purpose(models.TextChoices):
        UPLOAD = "upload", "Upload"
        # Staff-scoped: the recovery desk's JSON API, never uploads.
        STAFF = "staff", "Recovery desk (staff)"
        # Installers reading pages and files when reads need a sign-in; never uploads.
        READ = "read", "Read (install)"

    name = models.CharField(max_length=100)
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.UPLOAD)
    # The public part of the token, to find its row in one lookup.
    identifier = models.CharField(max_length=24, unique=True)
    secret_digest = models.CharField(max_length=64)
    # None: every project the user may upload to; else that one project.
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, null=True, blank=True, related_name="api_tokens"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Where the last use came from, for the tokens page (a leaked token used elsewhere shows).
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    last_used_user_agent = models.CharField(max_length=512, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class RevokedBecause(models.TextChoices):
        OWNER = "owner", "Revoked by its owner"
        UNUSED = "unused", "Disabled: unused for too long"
        LEAKED = "leaked", "Revoked: found published by a secret scanner"
        PUBLISHER_REMOVED = "publisher_removed", "Revoked: its trusted publisher was removed"
        FINISHED = "finished", "Revoked by the job that used it"
        TAKEN_BACK = "taken_back", "Revoked when the account was taken back"

    revoked_because = models.CharField(max_length=20, choices=RevokedBecause.choices,
                                       blank=True)
    # Minted by a trusted publisher's OIDC exchange (15 minutes, one project); None: made by
    # the account on its tokens page or through the API.
    publisher = models.ForeignKey(
        "index.TrustedPublisher", on_delete=models.PROTECT, null=True, blank=True,
        related_name="tokens",
    )

    class Meta:
        ordering: ClassVar = ["-created_at"]
        indexes: ClassVar = [
            # The daily sweep of tokens unused for too long.
            models.Index(fields=["revoked_at", "last_used_at"], name="token_revoked_last_used"),
        ]

    def __str__(self) -> str:
        return f"token {self.name} of {self.user_id}"


# The upstream index's rows live beside their code; importing them here registers them with
# the index app (Django loads an app's models from its models module).
from relatch.index.trusted.models import TrustedPublisher, UsedOIDCToken  # noqa: E402
from relatch.index.upstream.models import UpstreamFile, UpstreamPage  # noqa: E402

__all__ = [
    "APIToken", "File", "IndexState", "JournalEntry", "Project", "Release", "Role",
    "RoleInvitation", "TrustedPublisher", "UpstreamFile", "UpstreamPage", "UsedFilename",
    "UsedOIDCToken",
]
