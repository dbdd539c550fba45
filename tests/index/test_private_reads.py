"""Private reads (issue 20): RELATCH_READ_ACCESS, private projects, read tokens over HTTP
Basic, 401 with a Basic challenge (never a redirect), 404 for readers without rights, and no
reader's answer kept for anyone else."""

import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client, TestCase
from django.utils import timezone

from relatch.accounts.models import User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.changes import mark_project_changed, mark_project_list_changed
from relatch.index.manage.services import ManageError
from relatch.index.manage.visibility import set_visibility
from relatch.index.models import APIToken, File, IndexState, Project, Role
from relatch.index.simple.access import CHALLENGE
from relatch.index.simple.response_cache import ResponseCache, ResponseStore, is_keepable
from relatch.wsgi import application
from tests.conftest import PASSWORD, CommittingClient, sign_in
from tests.index.dists import build_wheel
from tests.index.read_tokens import basic, make_token, server_read_token, token_header
from tests.index.simple_rows import publish
from tests.index.test_install import UV
from tests.index.test_install import _isolated_env as isolated_env
from tests.index.test_install import _load as load_sample_pkg
from tests.index.test_install import _value as installed_value
from tests.index.test_install import _venv as make_venv
from tests.index.wsgi_calls import Counted, call_app
from tests.serving import running_server
from tests.test_settings import computed, settings_for

pytestmark = pytest.mark.django_db
JSON = "application/vnd.pypi.simple.v1+json"
PUBLIC_PAGE = "/simple/sample-pkg/"
SECRET_PAGE = "/simple/secret-pkg/"


def make_private(name: str, owner: User) -> Project:
    """``name`` 1.0 published, private, owned by ``owner``."""
    publish(build_wheel(name, "1.0"))
    project = Project.objects.get(normalized_name=name)
    Role.objects.create(project=project, user=owner, kind=Role.Kind.OWNER)
    Project.objects.filter(pk=project.pk).update(private=True)
    mark_project_changed(project_id=project.pk)
    mark_project_list_changed()
    return Project.objects.get(pk=project.pk)


@pytest.fixture
def secret(owner: User) -> Project:
    """alice owns sample-pkg (public) and secret-pkg (private)."""
    return make_private("secret-pkg", owner)


def secret_paths() -> list[str]:
    file = File.objects.get(release__project__normalized_name="secret-pkg")
    return [SECRET_PAGE, f"/files/{file.path}", f"/files/{file.path}.metadata",
            "/pypi/secret-pkg/json", "/pypi/secret-pkg/1.0/json"]


def public_paths() -> list[str]:
    file = File.objects.filter(release__project__normalized_name="sample-pkg").first()
    assert file is not None
    return ["/simple/", PUBLIC_PAGE, f"/files/{file.path}", f"/files/{file.path}.metadata",
            "/pypi/sample-pkg/json", "/pypi/sample-pkg/1.0/json"]


def get(client: Any, path: str, authorization: str | None = None) -> Any:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get(path, headers=headers)
    # One name for the body, streamed (/simple/) or not.
    response.body = (b"".join(response.streaming_content) if response.streaming
                     else response.content)
    return response


def assert_challenged(response: Any, says: bytes = b"token") -> None:
    assert response.status_code == 401, (response.status_code, response.body)
    assert response["WWW-Authenticate"] == CHALLENGE
    assert "Location" not in response  # never a redirect to a sign-in page
    if response.request["PATH_INFO"].startswith("/pypi/"):  # PyPI's JSON error body
        assert response["Content-Type"] == "application/json"
        assert says.decode() in response.json()["message"]
    else:
        assert response["Content-Type"].startswith("text/plain")
        assert says in response.body
    assert b"secret-pkg" not in response.body
    assert response["Cache-Control"] == "no-store"


def assert_private(response: Any) -> None:
    assert "private" in response["Cache-Control"]
    assert "public" not in response["Cache-Control"]
    assert {"Authorization", "Cookie"} <= {v.strip() for v in response["Vary"].split(",")}


