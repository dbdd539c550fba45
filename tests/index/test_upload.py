"""The upload API at /legacy/ as twine speaks it (issue 4 §3), through the Django client.

Every refusal is checked for what a twine user notices (the status and the message, which twine
prints from the reason phrase) and for what must not happen (no row, no stored file).
"""

import base64
import hashlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from django.test import Client
from django.utils import timezone

from relatch.accounts.models import User
from relatch.audit.models import EventKind, Factor, SecurityEvent
from relatch.index.models import APIToken, File, Project, Release, Role, UsedFilename
from relatch.index.tokens.services import create_token
from relatch.index.upload import publisher, services, views
from relatch.index.upload.storage import file_storage_path
from relatch.mfa.models import TotpDevice
from tests.index.dists import Dist, build_sdist, build_wheel
from tests.mfa.factor_rows import add_app

URL = "/legacy/"



def stored(files_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(files_dir)) for p in files_dir.rglob("*") if p.is_file())


def token_for(user: User, project: Project | None = None) -> str:
    """An API token of ``user`` (given a second factor first, as create_token requires)."""
    if not TotpDevice.objects.filter(user=user).exists():
        add_app(user)
    _row, text = create_token(request=None, user=user, name="ci", project=project,
                              expires_at=None)
    return text


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def post(client: Client, dist: Dist, token: str | None, *, auth: str | None = None,
         filename: str | None = None, content: bytes | None = None, **fields: Any) -> Any:
    """POST ``dist`` the way twine does; ``fields`` override (None drops) form fields."""
    data: dict[str, Any] = {**dist.fields, "sha256_digest": dist.sha256,
                            "blake2_256_digest": dist.blake2_256}
    for key, value in fields.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    data["content"] = SimpleUploadedFile(filename or dist.filename,
                                         dist.content if content is None else content)
    headers = {}
    if auth is not None or token is not None:
        headers["HTTP_AUTHORIZATION"] = auth or basic("__token__", str(token))
    return client.post(URL, data=data, **headers)


def refused_with(response: Any, status: int, fragment: str) -> None:
    body = response.content.decode()
    assert response.status_code == status, body
    assert fragment in body
    # twine prints the reason phrase: the message must be there too.
    assert fragment.replace("…", "...") in response.reason_phrase


@pytest.fixture
def alice(user: User) -> User:
    return user


@pytest.fixture
def token(alice: User) -> str:
    return token_for(alice)


def test_first_wheel_creates_project_release_file_and_stores_it(
    client: Client, alice: User, token: str, files_dir: Path
) -> None:
    """The first upload creates the project with the uploader as owner, the release with its
    metadata (project URLs, author email: the recovery desk's evidence), the file, and stores
    the file and its PEP 658 METADATA."""
    dist = build_wheel("sample-pkg", "1.0", project_urls={
        "Source": "https://git.example.org/sample", "Homepage": "https://sample.example.org"})
    before = timezone.now()
    response = post(client, dist, token)
    assert response.status_code == 200, response.content
    project = Project.objects.get()
    assert (project.name, project.normalized_name) == ("sample-pkg", "sample-pkg")
    assert project.last_changed_at >= before
    assert Role.objects.get(project=project).user == alice
    assert Role.objects.get(project=project).kind == Role.Kind.OWNER
    release = Release.objects.get(project=project)
    assert (release.version, release.canonical_version) == ("1.0", "1")
    assert release.summary == "A sample package"
    assert release.author_email == "alice@example.org"
    assert release.requires_python == ">=3.8"
    assert release.description_content_type == "text/markdown"
    assert release.description.startswith("# Sample")
    assert release.project_urls == {"Source": "https://git.example.org/sample",
                                    "Homepage": "https://sample.example.org"}
    assert release.extra_metadata["metadata_version"] == "2.1"
    row = File.objects.get()
    assert row.release == release and row.uploader == alice
    assert (row.filename, row.packagetype, row.size) == (
        dist.filename, "bdist_wheel", len(dist.content))
    assert (row.sha256_digest, row.blake2_256_digest) == (dist.sha256, dist.blake2_256)
    assert row.path == file_storage_path(dist.sha256, dist.filename)
    assert row.path.startswith(f"packages/{dist.sha256[:2]}/{dist.sha256[2:4]}/")
    assert (files_dir / row.path).read_bytes() == dist.content
    metadata = (files_dir / (row.path + ".metadata")).read_bytes()
    assert metadata == dist.metadata.encode()
    assert row.metadata_sha256_digest == hashlib.sha256(metadata).hexdigest()
    assert UsedFilename.objects.get().filename == dist.filename
    assert stored(files_dir) == sorted([row.path, row.path + ".metadata"])


