"""Hostile input against the index's parsers (issue 7 §3), by hypothesis: project names,
versions, upload form fields and distribution file names.

The reference is packaging, which pip and every installer use: Relatch must accept what it
accepts and refuse what it refuses, and refuse only with its documented error (a 400 with a
message for an upload, never a 500). Short by default; RELATCH_FULL_CHECKS=1 for the long run.
"""


from django.http import QueryDict
from hypothesis import example, given
from hypothesis import strategies as st
from packaging.utils import (
    InvalidName,
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from relatch.index.names import MAX_PROJECT_NAME, is_valid_project_name, normalize_project_name
from relatch.index.upload.validation import (
    MULTI_FIELDS,
    SINGLE_FIELDS,
    UploadForm,
    UploadRefusedError,
    check_filename,
    check_form,
)
from tests.full_checks import property_settings

PROPERTIES = property_settings(short=200)

# Characters that trip name checks: Unicode letters that case-fold onto ASCII (long s, dotless
# i, Kelvin sign, dotted I), other scripts' digits, full-width letters, separators, spaces.
TRICKY = "\u017f\u0131\u212a\u0130\u00fc\u0663\uff21\u00b2._- \t\n\x00/"
name_chars = st.sampled_from("aAzZ09._-") | st.sampled_from(TRICKY) | st.characters()
names = st.text(name_chars, max_size=24)
valid_names = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,30}[A-Za-z0-9])?", fullmatch=True)
versions = st.from_regex(
    r"(v?)([0-9]!)?[0-9]{1,3}(\.[0-9]{1,3}){0,3}((a|b|rc|alpha|c|pre)[0-9]{0,2})?"
    r"(\.?post[0-9]{0,2})?(\.?dev[0-9]{0,2})?(\+[a-z0-9]{1,5}(\.[a-z0-9]{1,3})?)?",
    fullmatch=True,
)


def packaging_accepts_name(name: str) -> bool:
    try:
        canonicalize_name(name, validate=True)
    except InvalidName:
        return False
    return True


@PROPERTIES
@given(names)
@example("\u017fetuptools")  # long s: folds to "s" under re.IGNORECASE without re.ASCII
@example("\u212aeras")  # Kelvin sign: folds to "k"
@example("\u0131nfo")  # dotless i
def test_a_name_is_valid_exactly_when_packaging_says_so(name):
    """PEP 508 as packaging reads it, plus Relatch's length limit."""
    expected = packaging_accepts_name(name) and len(name) <= MAX_PROJECT_NAME
    assert is_valid_project_name(name) is expected


@PROPERTIES
@given(valid_names)
def test_a_valid_name_normalises_as_packaging_does(name):
    normalized = normalize_project_name(name)
    assert normalized == canonicalize_name(name)
    assert is_valid_project_name(normalized)


@PROPERTIES
@given(names)
def test_normalising_never_fails_and_is_idempotent(name):
    """Any URL path segment is normalised for a lookup: no text makes it raise."""
    once = normalize_project_name(name)
    assert normalize_project_name(once) == once


# -- the upload form -------------------------------------------------------------------------


def form_fields(**values: str | list[str]) -> QueryDict:
    fields = QueryDict(mutable=True)
    for key, value in values.items():
        fields.setlist(key, value if isinstance(value, list) else [value])
    return fields


def upload_form(name: str, version: str, filetype: str = "bdist_wheel") -> UploadForm:
    return check_form(form_fields(metadata_version="2.4", name=name, version=version,
                                  filetype=filetype, pyversion="py3"))


@PROPERTIES
@given(version=st.text(max_size=30) | versions)
def test_a_version_is_accepted_exactly_when_packaging_parses_it(version):
    try:
        Version(version)
        parses = True
    except InvalidVersion:
        parses = False
    try:
        form = upload_form("demo", version)
    except UploadRefusedError:
        assert not parses
        return
    assert parses
    assert Version(form.version) == Version(version.strip())


field_names = st.sampled_from([*SINGLE_FIELDS, *MULTI_FIELDS, "project_urls", ":action"])
field_values = st.lists(st.text(max_size=40) | versions | valid_names, min_size=1, max_size=3)


@PROPERTIES
@given(fields=st.dictionaries(field_names, field_values, max_size=8),
       name=valid_names, version=versions)
def test_any_form_fields_are_accepted_or_refused_with_a_message(fields, name, version):
    """Core metadata goes through packaging's validation: whatever twine (or an attacker)
    sends, the answer is a checked form or an UploadRefusedError, never another exception."""
    base = {"metadata_version": ["2.1"], "name": [name], "version": [version],
            "filetype": ["sdist"]}
    try:
        form = check_form(form_fields(**{**base, **fields}))
    except UploadRefusedError as refusal:
        assert refusal.message and refusal.status == 400
        return
    assert is_valid_project_name(form.name)
    Version(form.version)


# -- distribution file names -----------------------------------------------------------------


def packaging_reads(filename: str, filetype: str) -> tuple[str, Version] | None:
    try:
        if filetype == "bdist_wheel":
            name, version, _build, _tags = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return str(name), version


filename_chars = st.sampled_from("demo-1.0_py3noneany.whltargz") | st.characters()
filenames = st.text(filename_chars, max_size=60) | st.builds(
    "{}-{}{}".format, valid_names, versions,
    st.sampled_from(["-py3-none-any.whl", ".tar.gz", ".zip", "-1-py3-none-any.whl", ".whl",
                     "-py3-none-any.whl.whl", ".tar.gz/x"]),
)


@PROPERTIES
@given(filename=filenames, filetype=st.sampled_from(["bdist_wheel", "sdist"]))
@example(filename="demo-1.0-py3-none-any.whl", filetype="bdist_wheel")
@example(filename="demo-1.0.tar.gz", filetype="sdist")
def test_a_file_name_is_accepted_only_when_packaging_reads_it_as_the_forms(filename, filetype):
    """Installers trust the file name: one Relatch accepts must parse, with packaging, as the
    form's project and version; anything else is an UploadRefusedError, never a crash."""
    form = upload_form("demo", "1.0", filetype)
    try:
        check_filename(filename, form)
    except UploadRefusedError as refusal:
        assert refusal.message
        return
    read = packaging_reads(filename, filetype)
    assert read is not None
    assert read == ("demo", Version("1.0"))


@PROPERTIES
@given(name=valid_names, version=versions,
       suffix=st.sampled_from(["-py3-none-any.whl", ".tar.gz"]))
def test_the_file_name_twine_builds_is_accepted(name, version, suffix):
    """The name a build backend writes (normalised project, the version as given)."""
    filetype = "bdist_wheel" if suffix.endswith(".whl") else "sdist"
    stem = canonicalize_name(name).replace("-", "_")
    filename = f"{stem}-{version}{suffix}"
    check_filename(filename, upload_form(name, version, filetype))