@pytest.mark.own_database
@pytest.mark.parametrize("value", ["private", "Authenticated", "", "public,authenticated"])
def test_an_unknown_read_access_stops_the_start(tmp_path: Path, value: str) -> None:
    done = settings_for(tmp_path, {"RELATCH_READ_ACCESS": value}, "READ_ACCESS")
    assert done.returncode != 0
    assert "RELATCH_READ_ACCESS must be public or authenticated" in done.stderr


def test_read_access_is_public_unless_told(tmp_path: Path) -> None:
    assert computed(tmp_path, {}, "READ_ACCESS") == {"READ_ACCESS": "public"}
    told = computed(tmp_path, {"RELATCH_READ_ACCESS": "authenticated"}, "READ_ACCESS")
    assert told == {"READ_ACCESS": "authenticated"}


# --- public mode (the default) --------------------------------------------------------------


def test_public_mode_serves_public_projects_to_anyone_and_cacheably(client: Any, secret: Project
                                                                     ) -> None:
    for path in public_paths():
        response = get(client, path)
        assert response.status_code == 200, path
        assert "public" in response["Cache-Control"], path
    listed = get(client, "/simple/").body
    assert b"sample-pkg" in listed
    assert b"secret-pkg" not in listed  # a private name is listed to its people only


def test_public_mode_challenges_anonymous_requests_for_a_private_project(
    client: Any, secret: Project
) -> None:
    for path in secret_paths():
        assert_challenged(get(client, path), says=b"needs a read token")


def test_a_private_project_is_read_with_its_owners_read_token(client: Any, secret: Project,
                                                                owner: User) -> None:
    header = token_header(make_token(owner))
    for path in secret_paths():
        response = get(client, path, header)
        assert response.status_code == 200, path
        assert_private(response)
    assert b"secret-pkg" in get(client, "/simple/", header).body


def test_another_accounts_reader_gets_404_for_a_private_project(
    client: Any, secret: Project, make_user: Any
) -> None:
    header = token_header(make_token(make_user(username="bob")))
    for path in secret_paths():
        response = get(client, path, header)
        assert response.status_code == 404, path
        assert b"secret-pkg" not in response.body
        if path.startswith("/pypi/"):
            assert response.json() == {"message": "Not Found"}  # as for a missing name
            assert_private(response)
    assert get(client, PUBLIC_PAGE, header).status_code == 200
    assert b"secret-pkg" not in get(client, "/simple/", header).body


def test_a_token_limited_to_one_project_reads_public_ones_in_public_mode(
    client: Any, secret: Project, owner: User
) -> None:
    other = make_private("other-secret", owner)
    header = token_header(make_token(owner, project=other))
    assert get(client, PUBLIC_PAGE, header).status_code == 200
    assert get(client, "/simple/other-secret/", header).status_code == 200
    assert get(client, SECRET_PAGE, header).status_code == 404
    listed = get(client, "/simple/", header).body
    assert b"other-secret" in listed and b"sample-pkg" in listed
    assert b"secret-pkg" not in listed.replace(b"other-secret", b"")


def test_a_signed_in_browser_reads_a_private_project(client: CommittingClient, secret: Project,
                                                      owner: User) -> None:
    sign_in(client, owner)
    for path in secret_paths():
        response = get(client, path)
        assert response.status_code == 200, path
        assert_private(response)


def test_a_removed_role_stops_reading_at_once(client: Any, secret: Project, owner: User) -> None:
    header = token_header(make_token(owner))
    assert get(client, SECRET_PAGE, header).status_code == 200
    Role.objects.filter(project=secret, user=owner).delete()
    assert get(client, SECRET_PAGE, header).status_code == 404


# --- authenticated mode ---------------------------------------------------------------------


@pytest.fixture
def authenticated(settings: Any) -> None:
    settings.READ_ACCESS = "authenticated"


@pytest.mark.usefixtures("authenticated")
def test_authenticated_mode_challenges_every_anonymous_request(client: Any, secret: Project
                                                               ) -> None:
    for path in [*public_paths(), *secret_paths(), "/simple/no-such-project/",
                 "/pypi/no-such-project/json", "/files/packages/nothing.whl"]:
        assert_challenged(get(client, path))


