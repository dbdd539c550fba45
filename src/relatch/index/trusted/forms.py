"""The forms of the publishing pages, and the rules a publisher's claims must follow.

The rules are plain functions (``check_*``) so the services apply the same ones to whatever
calls them: a form parses and shows the message beside its field, the service refuses.
A publisher is matched against the claims of every OIDC token CI presents, so what is stored
must be exactly what the issuer puts in its tokens: a typo here is not "close enough", it is a
publisher that never matches (or, worse, one that matches someone else's repository).
"""

import re
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from relatch.index.names import MAX_PROJECT_NAME
from relatch.index.trusted.models import TrustedPublisher

MAX_ENVIRONMENT = 100
MAX_ID = 20  # GitHub's and GitLab's ids are 64-bit integers: at most 20 digits.
_GITHUB_HOST = "token.actions.githubusercontent.com"

# GitHub: the owner (user or organisation) has letters, digits and '-'; the repository's name
# letters, digits and '.', '_', '-'.
_GITHUB_REPOSITORY = re.compile(r"[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}")
# GitLab: group[/subgroup…]/project, each part letters, digits, '.', '_', '-', not starting
# with '-' or '.' (GitLab refuses those paths, and '.'/'..' must never reach a URL).
_GITLAB_PART = r"[A-Za-z0-9_][A-Za-z0-9._-]*"
_GITLAB_PATH = re.compile(rf"{_GITLAB_PART}(?:/{_GITLAB_PART})+")
# GitHub: the workflow's file name in .github/workflows/ (the claim job_workflow_ref names it
# there; no folders).
_GITHUB_WORKFLOW = re.compile(r"[A-Za-z0-9._-]+\.ya?ml")
# GitLab: the CI configuration's path in the repository (ci_config_ref_uri), e.g. .gitlab-ci.yml.
_GITLAB_WORKFLOW = re.compile(r"[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*\.ya?ml")
_DIGITS = re.compile(rf"[0-9]{{1,{MAX_ID}}}")

GITHUB_REPOSITORY_ERROR = (
    "Enter the GitHub repository as owner/name, e.g. acme/tool: the owner has letters, digits "
    "and '-', the name letters, digits and '.', '_', '-'."
)
GITLAB_REPOSITORY_ERROR = (
    "Enter the GitLab project's path as group/project or group/subgroup/project, e.g. "
    "acme/tools/cli: letters, digits, '.', '_' and '-' between the slashes."
)
GITHUB_WORKFLOW_ERROR = (
    "Enter the workflow's file name only, e.g. release.yml: no folders (it is in "
    ".github/workflows/), ending in .yml or .yaml."
)
GITLAB_WORKFLOW_ERROR = (
    "Enter the CI configuration's path in the repository, e.g. .gitlab-ci.yml or "
    "ci/release.yml: ending in .yml or .yaml, not starting with '/' and without '..'."
)
ENVIRONMENT_LENGTH_ERROR = f"The environment has at most {MAX_ENVIRONMENT} characters."
ENVIRONMENT_CONTROL_ERROR = "The environment cannot contain control characters or line breaks."
ID_ERROR = (
    "The {what} is a number (digits only), e.g. 123456789. Leave it empty to pin it at the "
    "first upload."
)


def issuer_choices() -> list[tuple[str, str]]:
    """The issuers the operator lists (settings.OIDC_ISSUERS), as people know them:
    "GitHub Actions (github.com)", "GitLab CI/CD (gitlab.com)", "GitLab CI/CD at
    gitlab.example.com"."""
    return [(url, issuer_label(url, dialect)) for url, dialect in settings.OIDC_ISSUERS.items()]


def issuer_label(url: str, dialect: str) -> str:
    kind = TrustedPublisher.Dialect(dialect).label
    host = urlsplit(url).hostname or url
    if host == _GITHUB_HOST:
        return f"{kind} (github.com)"
    if host == "gitlab.com":
        return f"{kind} (gitlab.com)"
    return f"{kind} at {host}"


def dialect_of(issuer: str) -> str | None:
    """The issuer's dialect, or None for an issuer the operator does not list."""
    dialect = settings.OIDC_ISSUERS.get(issuer)
    return str(dialect) if dialect else None


def check_repository(dialect: str, value: str) -> str:
    """The repository as stored: lower-case, as both hosts treat these paths."""
    value = value.strip()
    if dialect == TrustedPublisher.Dialect.GITHUB:
        name = value.partition("/")[2]
        if not _GITHUB_REPOSITORY.fullmatch(value) or name in {".", ".."}:
            raise ValidationError(GITHUB_REPOSITORY_ERROR, code="repository")
    elif not _GITLAB_PATH.fullmatch(value) or len(value) > 300 or value.endswith("."):
        raise ValidationError(GITLAB_REPOSITORY_ERROR, code="repository")
    return value.lower()


