"""Reads of the index that several apps share."""

from relatch.accounts.models import User
from relatch.index.models import Project, Role
from relatch.index.names import MAX_PROJECT_NAME, normalize_project_name


def find_project_by_typed_name(name: str) -> Project | None:
    """The project someone means by ``name`` as typed (in a form, the API or a URL): by its
    PEP 503 normalised name, so "Spam_Eggs", "spam-eggs" and "SPAM.eggs" are one project;
    surrounding spaces do not count. None when no project has the name — and, without asking
    the database, for a name no project can have (too long, or with a NUL, which PostgreSQL
    refuses in a query)."""
    name = name.strip()
    if not name or len(name) > MAX_PROJECT_NAME or "\x00" in name:
        return None
    return Project.objects.filter(normalized_name=normalize_project_name(name)).first()


def owns_any_project(user: User) -> bool:
    """Whether ``user`` is an owner of at least one project (mfa's policy asks, through
    ``relatch.mfa.policy.answer_project_ownership``)."""
    return Role.objects.filter(user=user, kind=Role.Kind.OWNER).exists()