def _deny_cases() -> list[Any]:
    """(name, how to make the Authorization header, the status it gets) for PUBLIC_PAGE."""
    past = timezone.now() - timedelta(days=1)
    return [
        pytest.param(lambda alice, bob, secret: token_header(
            "relatch-aaaaaaaaaaaaaaaa." + "A" * 43), 401, id="unknown-token"),
        pytest.param(lambda alice, bob, secret: token_header(make_token(alice)[:-1] + "x"),
                     401, id="wrong-secret"),
        pytest.param(lambda alice, bob, secret: token_header("not a token"), 401,
                     id="malformed"),
        pytest.param(lambda alice, bob, secret: token_header(make_token(alice, revoked_at=past)),
                     401, id="revoked"),
        pytest.param(lambda alice, bob, secret: token_header(make_token(alice, expires_at=past)),
                     401, id="expired"),
        pytest.param(lambda alice, bob, secret: token_header(
            make_token(alice, purpose=APIToken.Purpose.UPLOAD)), 401, id="upload-token"),
        pytest.param(lambda alice, bob, secret: token_header(
            make_token(alice, purpose=APIToken.Purpose.STAFF)), 401, id="staff-token"),
        pytest.param(lambda alice, bob, secret: basic("alice", PASSWORD), 401,
                     id="password-instead-of-token"),
        pytest.param(lambda alice, bob, secret: basic("alice", make_token(alice)), 401,
                     id="token-under-another-user-name"),
        pytest.param(lambda alice, bob, secret: "Bearer " + make_token(alice), 401,
                     id="bearer-scheme"),
        pytest.param(lambda alice, bob, secret: "Basic %%%", 401, id="bad-base64"),
        pytest.param(lambda alice, bob, secret: token_header(make_token(alice, project=secret)),
                     404, id="limited-to-another-project"),
    ]


@pytest.mark.usefixtures("authenticated")
@pytest.mark.parametrize(("header", "status"), _deny_cases())
def test_authenticated_mode_refuses(client: Any, secret: Project, owner: User, make_user: Any,
                                    header: Any, status: int) -> None:
    bob = make_user(username="bob")
    response = get(client, PUBLIC_PAGE, header(owner, bob, secret))
    assert response.status_code == status
    if status == 401:
        assert_challenged(response)
    else:
        assert b"sample-pkg" not in response.body


@pytest.mark.usefixtures("authenticated")
def test_a_refused_known_token_is_recorded_on_its_owner(client: Any, owner: User) -> None:
    token = make_token(owner, revoked_at=timezone.now())
    response = get(client, PUBLIC_PAGE, token_header(token))
    assert response.status_code == 401
    assert b"revoked" in response.body
    event = SecurityEvent.objects.get(user=owner, kind=EventKind.API_TOKEN_REFUSED)
    assert event.details["reason"] == "revoked"


@pytest.mark.usefixtures("authenticated")
def test_a_disabled_accounts_token_does_not_read(client: Any, owner: User) -> None:
    token = make_token(owner)
    User.objects.filter(pk=owner.pk).update(is_active=False)
    assert_challenged(get(client, PUBLIC_PAGE, token_header(token)))


@pytest.mark.usefixtures("authenticated")
def test_authenticated_mode_any_account_reads_public_projects_only_role_holders_private(
    client: Any, secret: Project, make_user: Any, owner: User
) -> None:
    bob = token_header(make_token(make_user(username="bob")))
    for path in public_paths():
        response = get(client, path, bob)
        assert response.status_code == 200, path
        assert_private(response)  # files too: no shared proxy keeps what needed a reader
    for path in secret_paths():
        assert get(client, path, bob).status_code == 404, path
    alice = token_header(make_token(owner))
    assert all(get(client, path, alice).status_code == 200 for path in secret_paths())


@pytest.mark.usefixtures("authenticated")
def test_authenticated_mode_a_limited_token_lists_and_reads_only_its_project(
    client: Any, secret: Project, owner: User
) -> None:
    header = token_header(make_token(owner, project=secret))
    listed = get(client, "/simple/", header).body
    assert b"secret-pkg" in listed and b"sample-pkg" not in listed
    assert get(client, SECRET_PAGE, header).status_code == 200