def test_upload_is_recorded_on_the_account(client: Client, alice: User, token: str) -> None:
    """ASVS 16.3.1: the upload, the project's creation and the token's use are events with
    their factor (api_token)."""
    dist = build_wheel()
    assert post(client, dist, token).status_code == 200
    events = {e.kind: e for e in SecurityEvent.objects.filter(user=alice)}
    uploaded = events[EventKind.FILE_UPLOADED]
    assert uploaded.factor == Factor.API_TOKEN
    assert uploaded.details["filename"] == dist.filename
    assert uploaded.details["project"] == "sample-pkg"
    assert uploaded.details["version"] == "1.0"
    assert events[EventKind.PROJECT_CREATED].details["project"] == "sample-pkg"
    assert EventKind.API_TOKEN_USED in events
    assert APIToken.objects.get().last_used_at is not None


def test_sdist_and_wheel_share_one_release(client: Client, token: str, files_dir: Path) -> None:
    sdist, wheel = build_sdist(), build_wheel()
    assert post(client, sdist, token).status_code == 200
    assert post(client, wheel, token).status_code == 200
    release = Release.objects.get()
    assert sorted(release.files.values_list("packagetype", flat=True)) == ["bdist_wheel", "sdist"]
    sdist_row = File.objects.get(packagetype="sdist")
    assert sdist_row.metadata_sha256_digest == ""
    assert not (files_dir / (sdist_row.path + ".metadata")).exists()
    assert (files_dir / sdist_row.path).read_bytes() == sdist.content
    assert Project.objects.count() == 1 and Role.objects.count() == 1


def test_second_version_is_a_new_release(client: Client, token: str) -> None:
    assert post(client, build_wheel(version="1.0"), token).status_code == 200
    first_change = Project.objects.get().last_changed_at
    response = post(client, build_wheel(version="1.1", summary="Better"), token)
    assert response.status_code == 200
    assert sorted(Release.objects.values_list("version", flat=True)) == ["1.0", "1.1"]
    assert Release.objects.get(version="1.1").summary == "Better"
    assert Project.objects.get().last_changed_at > first_change


def test_a_maintainer_may_upload(client: Client, alice: User, make_user: Any) -> None:
    project = Project.objects.create(name="sample-pkg", normalized_name="sample-pkg")
    bob = make_user(username="bob")
    Role.objects.create(project=project, user=alice, kind=Role.Kind.OWNER)
    Role.objects.create(project=project, user=bob, kind=Role.Kind.MAINTAINER)
    assert post(client, build_wheel(), token_for(bob)).status_code == 200
    assert File.objects.get().uploader == bob
    assert Role.objects.filter(project=project).count() == 2  # no new owner role


def test_a_token_scoped_to_the_project_may_upload(client: Client, alice: User) -> None:
    project = Project.objects.create(name="sample-pkg", normalized_name="sample-pkg")
    Role.objects.create(project=project, user=alice, kind=Role.Kind.OWNER)
    assert post(client, build_wheel(), token_for(alice, project)).status_code == 200


def test_names_are_kept_as_given_and_found_normalised(client: Client, token: str) -> None:
    """twine sends a "safe" name (sample-pkg for Sample_Pkg): the same project either way."""
    assert post(client, build_wheel("Sample_Pkg", "1.0"), token).status_code == 200
    assert post(client, build_wheel("sample.pkg", "2.0"), token).status_code == 200
    project = Project.objects.get()
    assert (project.name, project.normalized_name) == ("Sample_Pkg", "sample-pkg")
    assert project.releases.count() == 2


def nothing_changed(files_dir: Path) -> None:
    assert not Project.objects.exists()
    assert not Release.objects.exists()
    assert not File.objects.exists()
    assert not UsedFilename.objects.exists()
    assert stored(files_dir) == []


def refusal_recorded(user: User, fragment: str) -> None:
    """The token was valid: its owner sees the refused attempt in their history."""
    event = SecurityEvent.objects.filter(user=user, kind=EventKind.UPLOAD_REFUSED).get()
    assert event.factor == Factor.API_TOKEN
    assert fragment in event.details["message"]


