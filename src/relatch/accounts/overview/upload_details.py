"""The history's line about a publish: which file, and which way in (issue 21).

Read from the event's details alone: the events copy what they name (the publisher's
repository and workflow, the token's name), so the line stays true after the publisher is
removed or the token revoked. The publisher's words mirror
``relatch.index.trusted.describe.describe_publisher``, which this package may not import
(accounts comes before index in the import order).
"""

from typing import Any

from relatch.audit.models import EventKind

# The dialects' names, and the hosts of the public issuers (others are named, so a publisher
# on a self-hosted GitLab is not mistaken for one on gitlab.com).
_DIALECTS = {"github": "GitHub Actions", "gitlab": "GitLab CI/CD"}
_PUBLIC_HOSTS = {"token.actions.githubusercontent.com", "gitlab.com"}
_UPLOADS = {EventKind.FILE_UPLOADED, EventKind.UPLOAD_SKIPPED, EventKind.UPLOAD_REFUSED}
_PUBLISHER_EVENTS = {
    EventKind.TRUSTED_PUBLISHER_ADDED,
    EventKind.TRUSTED_PUBLISHER_REMOVED, EventKind.TRUSTED_PUBLISHER_PINNED,
    EventKind.TRUSTED_PUBLISHER_USED, EventKind.PENDING_PUBLISHER_INVALIDATED,
}


def publish_detail(kind: str, details: dict[str, Any]) -> str:
    """The detail line of an upload or trusted-publisher event ("" for other kinds):
    "sample-pkg 1.0: sample_pkg-1.0-py3-none-any.whl, by trusted publisher GitHub Actions:
    acme/tool, workflow release.yml"."""
    if kind in _UPLOADS:
        what = _text(details.get("filename"))
        if version := _text(details.get("version")):
            what = f"{_text(details.get('project'))} {version}: {what}"
        return _joined(what, _way_in(details))
    if kind == EventKind.PROJECT_CREATED:
        return _joined(_text(details.get("project")), _way_in(details))
    if kind in _PUBLISHER_EVENTS:
        # The publisher events carry the publisher's data at the top level (the exchange's
        # and the publishing pages' events), or under "publisher".
        publisher = details.get("publisher")
        publisher = publisher if isinstance(publisher, dict) else details
        project = _text(details.get("project")) or _text(details.get("name"))
        if _text(publisher.get("repository")):
            return _joined(project, describe(publisher), separator=": ")
        return project
    return ""


def describe(publisher: dict[str, Any]) -> str:
    """ "GitHub Actions: acme/tool, workflow release.yml, environment pypi" from the
    publisher's data as the events keep it."""
    kind = _text(publisher.get("kind"))
    where = _DIALECTS.get(kind, kind or "OIDC")
    issuer = _text(publisher.get("issuer"))
    host = issuer.split("://", 1)[-1].split("/", 1)[0]
    if host and host not in _PUBLIC_HOSTS:
        where = f"{where} at {host}"
    text = (f"{where}: {_text(publisher.get('repository'))}, "
            f"workflow {_text(publisher.get('workflow'))}")
    if environment := _text(publisher.get("environment")):
        text += f", environment {environment}"
    return text


def _way_in(details: dict[str, Any]) -> str:
    if isinstance(publisher := details.get("publisher"), dict):
        return f"by trusted publisher {describe(publisher)}"
    if name := _text(details.get("token_name")):
        return f"with API token \u201c{name}\u201d"
    if details.get("by") == "operator import":
        return "by the operator's import"
    return ""


def _joined(first: str, second: str, separator: str = ", ") -> str:
    return separator.join(part for part in (first, second) if part)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