@pytest.mark.usefixtures("authenticated")
def test_authenticated_mode_a_signed_in_browser_reads(client: CommittingClient, owner: User,
                                                       secret: Project) -> None:
    sign_in(client, owner)
    assert get(client, PUBLIC_PAGE).status_code == 200
    assert get(client, SECRET_PAGE).status_code == 200


@pytest.mark.usefixtures("authenticated")
def test_a_quarantined_project_is_listed_to_no_reader(client: Any, owner: User,
                                                      secret: Project) -> None:
    Project.objects.filter(pk=secret.pk).update(status=Project.Status.QUARANTINED)
    mark_project_list_changed()
    listed = get(client, "/simple/", token_header(make_token(owner))).body
    assert b"sample-pkg" in listed and b"secret-pkg" not in listed


def test_a_read_tokens_use_is_noted_once_in_a_while(client: Any, owner: User) -> None:
    token = make_token(owner)
    for _ in range(3):
        assert get(client, PUBLIC_PAGE, token_header(token)).status_code == 200
    row = APIToken.objects.get(purpose=APIToken.Purpose.READ)
    assert row.last_used_at is not None
    assert SecurityEvent.objects.filter(user=owner, kind=EventKind.API_TOKEN_USED).count() == 1


def test_a_read_token_does_not_upload(client: Any, owner: User) -> None:
    token = make_token(owner)
    dist = build_wheel(version="9.0")
    response = client.post("/legacy/", {
        ":action": "file_upload", "protocol_version": "1", "name": "sample-pkg",
        "version": "9.0", "filetype": "bdist_wheel", "pyversion": "py3",
        "metadata_version": "2.1", "sha256_digest": dist.sha256,
        "content": _upload_file(dist),
    }, headers={"Authorization": token_header(token)})
    assert response.status_code == 403
    assert not File.objects.filter(filename=dist.filename).exists()


def _upload_file(dist: Any) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(dist.filename, dist.content)


# --- making a project private or public -----------------------------------------------------


def _versions() -> tuple[int, int]:
    return Project.objects.get(normalized_name="sample-pkg").generation, IndexState.objects.get(
        pk=IndexState.ROW_ID).generation


def test_an_owner_makes_a_project_private_and_public_again(owner: User, mail: Any) -> None:
    project = Project.objects.get(normalized_name="sample-pkg")
    before = _versions()
    with TestCase.captureOnCommitCallbacks(execute=True):
        set_visibility(request=None, owner=owner, project=project, private=True)
    assert Project.objects.get(pk=project.pk).private
    after = _versions()
    assert after[0] > before[0] and after[1] > before[1]  # pages and list change
    event = SecurityEvent.objects.get(kind=EventKind.PROJECT_VISIBILITY_CHANGED)
    assert event.user == owner and event.details == {"project": "sample-pkg", "private": True}
    with pytest.raises(ManageError, match="already private"):
        set_visibility(request=None, owner=owner, project=project, private=True)
    set_visibility(request=None, owner=owner, project=project, private=False)
    assert not Project.objects.get(pk=project.pk).private


def test_a_maintainer_cannot_change_visibility(owner: User, make_user: Any) -> None:
    project = Project.objects.get(normalized_name="sample-pkg")
    maria = make_user(username="maria")
    Role.objects.create(project=project, user=maria, kind=Role.Kind.MAINTAINER)
    with pytest.raises(ManageError) as refused:
        set_visibility(request=None, owner=maria, project=project, private=True)
    assert refused.value.status == 403
    assert not Project.objects.get(pk=project.pk).private
    assert not SecurityEvent.objects.filter(kind=EventKind.PROJECT_VISIBILITY_CHANGED).exists()


def test_the_manage_page_makes_a_project_private(as_alice: CommittingClient, owner: User,
                                                  mail: Any) -> None:
    page = as_alice.get("/manage/project/sample-pkg/")
    assert page.status_code == 200
    assert "Make sample-pkg private" in page.text
    response = as_alice.post("/manage/project/sample-pkg/visibility/",
                             {"visibility": "private"})
    assert response.status_code == 302
    assert Project.objects.get(normalized_name="sample-pkg").private
    assert "sample-pkg is now private" in str(mail.last("alice@example.org")["Subject"])
    assert_challenged(get(CommittingClient(), PUBLIC_PAGE))
    bad = as_alice.post("/manage/project/sample-pkg/visibility/", {"visibility": "hidden"})
    assert bad.status_code == 400


