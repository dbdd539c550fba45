"""One sdist per release, and one wheel per release for each set of tags and build tag
(issue 20 §6), whatever the file names spell.

To every installer ``Sample.Pkg-1.0.tar.gz`` and ``sample_pkg-1.0.tar.gz`` are the same
release's sdist, and ``sample_pkg-1.0.0-py3-none-any.whl`` the same wheel as
``sample_pkg-1.0-py3-none-any.whl``: a second one would let someone who may upload add other
bytes that installers pick instead of (or beside) the reviewed ones. Uploads through /legacy/
must spell names canonically (``validation``), but the operator's import keeps the legacy
spellings older tools wrote (``python-dateutil-2.8.2.tar.gz``), so the rule that closes the
attack for both is this one, on what the names mean. PyPI's rule for sdists ("Only one sdist
may be uploaded per release"); for wheels the same file name means the same (tags, build) to
installers, and two wheels that differ only in their build tag stay legal (the wheel spec's
way to replace a broken build).

A deleted file's place is not taken either: its name is reserved for ever (``reuploads``), and
another spelling of it must not bring other bytes back in its place.
"""

from django.db.models import QuerySet
from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from relatch.index.models import File, Release, UsedFilename
from relatch.index.upload.validation import FILETYPE_SUFFIXES, UploadRefusedError

# What makes two files of a release the same file to installers: an sdist's version; a wheel's
# version, build tag and set of tags.
type _Key = tuple[str, Version, tuple[()] | tuple[int, str], frozenset[Tag]]


def refuse_a_second_of_its_kind(*, release: Release, filename: str, filetype: str,
                                stored: File) -> None:
    """Refuse (400) ``stored``, just written, if ``release`` holds (or held) a file that is the
    same to installers: an sdist when it is an sdist, a wheel with the same tags and build
    tag when it is a wheel.

    Call in the upload's transaction, after its File row is written: the release's row is
    locked here, so of parallel uploads of two spellings the second waits for the first's
    commit and then sees its file (on SQLite every writing transaction runs alone anyway).
    """
    list(Release.objects.select_for_update(no_key=True).filter(pk=release.pk).values_list("pk"))
    key = _key(filename, filetype)
    if key is None:
        return
    present = release.files.exclude(pk=stored.pk).values_list("filename", flat=True)
    if (same := _first_same(key, present)) is not None:
        raise UploadRefusedError(_message(release, filename, same, deleted=False))
    if (same := _first_same(key, _deleted_names(release))) is not None:
        raise UploadRefusedError(_message(release, filename, same, deleted=True))


def _deleted_names(release: Release) -> QuerySet[UsedFilename, str]:
    """The names used for the project's files that are gone (few: deletions are rare)."""
    project = release.project
    held = File.objects.filter(release__project=project).values("filename")
    return (
        UsedFilename.objects.filter(project_name=project.normalized_name)
        .exclude(filename__in=held).values_list("filename", flat=True)
    )


def _first_same(key: _Key, names: QuerySet[File, str] | QuerySet[UsedFilename, str]) -> str | None:
    suffixes = FILETYPE_SUFFIXES[key[0]]
    return next(
        (name for name in names.iterator()
         if name.lower().endswith(suffixes) and _key(name, key[0]) == key),
        None,
    )


def _key(filename: str, filetype: str) -> _Key | None:
    """What the name means to installers; None for a name they cannot read either."""
    try:
        if filetype == File.PackageType.WHEEL:
            _name, version, build, tags = parse_wheel_filename(filename)
            return (filetype, version, build, tags)
        _name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return (filetype, version, (), frozenset())


def _message(release: Release, filename: str, other: str, *, deleted: bool) -> str:
    held = "had" if deleted else "already has"
    if filename.endswith(FILETYPE_SUFFIXES[File.PackageType.WHEEL]):
        what = "a wheel with the same tags and build tag"
        fix = ("A release holds one wheel per set of tags: to replace a build, give the new "
               "wheel a higher build tag, or upload a new version.")
    else:
        what = "a source distribution"
        fix = "Only one sdist may be uploaded per release: upload a new version instead."
    gone = ", since deleted" if deleted else ""
    return (f"Release {release.version} of {release.project.name} {held} {what}, "
            f"'{other}'{gone}: '{filename}' would be a second one. {fix}")
