"""Finding a project's repository in its release metadata, and asking it for a branch.

Only ``https://`` (and, for loopback testing and self-hosted forges, ``http://`` and
``git://``) URLs are ever contacted: never ``file://``, ``ssh://``, ``ext::`` or a path, which
would let metadata make the server read local files or run commands. git itself is told the
same through GIT_ALLOW_PROTOCOL, so a redirect cannot reach another transport either.
"""

import os
import subprocess
from dataclasses import dataclass
from urllib.parse import urlsplit

from relatch.index.models import Project

ALLOWED_SCHEMES = frozenset({"https", "http", "git"})
REPOSITORY_LABELS = frozenset({"source", "source code", "repository", "code", "git"})
FORGE_HOSTS = frozenset({"github.com", "gitlab.com", "codeberg.org", "bitbucket.org"})
TIMEOUT_SECONDS = 20
MAX_URL_LENGTH = 500


@dataclass(frozen=True)
class LsRemote:
    """What ``git ls-remote`` answered: the ref lines, or why it could not answer."""

    lines: list[str]
    error: str = ""
    timed_out: bool = False


def is_allowed_url(url: str) -> bool:
    parts = urlsplit(url)
    return (
        len(url) <= MAX_URL_LENGTH and parts.scheme in ALLOWED_SCHEMES and bool(parts.hostname)
        and not any(c.isspace() for c in url)
    )


def repository_url(label: str, url: str) -> str | None:
    """The git URL that a Project-URL entry names, or None when it names no repository."""
    url = url.strip()
    if not is_allowed_url(url):
        return None
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host in FORGE_HOSTS:
        segments = [s for s in parts.path.split("/") if s][:2]
        return f"https://{host}/{'/'.join(segments)}" if len(segments) == 2 else None
    if parts.path.endswith(".git") or label.strip().lower() in REPOSITORY_LABELS:
        return url
    return None


def repository_urls(project: Project) -> list[str]:
    """Every repository URL the project's releases name, newest release first, no repeats."""
    found: dict[str, None] = {}
    for release in project.releases.order_by("-created_at"):
        entries = release.project_urls if isinstance(release.project_urls, dict) else {}
        for label, url in entries.items():
            repo = repository_url(str(label), str(url))
            if repo:
                found[repo] = None
    return list(found)


def _environment() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_TERMINAL_PROMPT": "0",  # never wait for a password nobody will type
        "GIT_ALLOW_PROTOCOL": "http:https:git",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,  # no helper or rewrite from the server's own config
        "HOME": os.devnull,
    }


def ls_remote(*, url: str, branch: str, timeout: float = TIMEOUT_SECONDS) -> LsRemote:
    """List ``refs/heads/<branch>`` of the repository at ``url`` (no shell, bounded time)."""
    if not is_allowed_url(url):
        return LsRemote([], error="This repository address is not one Relatch contacts.")
    command = ["git", "ls-remote", "--heads", "--", url, f"refs/heads/{branch}"]
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, checked URL, no shell
            command, capture_output=True, text=True, timeout=timeout, env=_environment(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return LsRemote([], error=f"No answer within {timeout:g} seconds.", timed_out=True)
    if done.returncode != 0:
        return LsRemote([], error=done.stderr.strip()[-500:] or f"git exit {done.returncode}")
    return LsRemote([line for line in done.stdout.splitlines() if line.strip()])
