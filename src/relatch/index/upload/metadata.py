"""A release's metadata from the checked upload form: the fields the pages and the recovery
desk read (project URLs, author and maintainer addresses), and everything else as uploaded;
for a wheel, the form checked against the wheel's own METADATA first."""

from dataclasses import replace
from typing import Any

from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from relatch.index.upload.validation import UploadForm, UploadRefusedError

# Release columns filled straight from the form field of the same name.
RELEASE_COLUMNS = (
    "summary", "description", "description_content_type", "requires_python", "author",
    "author_email", "maintainer", "maintainer_email", "license", "home_page",
)
# Kept in extra_metadata: the rest of core metadata, as sent.
EXTRA_SINGLE = ("metadata_version", "keywords", "download_url", "license_expression")


def release_fields(form: UploadForm) -> dict[str, Any]:
    """Keyword arguments for a new Release (besides project, version and uploader)."""
    fields: dict[str, Any] = {column: form.single.get(column, "") for column in RELEASE_COLUMNS}
    fields["project_urls"] = project_urls(form)
    fields["extra_metadata"] = extra_metadata(form)
    return fields


def project_urls(form: UploadForm) -> dict[str, str]:
    """Project-URL entries, and Home-page as "Homepage" when no entry has that label."""
    urls = dict(form.project_urls)
    home_page = form.single.get("home_page", "")
    labels = {label.lower().replace("-", "").replace("_", "") for label in urls}
    if home_page and "homepage" not in labels:
        urls["Homepage"] = home_page
    return urls


def extra_metadata(form: UploadForm) -> dict[str, Any]:
    extra: dict[str, Any] = {key: form.single[key] for key in EXTRA_SINGLE if key in form.single}
    extra.update(form.multi)
    return extra


def check_wheel_metadata(data: bytes, form: UploadForm) -> UploadForm:
    """The form as the wheel's METADATA says it: refused (400) when they disagree on the name,
    the version, Requires-Dist or Requires-Python; the wheel's own values otherwise.

    pip and uv read the METADATA inside (PEP 658) and the index's pages show the form: a wheel
    whose form hid one of its requirements would install a dependency nobody saw listed.
    """
    raw, _unparsed = parse_email(data)
    name, version = str(raw.get("name", "")), str(raw.get("version", ""))
    if not _same_release(name, version, form):
        raise UploadRefusedError(
            f"The wheel's METADATA is for {name or '?'} {version or '?'}, not for "
            f"{form.name} {form.version}."
        )
    requires = [str(r) for r in raw.get("requires_dist", [])]
    _compare_requires_dist(form.multi.get("requires_dist", []), requires)
    python = str(raw.get("requires_python", "")).strip()
    _compare_requires_python(form.single.get("requires_python", ""), python)
    single = {k: v for k, v in form.single.items() if k != "requires_python"}
    multi = {k: v for k, v in form.multi.items() if k != "requires_dist"}
    if python:
        single["requires_python"] = python
    if requires:
        multi["requires_dist"] = requires
    return replace(form, single=single, multi=multi)


def _same_release(name: str, version: str, form: UploadForm) -> bool:
    try:
        return canonicalize_name(name) == canonicalize_name(form.name) and (
            Version(version) == Version(form.version)
        )
    except InvalidVersion:
        return False


def _compare_requires_dist(sent: list[str], inside: list[str]) -> None:
    only_sent = sorted(set(map(_requirement_key, sent)) - set(map(_requirement_key, inside)))
    only_inside = sorted(set(map(_requirement_key, inside)) - set(map(_requirement_key, sent)))
    if only_sent or only_inside:
        raise UploadRefusedError(
            "The form's Requires-Dist is not the wheel's METADATA's: "
            f"only in the wheel: {', '.join(only_inside) or 'nothing'}; "
            f"only in the form: {', '.join(only_sent) or 'nothing'}."
        )


def _requirement_key(text: str) -> str:
    """A requirement spelt one way (name normalised, extras sorted, spacing packaging's)."""
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        raise UploadRefusedError(f"Invalid Requires-Dist {text[:200]!r}.") from None
    requirement.name = canonicalize_name(requirement.name)
    requirement.extras = {canonicalize_name(extra) for extra in requirement.extras}
    return str(requirement)


def _compare_requires_python(sent: str, inside: str) -> None:
    try:
        same = SpecifierSet(sent) == SpecifierSet(inside)
    except InvalidSpecifier:
        same = False
    if not same:
        raise UploadRefusedError(
            f"The form's Requires-Python ({sent or 'none'}) is not the wheel's METADATA's "
            f"({inside or 'none'})."
        )