# (form field overrides, status, message fragment): a valid token, a bad upload.
FORM_REFUSALS: dict[str, tuple[dict[str, Any], int, str]] = {
    "wrong action": ({":action": "submit"}, 400, "Only ':action=file_upload'"),
    "invalid project name": ({"name": "bad name!"}, 400, "is not a valid project name"),
    "no name": ({"name": None}, 400, "The 'name' field is missing"),
    "version not PEP 440": ({"version": "1.0-banana!"}, 400, "is not a valid version"),
    "name not the file's": ({"name": "other-pkg"}, 400, "is for project 'sample-pkg', not"),
    "version not the file's": ({"version": "2.0"}, 400, "is for version 1.0, not 2.0"),
    "unknown file type": ({"filetype": "bdist_egg"}, 400, "File type 'bdist_egg' is not"),
    "file type not the file's": ({"filetype": "sdist"}, 400, "does not look like a source"),
    "wrong sha256": ({"sha256_digest": "0" * 64}, 400, "SHA-256 digest does not match"),
    "wrong blake2": ({"blake2_256_digest": "0" * 64}, 400, "BLAKE2b-256 digest does not"),
    "no digest": ({"sha256_digest": None, "blake2_256_digest": None}, 400, "has no digest"),
    "digest not hex": ({"sha256_digest": "xyz"}, 400, "not a hexadecimal 256-bit digest"),
    "no metadata version": ({"metadata_version": None}, 400, "'metadata_version' field is"),
    "unknown metadata version": ({"metadata_version": "9.9"}, 400,
                                 "Invalid metadata: '9.9' is not a valid metadata version"),
    "bad requires-python": ({"requires_python": ">=banana"}, 400, "Invalid metadata"),
    "field of a later metadata version": ({"metadata_version": "1.0"}, 400,
                                          "introduced in metadata version"),
    "bad project URL": ({"project_urls": ["no comma here"]}, 400, "Invalid project URL"),
    "overlong summary": ({"summary": "x" * 513}, 400, "'summary' field is too long"),
}


@pytest.mark.parametrize("case", FORM_REFUSALS, ids=list(FORM_REFUSALS))
def test_bad_uploads_are_refused_with_a_message(
    case: str, client: Client, alice: User, token: str, files_dir: Path
) -> None:
    overrides, status, fragment = FORM_REFUSALS[case]
    refused_with(post(client, build_wheel(), token, **overrides), status, fragment)
    nothing_changed(files_dir)
    refusal_recorded(alice, fragment)


# (file name, content, status, fragment): the file itself is wrong.
FILE_REFUSALS: dict[str, tuple[str, bytes | None, str]] = {
    "not a wheel name": ("sample.whl", None, "Invalid file name 'sample.whl'"),
    "not an sdist name": ("sample_pkg-1.0.tar.bz2", None, "does not look like a wheel"),
    "not a zip": ("sample_pkg-1.0-py3-none-any.whl", b"not a zip at all", "is not a valid wheel"),
    "empty": ("sample_pkg-1.0-py3-none-any.whl", b"", "is empty"),
}


@pytest.mark.parametrize("case", FILE_REFUSALS, ids=list(FILE_REFUSALS))
def test_bad_files_are_refused(
    case: str, client: Client, alice: User, token: str, files_dir: Path
) -> None:
    filename, content, fragment = FILE_REFUSALS[case]
    dist = build_wheel()
    if content is not None:  # digests of the bad bytes, so only the file's form is wrong
        dist = Dist(dist.filename, content, dist.metadata, dist.fields)
    refused_with(post(client, dist, token, filename=filename), 400, fragment)
    nothing_changed(files_dir)
    refusal_recorded(alice, fragment)


def test_a_wheel_whose_metadata_names_another_project_is_refused(
    client: Client, token: str, files_dir: Path
) -> None:
    """pip installs by the METADATA inside (PEP 658): it must say what the form says."""
    inner = build_wheel("sample-pkg", "1.1")
    dist = build_wheel("sample-pkg", "1.0")
    # A 1.0 file name over 1.1 contents: the dist-info directory does not match the name.
    refused_with(post(client, Dist(dist.filename, inner.content, "", dist.fields), token), 400,
                 "has no sample_pkg-1.0.dist-info/METADATA")
    nothing_changed(files_dir)


def test_an_sdist_that_is_not_an_archive_is_refused(
    client: Client, token: str, files_dir: Path
) -> None:
    sdist = build_sdist()
    bad = Dist(sdist.filename, b"random bytes", "", sdist.fields)
    refused_with(
        post(client, bad, token), 400, "This file is not a valid sdist: it is not a readable"
    )
    nothing_changed(files_dir)


