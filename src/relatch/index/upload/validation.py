"""Checking an upload's form fields, the way twine sends them, before anything is stored.

Every check raises UploadRefusedError with the message twine shows its user (as the reason
phrase and the body of the response), so a refused upload says exactly what to fix.
"""

from dataclasses import dataclass, field
from typing import Any

from django.http import QueryDict
from packaging.metadata import InvalidMetadata, Metadata, RawMetadata
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from relatch.index.models import File
from relatch.index.names import is_valid_project_name, normalize_project_name

# Form fields holding one value each, as twine names them, and the longest value kept.
SINGLE_FIELDS: dict[str, int] = {
    "metadata_version": 10, "name": 200, "version": 100, "summary": 512,
    "description": 5 * 1024 * 1024, "description_content_type": 100, "keywords": 2000,
    "home_page": 500, "download_url": 500, "author": 500, "author_email": 500,
    "maintainer": 500, "maintainer_email": 500, "license": 100_000, "license_expression": 1000,
    "requires_python": 200, "pyversion": 50, "filetype": 20,
}
# Form fields that repeat (one entry per value); twine's names, then packaging's raw names.
MULTI_FIELDS: dict[str, str] = {
    "classifiers": "classifiers", "platform": "platforms",
    "supported_platform": "supported_platforms", "requires": "requires", "provides": "provides",
    "obsoletes": "obsoletes", "requires_dist": "requires_dist", "provides_dist": "provides_dist",
    "obsoletes_dist": "obsoletes_dist", "requires_external": "requires_external",
    "provides_extra": "provides_extra", "dynamic": "dynamic", "license_file": "license_files",
}
MAX_REPEATED_VALUE = 2000
MAX_FILENAME = 255  # a file system's limit; File.filename allows 300
FILETYPE_SUFFIXES: dict[str, tuple[str, ...]] = {
    File.PackageType.WHEEL: (".whl",), File.PackageType.SDIST: (".tar.gz", ".zip"),
}


class UploadRefusedError(Exception):
    """An upload that is refused, with the message the uploader reads and the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        self.message = message
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class UploadForm:
    """An upload's fields once checked: what the services store."""

    name: str
    normalized_name: str
    version: str
    canonical_version: str
    filetype: str
    pyversion: str
    single: dict[str, str]
    multi: dict[str, list[str]]
    project_urls: dict[str, str] = field(default_factory=dict)
    sha256_digest: str = ""
    blake2_256_digest: str = ""


def check_action(fields: QueryDict) -> None:
    if fields.get(":action") != "file_upload":
        raise UploadRefusedError(
            "Only ':action=file_upload' is supported at this address (the upload API twine uses)."
        )


def check_form(fields: QueryDict) -> UploadForm:
    """The checked fields: name, PEP 440 version, file type, lengths, and valid metadata."""
    single = _single_fields(fields)
    multi = _multi_fields(fields)
    name = _project_name(single.get("name", ""))
    version = _version(single.get("version", ""))
    filetype = _filetype(single.get("filetype", ""))
    project_urls = parse_project_urls(fields.getlist("project_urls"))
    check_metadata(single, multi, project_urls)
    return UploadForm(
        name=name, normalized_name=normalize_project_name(name), version=version,
        canonical_version=canonicalize_version(version), filetype=filetype,
        pyversion=single.get("pyversion", ""), single=single, multi=multi,
        project_urls=project_urls, sha256_digest=_digest(fields, "sha256_digest"),
        blake2_256_digest=_digest(fields, "blake2_256_digest"),
    )


def _single_fields(fields: QueryDict) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, limit in SINGLE_FIELDS.items():
        value = fields.get(key, "").strip() if key != "description" else fields.get(key, "")
        if len(value) > limit:
            raise UploadRefusedError(f"The '{key}' field is too long (at most {limit} characters).")
        if value:
            values[key] = value
    return values


def _multi_fields(fields: QueryDict) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for key in MULTI_FIELDS:
        entries = [v.strip() for v in fields.getlist(key) if v.strip()]
        if any(len(v) > MAX_REPEATED_VALUE for v in entries):
            raise UploadRefusedError(
                f"A '{key}' value is too long (at most {MAX_REPEATED_VALUE} characters)."
            )
        if entries:
            values[key] = entries
    return values


def _project_name(name: str) -> str:
    if not name:
        raise UploadRefusedError("The 'name' field is missing: which project is this file for?")
    if not is_valid_project_name(name):
        raise UploadRefusedError(
            f"'{name[:100]}' is not a valid project name: use letters, digits, '.', '_' and "
            "'-', starting and ending with a letter or digit (PEP 508)."
        )
    return name


def _version(text: str) -> str:
    if not text:
        raise UploadRefusedError("The 'version' field is missing.")
    try:
        Version(text)
    except InvalidVersion:
        raise UploadRefusedError(
            f"'{text[:100]}' is not a valid version: see PEP 440 (for example 1.0, 2.1.3, 1.0rc1)."
        ) from None
    return text


def _filetype(text: str) -> str:
    if text not in FILETYPE_SUFFIXES:
        raise UploadRefusedError(
            f"File type '{text[:40]}' is not accepted: upload wheels (bdist_wheel) and source "
            "distributions (sdist) only."
        )
    return text


def _digest(fields: QueryDict, key: str) -> str:
    value = fields.get(key, "").strip().lower()
    if value and (len(value) != 64 or any(c not in "0123456789abcdef" for c in value)):
        raise UploadRefusedError(f"The '{key}' field is not a hexadecimal 256-bit digest.")
    return value


