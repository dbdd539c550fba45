"""Which trusted publisher a verified CI token speaks for, read from its claims.

Two dialects: GitHub Actions (also Forgejo and Gitea Actions) names the repository and the
workflow file in ``repository`` and ``job_workflow_ref``; GitLab CI in ``project_path`` and
``ci_config_ref_uri``. Repository paths compare case-insensitively (both hosts treat them so),
workflow files exactly (they are files in git). A publisher's immutable ids, once known, must
be the token's too: a repository deleted and re-created under the same name does not inherit
the right to publish.
"""

from dataclasses import dataclass
from typing import Any

from relatch.index.trusted.errors import invalid_publisher, invalid_token
from relatch.index.trusted.models import TrustedPublisher
from relatch.index.trusted.verify import VerifiedToken

GITHUB = TrustedPublisher.Dialect.GITHUB
GITLAB = TrustedPublisher.Dialect.GITLAB


@dataclass(frozen=True)
class Identity:
    """What a verified token says about the CI job, in a publisher's terms."""

    repository: str  # as the token spells it
    workflow: str  # GitHub: the file under .github/workflows/; GitLab: the CI config path
    environment: str
    repository_id: str
    owner_id: str
    # For the record (TRUSTED_PUBLISHER_USED), never for matching:
    ref: str
    sha: str
    run_id: str
    actor: str

    def describe(self) -> str:
        where = f"repository {self.repository}, workflow {self.workflow}"
        return where + (f", environment {self.environment}" if self.environment
                        else ", no environment")

    def run_details(self) -> dict[str, str]:
        return {"ref": self.ref, "sha": self.sha, "run_id": self.run_id, "actor": self.actor}


def identity(token: VerifiedToken) -> Identity:
    """The token's repository, workflow, environment and ids, read as its dialect names them;
    ExchangeRefusedError when a claim the dialect needs is missing or malformed."""
    if token.dialect == GITLAB:
        return _gitlab(token)
    return _github(token)


def _claim(token: VerifiedToken, name: str, *, required: bool = False) -> str:
    value: Any = token.claims.get(name)
    if value is None or value == "":
        if required:
            raise invalid_token(f"The token has no '{name}' claim, which {token.dialect} "
                                f"tokens carry: is {token.issuer} listed with the right kind?")
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise invalid_token(f"The token's '{name}' claim is not a string.")
    return str(value)[:300]


def _split_ref(token: VerifiedToken, claim: str, prefix: str, where: str) -> tuple[str, str]:
    """``<prefix><workflow>@<git ref>`` → (workflow, git ref); the prefix compares
    case-insensitively (it holds the repository path)."""
    value = _claim(token, claim, required=True)
    if not value.lower().startswith(prefix.lower()):
        raise invalid_publisher(f"The token's {claim} ({value}) is not a workflow of {where}: "
                                "a publisher names a workflow of its repository itself.")
    workflow, at, ref = value[len(prefix):].partition("@")
    # GitHub runs workflows from .github/workflows/ itself, never a subdirectory.
    nested = claim == "job_workflow_ref" and "/" in workflow
    if not workflow or not at or nested:
        raise invalid_token(f"The token's {claim} ({value}) does not name a workflow file.")
    return workflow, ref


def _github(token: VerifiedToken) -> Identity:
    repository = _claim(token, "repository", required=True)
    workflow, ref = _split_ref(token, "job_workflow_ref", f"{repository}/.github/workflows/",
                               f"repository {repository}")
    return Identity(
        repository=repository, workflow=workflow,
        environment=_claim(token, "environment"),
        repository_id=_claim(token, "repository_id"),
        owner_id=_claim(token, "repository_owner_id"),
        ref=_claim(token, "ref") or ref, sha=_claim(token, "sha"),
        run_id=_claim(token, "run_id"), actor=_claim(token, "actor"),
    )


def _gitlab(token: VerifiedToken) -> Identity:
    project_path = _claim(token, "project_path", required=True)
    # GitLab names its own host (and any relative URL root) before the project path.
    host = token.issuer.split("://", 1)[1]
    workflow, ref = _split_ref(token, "ci_config_ref_uri", f"{host}/{project_path}//",
                               f"project {project_path}")
    return Identity(
        repository=project_path, workflow=workflow,
        environment=_claim(token, "environment"),
        repository_id=_claim(token, "project_id"),
        owner_id=_claim(token, "namespace_id"),
        ref=_claim(token, "ref_path") or ref, sha=_claim(token, "sha"),
        run_id=_claim(token, "pipeline_id"), actor=_claim(token, "user_login"),
    )


def environment_fits(publisher: TrustedPublisher, who: Identity) -> bool:
    """An empty environment on the publisher allows any; GitHub's environment names are
    case-insensitive, GitLab's are not."""
    if not publisher.environment:
        return True
    if publisher.dialect == GITHUB:
        return publisher.environment.lower() == who.environment.lower()
    return publisher.environment == who.environment


def ids_fit(publisher: TrustedPublisher, who: Identity) -> bool:
    """The publisher's pinned ids (when set) are the token's."""
    return ((not publisher.repository_id or publisher.repository_id == who.repository_id)
            and (not publisher.owner_id or publisher.owner_id == who.owner_id))


def matching_publisher(token: VerifiedToken, who: Identity) -> TrustedPublisher:
    """The one active publisher (of one project, or pending for one name) the token speaks
    for; ExchangeRefusedError saying which part did not match, or that publishers of more than
    one project match (a workflow publishes to one project, so none is guessed)."""
    candidates = list(
        TrustedPublisher.objects.select_related("project", "added_by").filter(
            issuer=token.issuer, dialect=token.dialect, repository=who.repository.lower(),
            removed_at__isnull=True,
        )
    )
    if not candidates:
        raise invalid_publisher(f"No trusted publisher here for {who.describe()} "
                                f"(issuer {token.issuer}).")
    same_workflow = [p for p in candidates if p.workflow == who.workflow]
    if not same_workflow:
        raise invalid_publisher(f"No trusted publisher here for {who.describe()}: the "
                                "publishers of this repository name another workflow.")
    in_environment = [p for p in same_workflow if environment_fits(p, who)]
    if not in_environment:
        raise invalid_publisher(f"No trusted publisher here for {who.describe()}: the "
                                "publishers of this workflow require another environment.")
    fitting = [p for p in in_environment if ids_fit(p, who)]
    if not fitting:
        raise invalid_publisher(_ids_refusal(in_environment[0], who))
    targets = {p.project_id or f"pending:{p.pending_normalized_name}" for p in fitting}
    if len(targets) > 1:
        raise invalid_publisher(
            f"The token for {who.describe()} matches trusted publishers of {len(targets)} "
            "projects here. A workflow publishes to one project: a project owner must remove "
            "the extra publishers."
        )
    # Of several publishers of the same project, the most specific: one naming the
    # environment, then one with pinned ids, then the oldest.
    return min(fitting, key=lambda p: (not p.environment, not p.repository_id, p.created_at,
                                       p.pk))


def _ids_refusal(publisher: TrustedPublisher, who: Identity) -> str:
    if publisher.repository_id and publisher.repository_id != who.repository_id:
        what, theirs, ours = "id", who.repository_id or "none", publisher.repository_id
    else:
        what, theirs, ours = "owner's id", who.owner_id or "none", publisher.owner_id
    return (f"Repository {who.repository} has {what} {theirs}, but its trusted publisher "
            f"here was tied to {what} {ours}: the repository (or its owner) was deleted and "
            "re-created, or transferred. A project owner must remove the publisher and add it "
            "again.")
