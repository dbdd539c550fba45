"""What the publishing pages and the project's page show about publishers. Read-only."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch
from django.utils import timezone

from relatch.accounts.models import User
from relatch.index.models import APIToken, File, Project
from relatch.index.trusted.describe import describe_publisher, repository_url
from relatch.index.trusted.models import TrustedPublisher

RECENT_TOKENS = 5
HISTORY_FILES = 100


@dataclass(frozen=True)
class MintedToken:
    token: APIToken
    state: str  # "working", "expired" or the reason it was revoked


@dataclass(frozen=True)
class PublisherRow:
    publisher: TrustedPublisher
    description: str
    url: str | None
    recent_tokens: list[MintedToken]
    name_taken: bool = False  # pending only: a project of that name exists now


def _state(token: APIToken, now: datetime) -> str:
    if token.revoked_at is not None:
        return token.get_revoked_because_display() or "Revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "Expired"
    return "Working"


def _row(publisher: TrustedPublisher, now: datetime, *, name_taken: bool = False) -> PublisherRow:
    tokens = getattr(publisher, "recent_tokens", [])
    return PublisherRow(
        publisher=publisher, description=describe_publisher(publisher),
        url=repository_url(publisher), name_taken=name_taken,
        recent_tokens=[MintedToken(token=t, state=_state(t, now)) for t in tokens],
    )


def _with_recent_tokens() -> Prefetch:
    # A sliced prefetch: each publisher's newest few, in one query (a window function).
    newest = APIToken.objects.order_by("-created_at", "-pk")[:RECENT_TOKENS]
    return Prefetch("tokens", queryset=newest, to_attr="recent_tokens")


def publishers_of(*, project: Project) -> list[PublisherRow]:
    """The project's active publishers, newest first, with their latest minted tokens."""
    now = timezone.now()
    rows = (
        project.trusted_publishers.filter(removed_at__isnull=True)
        .select_related("added_by").prefetch_related(_with_recent_tokens())
    )
    return [_row(p, now) for p in rows]


def pending_of(*, user: User) -> list[PublisherRow]:
    """The account's pending publishers, each marked when its name became a project since."""
    now = timezone.now()
    rows = list(
        TrustedPublisher.objects.filter(added_by=user, project__isnull=True,
                                        removed_at__isnull=True)
    )
    taken = set(
        Project.objects.filter(
            normalized_name__in=[p.pending_normalized_name for p in rows]
        ).values_list("normalized_name", flat=True)
    )
    return [_row(p, now, name_taken=p.pending_normalized_name in taken) for p in rows]


@dataclass(frozen=True)
class Publish:
    file: File
    how: str  # "by GitHub Actions: acme/tool, workflow release.yml", "by alice with token “ci”"


def _how(file: File) -> str:
    if file.trusted_publisher is not None:
        return f"by {describe_publisher(file.trusted_publisher)}"
    who = file.uploader.username if file.uploader is not None else ""
    if file.upload_token is not None:
        return f"by {who or 'a deleted account'} with token “{file.upload_token.name}”"
    # No token: imported by the operator for that account, or uploaded before tokens were
    # recorded with their files.
    return f"by {who}" if who else "by an account since deleted"


def publish_history(*, project: Project, limit: int = HISTORY_FILES) -> list[Publish]:
    """The project's files, newest first, each with how it was published."""
    files = (
        File.objects.filter(release__project=project)
        .select_related("release", "uploader", "upload_token", "trusted_publisher")
        .order_by("-uploaded_at", "-pk")[:limit]
    )
    return [Publish(file=f, how=_how(f)) for f in files]