def parse_project_urls(entries: list[str]) -> dict[str, str]:
    """Project-URL entries ("Label, URL") as a mapping, the way core metadata writes them."""
    urls: dict[str, str] = {}
    for entry in entries:
        label, sep, url = entry.partition(",")
        label, url = label.strip(), url.strip()
        if not sep or not label or not url:
            raise UploadRefusedError(
                f"Invalid project URL '{entry[:100]}': write it as 'Label, https://…'."
            )
        if len(label) > 32 or len(url) > MAX_REPEATED_VALUE:
            raise UploadRefusedError(f"Invalid project URL '{entry[:100]}': too long.")
        urls[label] = url
    return urls


def check_metadata(
    single: dict[str, str], multi: dict[str, list[str]], project_urls: dict[str, str]
) -> None:
    """Core metadata rules, by packaging (valid Metadata-Version, fields it allows, …)."""
    if "metadata_version" not in single:
        raise UploadRefusedError("The 'metadata_version' field is missing.")
    raw = _raw_metadata(single, multi, project_urls)
    try:
        Metadata.from_raw(raw, validate=True)
    except ExceptionGroup as group:
        raise UploadRefusedError(f"Invalid metadata: {_first_problem(group)}") from None
    except (InvalidMetadata, ValueError) as error:
        raise UploadRefusedError(f"Invalid metadata: {error}") from None


def _raw_metadata(
    single: dict[str, str], multi: dict[str, list[str]], project_urls: dict[str, str]
) -> RawMetadata:
    raw: dict[str, Any] = {
        key: value for key, value in single.items() if key not in {"pyversion", "filetype"}
    }
    if "keywords" in raw:
        raw["keywords"] = [k.strip() for k in raw["keywords"].split(",") if k.strip()]
    for key, values in multi.items():
        raw[MULTI_FIELDS[key]] = values
    if project_urls:
        raw["project_urls"] = project_urls
    return raw  # type: ignore[return-value]  # keys are RawMetadata's, checked by from_raw


def _first_problem(group: BaseExceptionGroup[Any]) -> str:
    problems = [e for e in group.exceptions if isinstance(e, Exception)]
    return "; ".join(str(p) for p in problems[:3])


def check_filename(filename: str, form: UploadForm, *, legacy_spelling: bool = False) -> None:
    """The file name follows the wheel or sdist rules and names the form's project and
    version: installers trust the name, so a mismatch would publish one version as another.

    With ``legacy_spelling`` (the operator's import) the project part need only normalise to
    the project (PEP 503) and the version equal the form's (PEP 440), as in the files older
    tools wrote; otherwise the project part must be the canonical spelling."""
    if not filename or len(filename) > MAX_FILENAME or "/" in filename or "\\" in filename:
        raise UploadRefusedError(f"Invalid file name '{filename[:100]}'.")
    if not filename.endswith(FILETYPE_SUFFIXES[form.filetype]):
        kind = "a wheel (.whl)" if form.filetype == File.PackageType.WHEEL else (
            "a source distribution (.tar.gz)"
        )
        raise UploadRefusedError(
            f"'{filename}' does not look like {kind}, the file type the upload says it is "
            f"({form.filetype})."
        )
    name, version = _parse_filename(filename, form.filetype)
    if name != canonicalize_name(form.name):
        raise UploadRefusedError(
            f"The file name '{filename}' is for project '{name}', not '{form.name}'."
        )
    if version != Version(form.version):
        raise UploadRefusedError(
            f"The file name '{filename}' is for version {version}, not {form.version}."
        )
    if not legacy_spelling:
        _check_name_spelling(filename, form)


def canonical_file_prefix(normalized_name: str) -> str:
    """The project part of a file name: the wheel convention, which PEP 625 sdists use too
    (every run of "-", "_", "." is one "_"; ``normalized_name`` is already lowercase)."""
    return normalized_name.replace("-", "_")


def _check_name_spelling(filename: str, form: UploadForm) -> None:
    """The file name spells the project the one canonical way (case aside), as every current
    build tool writes it (new uploads; the operator's import keeps older spellings).

    ``Sample.Pkg-1.0.tar.gz`` and ``sample_pkg-1.0.tar.gz`` are one release's file to every
    installer: a second spelling is a mistake or an attempt to add a second sdist (or wheel
    with the same tags), which ``relatch.index.upload.uniqueness`` refuses whatever the
    spelling. Case is
    left free: the names in use are compared without case (``Sample_Pkg-1.0.tar.gz`` is taken
    once ``sample_pkg-1.0.tar.gz`` is), and wheels from before the normalising builders
    (``Django-4.2-py3-none-any.whl``) stay importable.
    """
    prefix, version, rest = split_filename(filename, form.filetype)
    expected = canonical_file_prefix(form.normalized_name)
    if prefix.lower() != expected:
        raise UploadRefusedError(
            f"The file name '{filename}' spells the project '{prefix}'; name the file "
            f"'{expected}-{version}{rest}' (the project's name as wheels and PEP 625 sdists "
            "write it)."
        )


def split_filename(filename: str, filetype: str) -> tuple[str, str, str]:
    """A file name checked by ``check_filename`` as its project part, its version part, and
    the rest (a wheel's tags and ".whl", an sdist's suffix), as spelt."""
    if filetype == File.PackageType.WHEEL:
        prefix, version, rest = filename.split("-", 2)
        return prefix, version, "-" + rest
    suffix = next(s for s in FILETYPE_SUFFIXES[filetype] if filename.endswith(s))
    prefix, _, version = filename.removesuffix(suffix).rpartition("-")
    return prefix, version, suffix


def _parse_filename(filename: str, filetype: str) -> tuple[str, Version]:
    try:
        if filetype == File.PackageType.WHEEL:
            name, version, _build, _tags = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion) as error:
        raise UploadRefusedError(f"Invalid file name '{filename}': {error}") from None
    return str(name), version