# --- read tokens on the tokens page ---------------------------------------------------------


def test_a_read_token_is_made_on_the_tokens_page_and_listed_as_such(
    as_alice: CommittingClient, owner: User, secret: Project
) -> None:
    from tests.index.test_tokens import post_create, shown_token

    response = post_create(as_alice, purpose="read", scope=str(secret.pk))
    assert response.status_code == 200
    token = shown_token(response)
    assert "login __token__" in response.text  # netrc lines for pip, not twine's
    row = APIToken.objects.get()
    assert (row.purpose, row.project) == (APIToken.Purpose.READ, secret)
    listing = as_alice.get("/account/tokens/").text
    assert "Read (install)" in listing
    assert get(CommittingClient(), SECRET_PAGE, token_header(token)).status_code == 200


# --- the whole-response cache (relatch.index.simple.response_cache) -------------------------
# Through the WSGI stack gunicorn runs; rows are committed (the handler closes connections).


def _secret_file_path() -> str:
    return "/files/" + File.objects.get(release__project__normalized_name="secret-pkg").path


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("which", ["page", "file"])
def test_a_response_kept_while_public_is_not_served_once_the_project_is_private(
    owner: User, app: ResponseCache, django_part: Counted, store: ResponseStore, which: str
) -> None:
    file = File.objects.filter(release__project__normalized_name="sample-pkg").first()
    assert file is not None
    path = PUBLIC_PAGE if which == "page" else f"/files/{file.path}"
    first = call_app(app, path)
    assert call_app(app, path) == first and django_part.calls == 1  # kept
    project = Project.objects.get(normalized_name="sample-pkg")
    set_visibility(request=None, owner=owner, project=project, private=True)
    status, headers, _ = call_app(app, path)
    assert status == 401
    assert headers["www-authenticate"] == [CHALLENGE]
    assert django_part.calls == 2
    assert call_app(app, path)[0] == 401  # and a 401 is never kept
    assert django_part.calls == 3


@pytest.mark.django_db(transaction=True)
def test_a_readers_answer_is_never_kept_for_another_requester(
    owner: User, app: ResponseCache, django_part: Counted, store: ResponseStore
) -> None:
    """The attack: alice's token fetches her private page and file; an anonymous client (or
    bob) then asks for the same URLs and must not get her bytes from the cache."""
    make_private("secret-pkg", owner)
    alice = token_header(make_token(owner))
    bob_user = User.objects.create(username="bob")
    bob = token_header(make_token(bob_user))
    for path in (SECRET_PAGE, _secret_file_path()):
        status, headers, _ = call_app(app, path, authorization=alice)
        assert status == 200
        assert "private" in headers["cache-control"][0]
        assert len(store) == 0
        assert call_app(app, path)[0] == 401
        assert call_app(app, path, authorization=bob)[0] == 404


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("header", ["authorization", "cookie"])
def test_a_kept_public_answer_is_not_sent_to_a_request_with_credentials(
    owner: User, app: ResponseCache, django_part: Counted, header: str
) -> None:
    call_app(app, PUBLIC_PAGE)
    call_app(app, PUBLIC_PAGE)
    assert django_part.calls == 1
    value = token_header("relatch-aaaaaaaaaaaaaaaa." + "A" * 43) if header == "authorization" \
        else "relatch-session=forged"
    status, _, _ = call_app(app, PUBLIC_PAGE, **{header: value})
    assert django_part.calls == 2  # Django judged it
    assert status == (401 if header == "authorization" else 200)


@pytest.mark.django_db(transaction=True)
def test_authenticated_mode_keeps_nothing(settings: Any, owner: User, app: ResponseCache,
                                          django_part: Counted, store: ResponseStore) -> None:
    settings.READ_ACCESS = "authenticated"
    header = token_header(make_token(owner))
    for _ in range(2):
        assert call_app(app, PUBLIC_PAGE)[0] == 401
        assert call_app(app, PUBLIC_PAGE, authorization=header)[0] == 200
    assert django_part.calls == 4
    assert len(store) == 0


