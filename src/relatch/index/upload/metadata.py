"""A release's metadata from the checked upload form: the fields the pages and the recovery
desk read (project URLs, author and maintainer addresses), and everything else as uploaded."""

from typing import Any

from relatch.index.upload.validation import UploadForm

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