def test_missing_file_is_refused(client: Client, token: str) -> None:
    dist = build_wheel()
    response = client.post(URL, data={**dist.fields, "sha256_digest": dist.sha256},
                           HTTP_AUTHORIZATION=basic("__token__", token))
    refused_with(response, 400, "The upload has no file")


def test_get_is_refused(client: Client) -> None:
    response = client.get(URL)
    assert response.status_code == 405 and response["Allow"] == "POST"


# --- who may upload -------------------------------------------------------------------------

def test_no_credentials_are_refused(client: Client, files_dir: Path) -> None:
    refused_with(post(client, build_wheel(), None), 403, "No API token")
    nothing_changed(files_dir)


def test_password_uploads_are_refused_with_what_to_do(
    client: Client, settings: Any, alice: User, files_dir: Path
) -> None:
    """A phished password must not publish code: only API tokens upload."""
    from tests.conftest import PASSWORD

    response = post(client, build_wheel(), None, auth=basic("alice", PASSWORD))
    refused_with(response, 403, "user name and password is not accepted")
    assert f"{settings.BASE_URL}/account/tokens/" in response.reason_phrase
    nothing_changed(files_dir)


@pytest.mark.parametrize("raw", ["relatch-unknownid1234.secret", "not-a-token", ""])
def test_invalid_tokens_are_refused(client: Client, raw: str, files_dir: Path) -> None:
    response = post(client, build_wheel(), raw)
    assert response.status_code == 403
    assert "token" in response.reason_phrase.lower()
    nothing_changed(files_dir)


def test_a_wrong_secret_is_refused(client: Client, token: str, files_dir: Path) -> None:
    refused_with(post(client, build_wheel(), token[:-3] + "AAA"), 403, "is not valid")
    nothing_changed(files_dir)


@pytest.mark.parametrize("state", ["revoked", "expired"])
def test_revoked_and_expired_tokens_are_refused(
    client: Client, alice: User, token: str, state: str, files_dir: Path
) -> None:
    now = timezone.now()
    if state == "revoked":
        APIToken.objects.update(revoked_at=now)
    else:
        APIToken.objects.update(expires_at=now - timedelta(seconds=1))
    refused_with(post(client, build_wheel(), token), 403, state)
    nothing_changed(files_dir)
    assert SecurityEvent.objects.filter(user=alice, kind=EventKind.API_TOKEN_REFUSED).exists()


def test_an_account_without_second_factor_cannot_upload(
    client: Client, alice: User, token: str, files_dir: Path
) -> None:
    """The factor was removed after the token was made: the token stops uploading."""
    TotpDevice.objects.filter(user=alice).delete()
    refused_with(post(client, build_wheel(), token), 403, "Uploading needs two-step sign-in")
    nothing_changed(files_dir)
    refusal_recorded(alice, "two-step sign-in")


def test_a_token_scoped_to_another_project_is_refused(
    client: Client, alice: User, files_dir: Path
) -> None:
    other = Project.objects.create(name="other", normalized_name="other")
    Role.objects.create(project=other, user=alice, kind=Role.Kind.OWNER)
    token = token_for(alice, other)
    refused_with(post(client, build_wheel(), token), 403, "limited to another project")
    assert not Release.objects.exists() and stored(files_dir) == []
    refusal_recorded(alice, "limited to another project")


@pytest.mark.parametrize("name", ["sample-pkg", "Sample.Pkg", "sample_pkg"])
def test_no_role_on_an_existing_project_is_refused(
    client: Client, alice: User, make_user: Any, name: str, files_dir: Path
) -> None:
    """Names that collide after PEP 503 normalisation are the same project: no takeover."""
    project = Project.objects.create(name="sample-pkg", normalized_name="sample-pkg")
    Role.objects.create(project=project, user=make_user(username="bob"), kind=Role.Kind.OWNER)
    response = post(client, build_wheel(name), token_for(alice))
    refused_with(response, 403, "You are not allowed to upload to project 'sample-pkg'")
    assert not Release.objects.exists() and stored(files_dir) == []
    assert Project.objects.count() == 1


# --- a file name is used once ------------------------------------------------------------