def test_a_private_or_no_store_answer_is_not_keepable() -> None:
    assert is_keepable("200 OK", [("Cache-Control", "public, max-age=60")])
    assert not is_keepable("200 OK", [("Cache-Control", "private, max-age=60")])
    assert not is_keepable("200 OK", [("Cache-Control", "no-store")])
    assert not is_keepable("200 OK", [("Vary", "Accept, Authorization, Cookie")])


@pytest.mark.django_db(transaction=True)
def test_a_signed_in_browser_reads_through_the_served_application(owner: User) -> None:
    """gunicorn's application: a request with the session cookie takes the full stack (the
    lean path has no session), so the signed-in owner reads her private page; the same
    request without the cookie is challenged."""
    make_private("secret-pkg", owner)
    browser = sign_in(Client(), owner)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    status, headers, body = call_app(application, SECRET_PAGE, cookie=cookie)
    assert status == 200 and b"secret_pkg-1.0" in body
    assert "private" in headers["cache-control"][0]
    assert call_app(application, SECRET_PAGE)[0] == 401
    ended = call_app(application, SECRET_PAGE, cookie=f"{settings.SESSION_COOKIE_NAME}=forged")
    assert ended[0] == 401


# --- real clients against RELATCH_READ_ACCESS=authenticated ---------------------------------


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True,
                          timeout=180, env=env, check=False)


@pytest.mark.slow
@pytest.mark.own_database
def test_pip_and_uv_install_with_a_read_token(tmp_path: Path) -> None:
    """pip with credentials in the index URL and with a netrc file, and uv with
    UV_INDEX_<NAME>_USERNAME/PASSWORD, install from an index where every read needs a
    token; without one, pip finds nothing."""
    with running_server(tmp_path, RELATCH_READ_ACCESS="authenticated") as server:
        load_sample_pkg(server, tmp_path)
        token = server_read_token(server, "maria")
        assert server.get("/simple/sample-pkg/")[0] == 401
        netloc = urlsplit(server.url).netloc
        index = f"{server.url}/simple/"
        env = isolated_env(tmp_path)
        python = make_venv(tmp_path / "pip-venv", with_pip=True)

        pip = [python, "-m", "pip", "--no-input", "--no-cache-dir"]
        anonymous = _run([*pip, "download", "--no-deps", "--dest", tmp_path / "none",
                          "--index-url", index, "sample-pkg"], env)
        assert anonymous.returncode != 0

        in_url = _run([*pip, "install", "--index-url",
                       f"http://__token__:{token}@{netloc}/simple/", "sample-pkg"], env)
        assert in_url.returncode == 0, in_url.stdout + in_url.stderr
        assert installed_value(python) == "10"

        netrc = tmp_path / "netrc"
        netrc.write_text(f"machine {urlsplit(server.url).hostname}\nlogin __token__\n"
                         f"password {token}\n")
        netrc.chmod(0o600)
        fetched = _run([*pip, "download", "--no-deps", "--dest", tmp_path / "netrc-dl",
                        "--index-url", index, "sample-pkg"], {**env, "NETRC": str(netrc)})
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        assert [p.name for p in (tmp_path / "netrc-dl").iterdir()] == [
            "sample_pkg-1.0-py3-none-any.whl"]

        config = tmp_path / "uv.toml"
        config.write_text(f'[[index]]\nname = "relatch"\nurl = "{index}"\ndefault = true\n')
        uv_python = make_venv(tmp_path / "uv-venv", with_pip=False)
        uv_env = {**env, "UV_INDEX_RELATCH_USERNAME": "__token__",
                  "UV_INDEX_RELATCH_PASSWORD": token}
        uv = _run([UV, "pip", "install", "--config-file", config, "--python", uv_python,
                   "sample-pkg"], uv_env)
        assert uv.returncode == 0, uv.stdout + uv.stderr
        assert installed_value(uv_python) == "10"
