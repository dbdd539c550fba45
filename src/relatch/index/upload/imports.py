"""Put an existing distribution file into the index from the operator's shell (issue 16 §4).

For operators moving packages in (and for end-to-end tests that need a populated server). The
file goes through the upload pipeline as a twine upload does — the same checks, rows, storage
and events (``relatch.index.upload.services.publish_file``) — and differs only in who
publishes: instead of an API token, the operator names the account on the command line, and
that account becomes the file's uploader (and the owner of a new project). The form fields are
read from the file's own metadata, the way twine reads them before it uploads.
"""

from pathlib import Path

from django.core.files.uploadedfile import UploadedFile
from django.http import QueryDict
from packaging.metadata import parse_email

from relatch.accounts.models import User
from relatch.index.models import File
from relatch.index.names import normalize_project_name
from relatch.index.upload import storage
from relatch.index.upload.publisher import Publisher
from relatch.index.upload.services import Published, publish_file
from relatch.index.upload.validation import MULTI_FIELDS, SINGLE_FIELDS, UploadRefusedError

# Form fields that are not core metadata: twine derives them from the file.
_DERIVED = frozenset({"pyversion", "filetype", "keywords"})
# packaging's raw metadata names of the repeated fields, back to the form's (twine's) names.
_MULTI_FROM_RAW = {raw: key for key, raw in MULTI_FIELDS.items()}


def import_distribution(*, source: Path, owner: User, project_name: str | None = None) -> File:
    """Publish the wheel or sdist at ``source`` as ``owner``, as if they had uploaded it; its
    File row (the one already there when the index holds the same bytes under its name)."""
    return import_file(source=source, owner=owner, project_name=project_name).file


def import_file(*, source: Path, owner: User, project_name: str | None = None) -> Published:
    """Publish the wheel or sdist at ``source`` as ``owner``, as if they had uploaded it.

    ``project_name`` is the display name of a new project (it must name the file's project).
    The same file (name and sha256) already in the index is skipped (``.skipped``), as a
    twine upload of it is. Raises UploadRefusedError, with nothing changed, for whatever a
    twine upload of the file would be refused for (other bytes under a name used before, a
    project ``owner`` has no role in, a frozen account, invalid metadata, …).
    """
    with source.open("rb") as stream:
        upload = UploadedFile(stream, name=source.name, size=source.stat().st_size)
        fields = upload_fields(upload, project_name=project_name)
        return publish_file(request=None, publisher=Publisher.named_by_operator(owner),
                            fields=fields, upload=upload)


def upload_fields(upload: UploadedFile, *, project_name: str | None = None) -> QueryDict:
    """The form twine would send with this file: its core metadata, file type, Python tag
    and digests (``project_name``, if given, as the name)."""
    filename = upload.name or ""
    filetype = _filetype(filename)
    if filetype == File.PackageType.WHEEL:
        metadata = storage.wheel_metadata(upload, filename)
    else:
        metadata = storage.sdist_metadata(upload, filename)
    raw, _unparsed = parse_email(metadata)
    name = str(raw.get("name", ""))
    if project_name and normalize_project_name(project_name) != normalize_project_name(name):
        raise UploadRefusedError(f"This is a file of {name or '?'}, not a file of {project_name}.")
    digests = storage.compute_digests(upload)
    fields = QueryDict(mutable=True)
    fields.update({
        ":action": "file_upload", "protocol_version": "1", "filetype": filetype,
        "pyversion": _pyversion(filename, filetype), "sha256_digest": digests.sha256,
        "blake2_256_digest": digests.blake2_256,
    })
    for key in SINGLE_FIELDS.keys() - _DERIVED:
        value = raw.get(key)
        if isinstance(value, str):
            fields[key] = value
    if project_name:
        fields["name"] = project_name
    if keywords := raw.get("keywords"):
        fields["keywords"] = ", ".join(keywords)
    for raw_key, key in _MULTI_FROM_RAW.items():
        values = raw.get(raw_key)
        if isinstance(values, list):
            fields.setlist(key, [str(value) for value in values])
    urls = raw.get("project_urls") or {}
    fields.setlist("project_urls", [f"{label}, {url}" for label, url in urls.items()])
    return fields


def _filetype(filename: str) -> str:
    if filename.endswith(".whl"):
        return File.PackageType.WHEEL
    if filename.endswith((".tar.gz", ".zip")):
        return File.PackageType.SDIST
    raise UploadRefusedError("Not a wheel (.whl) or a source distribution (.tar.gz, .zip).")


def _pyversion(filename: str, filetype: str) -> str:
    """As twine sends it: a wheel's Python tag (``py3``, ``cp313``), ``source`` for sdists."""
    if filetype == File.PackageType.SDIST:
        return "source"
    parts = filename.removesuffix(".whl").split("-")
    return parts[-3] if len(parts) >= 5 else ""  # a bad name is refused by the checks