def test_other_bytes_under_a_used_name_are_refused(
    client: Client, alice: User, token: str, files_dir: Path
) -> None:
    """The same bytes again are a skipped upload (tests/index/test_upload_reuploads.py); other
    bytes under the name are refused, and the message says why."""
    dist = build_wheel()
    assert post(client, dist, token).status_code == 200
    before = stored(files_dir)
    other = build_wheel(module_source="VALUE = 43\n")
    assert other.filename == dist.filename and other.sha256 != dist.sha256
    response = post(client, other, token)
    refused_with(response, 400, f"File already exists: '{dist.filename}' is already in this "
                 f"index with other contents (sha256 {dist.sha256[:16]}")
    assert "upload a new version instead" in response.content.decode()
    assert File.objects.get().sha256_digest == dist.sha256 and stored(files_dir) == before
    refusal_recorded(alice, "other contents")


@pytest.mark.parametrize("same_bytes", [True, False], ids=["same bytes", "other bytes"])
def test_a_deleted_file_name_cannot_come_back(
    client: Client, token: str, files_dir: Path, same_bytes: bool
) -> None:
    """Installers may have cached the old bytes under that name, and a file is deleted for a
    reason: as on PyPI, the name is not reused even for the very same bytes."""
    dist = build_wheel()
    assert post(client, dist, token).status_code == 200
    Release.objects.all().delete()
    again = dist if same_bytes else build_wheel(module_source="VALUE = 43\n")
    refused_with(post(client, again, token), 400,
                 f"File already exists: '{dist.filename}' was uploaded before and has been "
                 "deleted")
    assert not File.objects.exists()
    assert not SecurityEvent.objects.filter(kind=EventKind.UPLOAD_SKIPPED).exists()


def test_file_names_are_compared_without_case(client: Client, token: str) -> None:
    UsedFilename.objects.create(filename="SAMPLE_PKG-1.0-py3-none-any.whl",
                                project_name="sample-pkg")
    refused_with(post(client, build_wheel(), token), 400, "File already exists")


# --- size ---------------------------------------------------------------------------------

def test_a_file_over_the_limit_is_refused_while_streaming(
    client: Client, settings: Any, alice: User, token: str, files_dir: Path
) -> None:
    dist = build_wheel(module_source="VALUE = '" + "x" * 5000 + "'\n")
    settings.MAX_UPLOAD_SIZE = 1024
    refused_with(post(client, dist, token), 413, "File too large: the limit is 0 MB (1024 bytes)")
    nothing_changed(files_dir)
    refusal_recorded(alice, "File too large")


def test_a_body_over_the_limit_is_refused_before_reading(
    client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch, token: str, files_dir: Path
) -> None:
    """Content-Length alone says it is too big: nothing is parsed or spilled to disk."""
    settings.MAX_UPLOAD_SIZE = 1024
    monkeypatch.setattr(views, "FORM_ALLOWANCE", 0)
    parsed: list[bool] = []
    monkeypatch.setattr(views.SizeLimitHandler, "new_file", lambda *a, **k: parsed.append(True))
    dist = build_wheel(module_source="VALUE = '" + "x" * 5000 + "'\n")
    refused_with(post(client, dist, token), 413, "File too large")
    assert parsed == []
    nothing_changed(files_dir)


# --- storage and the database fail together ------------------------------------------------

def _service_call(alice: User, dist: Dist) -> Callable[[], Any]:
    fields = QueryDict(mutable=True)
    for key, value in {**dist.fields, "sha256_digest": dist.sha256}.items():
        fields.setlist(key, value if isinstance(value, list) else [value])
    token = APIToken.objects.get(user=alice)
    return lambda: services.store_upload(
        request=None, token=token, fields=fields,
        upload=SimpleUploadedFile(dist.filename, dist.content),
    )


def test_a_database_failure_leaves_no_stored_file(
    alice: User, token: str, monkeypatch: pytest.MonkeyPatch, files_dir: Path
) -> None:
    def broken(**_: Any) -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr(publisher, "note_token_use", broken)  # runs after the file is stored
    with pytest.raises(RuntimeError):
        _service_call(alice, build_wheel())()
    nothing_changed(files_dir)


def test_a_storage_failure_writes_no_row(
    alice: User, token: str, monkeypatch: pytest.MonkeyPatch, files_dir: Path
) -> None:
    def full_disk(path: str, upload: Any) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(services.storage, "save_file", full_disk)
    with pytest.raises(services.UploadRefusedError) as refused:
        _service_call(alice, build_wheel())()
    assert refused.value.status == 503
    nothing_changed(files_dir)