def check_workflow(dialect: str, value: str) -> str:
    """The workflow file (GitHub) or CI configuration path (GitLab), as typed: both hosts
    name files case-sensitively in the claims."""
    value = value.strip()
    if dialect == TrustedPublisher.Dialect.GITHUB:
        if not _GITHUB_WORKFLOW.fullmatch(value) or len(value) > 300:
            raise ValidationError(GITHUB_WORKFLOW_ERROR, code="workflow")
        return value
    # No '..' part: the claim is a path in the repository, never one that climbs out of it.
    if (not _GITLAB_WORKFLOW.fullmatch(value) or len(value) > 300
            or any(part in {".", ".."} for part in value.split("/"))):
        raise ValidationError(GITLAB_WORKFLOW_ERROR, code="workflow")
    return value


def check_environment(value: str) -> str:
    """Optional: empty means any environment (or none)."""
    value = value.strip()
    if len(value) > MAX_ENVIRONMENT:
        raise ValidationError(ENVIRONMENT_LENGTH_ERROR, code="environment")
    # Control and format characters would make the name differ from what the page shows (an
    # owner checking the list could not see that it is not the environment they expect).
    if any(unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} for c in value):
        raise ValidationError(ENVIRONMENT_CONTROL_ERROR, code="environment")
    return value


def check_id(value: str, *, what: str) -> str:
    """An optional immutable id: digits, or empty (pinned at the first upload)."""
    value = value.strip()
    if value and not _DIGITS.fullmatch(value):
        raise ValidationError(ID_ERROR.format(what=what), code="id")
    return value


@dataclass(frozen=True)
class PublisherFields:
    """A publisher's claims after the rules: what the service stores."""

    issuer: str
    dialect: str
    repository: str
    workflow: str
    environment: str
    repository_id: str
    owner_id: str


def publisher_fields(
    *, issuer: str, repository: str, workflow: str, environment: str, repository_id: str,
    owner_id: str,
) -> PublisherFields:
    """Every rule at once; ValidationError with a dict of messages by field name."""
    dialect = dialect_of(issuer)
    if dialect is None:
        raise ValidationError({"issuer": "Choose where the CI runs from the list."})
    errors: dict[str, ValidationError] = {}
    cleaned: dict[str, str] = {}
    checks: dict[str, Any] = {
        "repository": lambda: check_repository(dialect, repository),
        "workflow": lambda: check_workflow(dialect, workflow),
        "environment": lambda: check_environment(environment),
        "repository_id": lambda: check_id(repository_id, what="repository id"),
        "owner_id": lambda: check_id(owner_id, what="owner id"),
    }
    for field, check in checks.items():
        try:
            cleaned[field] = check()
        except ValidationError as error:
            errors[field] = error
    if errors:
        raise ValidationError(errors)
    return PublisherFields(issuer=issuer, dialect=dialect, **cleaned)


class PublisherForm(forms.Form):
    """Register a trusted publisher: where CI runs and the claims its tokens must carry."""

    issuer = forms.ChoiceField(label="Where the CI runs", choices=())
    repository = forms.CharField(
        label="Repository", max_length=300,
        help_text="GitHub: owner/name, e.g. acme/tool. GitLab: the project's path, e.g. "
                  "acme/tools/cli.",
        error_messages={"required": "Enter the repository."},
    )
    workflow = forms.CharField(
        label="Workflow", max_length=300,
        help_text="GitHub: the workflow's file name in .github/workflows/, e.g. release.yml. "
                  "GitLab: the CI configuration's path, e.g. .gitlab-ci.yml.",
        error_messages={"required": "Enter the workflow file."},
    )
    environment = forms.CharField(
        label="Environment (optional)", required=False,
        # Checked by check_environment, which says so in words (max_length would cut it short).
        help_text="Only jobs that run in this environment may publish. Recommended: a "
                  "protected environment (e.g. pypi) that needs a reviewer's approval.",
    )
    repository_id = forms.CharField(
        label="Repository id (optional)", required=False,
        help_text="GitHub's repository id, GitLab's project id.",
    )
    owner_id = forms.CharField(
        label="Owner id (optional)", required=False,
        help_text="GitHub's owner (user or organisation) id, GitLab's namespace id.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read when the form is made: the operator's list, not the one at import time.
        field = self.fields["issuer"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = issuer_choices()
        field.error_messages["invalid_choice"] = "Choose where the CI runs from the list."
        field.error_messages["required"] = "Choose where the CI runs."

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            fields = publisher_fields(
                issuer=data["issuer"], repository=data["repository"],
                workflow=data["workflow"], environment=data.get("environment", ""),
                repository_id=data.get("repository_id", ""), owner_id=data.get("owner_id", ""),
            )
        except ValidationError as error:
            for field, messages in error.error_dict.items():
                for message in messages:
                    self.add_error(field, message)
            return data
        data["fields"] = fields
        return data


class PendingPublisherForm(PublisherForm):
    """A pending publisher: the same claims, and the name of the project its first upload
    creates."""

    project_name = forms.CharField(
        label="Project name", max_length=MAX_PROJECT_NAME,
        help_text="The name of the project the first upload creates, e.g. acme-tool.",
        error_messages={
            "required": "Enter the name of the project to create.",
            "max_length": f"A project name has at most {MAX_PROJECT_NAME} characters.",
        },
    )
    field_order = ["project_name", "issuer", "repository", "workflow", "environment",
                   "repository_id", "owner_id"]
