"""``relatch demo`` seeds a project with two releases and a recovery request, once."""

import base64
import hashlib
import io
import json
import zipfile
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import TestCase

from relatch.accounts.demo import DemoRun, seed_people
from relatch.accounts.models import User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.demo import build_wheel, wheel_filename
from relatch.index.models import File, Project, Release, Role
from relatch.recovery.desk import queries
from relatch.recovery.models import RecoveryRequest, State
from tests.conftest import run_pending_tasks, sign_in
from tests.mfa.factor_rows import add_app

# The demo stores demo-hello's wheels: in each test's own directory.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("files_dir")]

PASSWORD = "a fine demo passphrase"
WHEELS = ["demo_hello-1.0-py3-none-any.whl", "demo_hello-1.1-py3-none-any.whl"]
PIP_JSON = "application/vnd.pypi.simple.v1+json"


def demo() -> str:
    out = io.StringIO()
    # Run the mail and tasks queued on commit, as a real run's worker does.
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("demo", password=PASSWORD, stdout=out)
    run_pending_tasks()
    return out.getvalue()


def test_a_second_run_creates_nothing_and_says_what_it_skipped() -> None:
    first = demo()
    assert "Created demo-hello 1.0 (demo_hello-1.0-py3-none-any.whl), owned by alice." in first
    assert "Added bob as maintainer of demo-hello." in first
    assert "Filed recovery request" in first

    again = demo()
    assert "Skipped demo-hello 1.0: demo_hello-1.0-py3-none-any.whl exists." in again
    assert "Skipped demo-hello 1.1: demo_hello-1.1-py3-none-any.whl exists." in again
    assert "Skipped bob's role on demo-hello: bob is already a member." in again
    assert "Skipped the recovery request: carol has an open request." in again
    assert "Nothing new" in again
    assert (Project.objects.count(), Release.objects.count(), File.objects.count()) == (1, 2, 2)
    assert Role.objects.count() == 2 and RecoveryRequest.objects.count() == 1


def test_seeding_only_the_rest_shows_no_password() -> None:
    """Accounts from an earlier run keep their password: none is printed for them."""
    seed_people(DemoRun(password=PASSWORD))
    out = io.StringIO()
    call_command("demo", stdout=out)
    assert "Created demo-hello 1.0" in out.getvalue()
    assert "No account was created: the demo accounts keep their password." in out.getvalue()
    assert "Password of the accounts" not in out.getvalue()


def test_the_project_has_two_releases_an_owner_and_a_maintainer() -> None:
    demo()
    project = Project.objects.get(normalized_name="demo-hello")
    assert project.name == "demo-hello"
    roles = {r.user.username: r.kind for r in project.roles.select_related("user")}
    assert roles == {"alice": Role.Kind.OWNER, "bob": Role.Kind.MAINTAINER}
    releases = project.releases.order_by("version")
    assert [(r.version, r.requires_python) for r in releases] == [
        ("1.0", ">=3.8"), ("1.1", ">=3.8"),
    ]
    assert releases[0].summary == "A tiny package seeded by relatch demo"
    bob_event = SecurityEvent.objects.get(user__username="bob", kind=EventKind.ROLE_CHANGED)
    assert bob_event.details == {
        "project": "demo-hello", "role": "maintainer", "by": "relatch demo",
    }
    # Imported as uploads are made, in alice's name: the project once, each file.
    created = SecurityEvent.objects.get(user__username="alice", kind=EventKind.PROJECT_CREATED)
    assert created.details == {"project": "demo-hello", "by": "operator import"}
    uploaded = SecurityEvent.objects.filter(user__username="alice", kind=EventKind.FILE_UPLOADED)
    assert sorted(e.details["version"] for e in uploaded) == ["1.0", "1.1"]
    assert {f.uploader.username for f in File.objects.select_related("uploader")} == {"alice"}


def test_the_stored_wheels_are_valid_and_match_their_digests() -> None:
    demo()
    for file in File.objects.order_by("filename"):
        with default_storage.open(file.path) as stream:
            stored = stream.read()
        assert hashlib.sha256(stored).hexdigest() == file.sha256_digest
        assert file.size == len(stored) and file.packagetype == "bdist_wheel"
        with zipfile.ZipFile(io.BytesIO(stored)) as archive:
            assert archive.testzip() is None
            version = file.release.version
            record = archive.read(f"demo_hello-{version}.dist-info/RECORD").decode()
            assert "demo_hello/__init__.py,sha256=" in record
            init = archive.read("demo_hello/__init__.py").decode()
            assert f'__version__ = "{version}"' in init
    assert [f.filename for f in File.objects.order_by("filename")] == WHEELS


def test_a_build_is_reproducible_and_its_record_is_valid() -> None:
    assert build_wheel("1.0", "b1") == build_wheel("1.0", "b1") != build_wheel("1.0", "b2")
    with zipfile.ZipFile(io.BytesIO(build_wheel("1.1", "b1"))) as archive:
        names = archive.namelist()
        assert names[-1] == "demo_hello-1.1.dist-info/RECORD"  # last, as PEP 427 recommends
        lines = archive.read(names[-1]).decode().splitlines()
        for line in lines[:-1]:
            path, digest, size = line.split(",")
            data = archive.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == "sha256=" + expected.decode()
            assert int(size) == len(data)
        assert lines[-1] == "demo_hello-1.1.dist-info/RECORD,,"
    assert wheel_filename("1.1") == "demo_hello-1.1-py3-none-any.whl"


def test_the_simple_page_lists_both_wheels_with_their_sha256(client: Any) -> None:
    demo()
    digests = {f.filename: hashlib.sha256(default_storage.open(f.path).read()).hexdigest()
               for f in File.objects.all()}
    response = client.get("/simple/demo-hello/", HTTP_ACCEPT=PIP_JSON)
    assert response.status_code == 200
    body = b"".join(response) if response.streaming else response.content
    files = json.loads(body)["files"]
    assert sorted(f["filename"] for f in files) == WHEELS
    for entry in files:
        assert entry["hashes"]["sha256"] == digests[entry["filename"]]
        assert entry["url"].endswith("/" + entry["filename"])
    html = client.get("/simple/demo-hello/", HTTP_ACCEPT="text/html")
    page = (b"".join(html) if html.streaming else html.content).decode()
    for filename, digest in digests.items():
        assert f"{filename}#sha256={digest}" in page


def test_carols_request_waits_in_the_desk_queue(client: Any) -> None:
    demo()
    recovery = RecoveryRequest.objects.get()
    assert recovery.user == User.objects.get(username="carol")
    # Her answers (password, mailbox) were asked for as proofs at once (DESIGN §5).
    assert recovery.state == State.AWAITING_PROOF and recovery.contact_confirmed_at is not None
    assert sorted(recovery.proofs.values_list("kind", flat=True)) == ["account_email",
                                                                      "password"]
    assert recovery.contact_email == "carol@example.org"
    assert "totp" not in recovery.still_has and "password" in recovery.still_has
    assert [row.public_id for row in queries.queue()] == [recovery.public_id]
    assert SecurityEvent.objects.filter(user=recovery.user,
                                        kind=EventKind.RECOVERY_REQUESTED).exists()
    # The desk asks staff for a second factor, which the demo does not enrol for dana.
    dana = User.objects.get(username="dana")
    add_app(dana)
    page = sign_in(client, dana).get("/desk/")
    assert page.status_code == 200
    assert recovery.public_id in page.content.decode()


def test_no_project_for_a_real_account_named_alice(make_user: Any) -> None:
    real = make_user(username="alice", email="alice.liddell@example.net", password=PASSWORD)
    out = demo()
    assert "Skipped alice: the username exists." in out
    assert (
        "Skipped demo-hello: there is no demo account alice (alice@example.org) to own it."
        in out
    )
    assert not Project.objects.exists() and not File.objects.exists()
    assert not Role.objects.filter(user=real).exists()
    assert RecoveryRequest.objects.count() == 1  # the rest is seeded as usual


def test_no_request_for_a_real_account_named_carol(make_user: Any) -> None:
    real = make_user(username="carol", email="carol@example.net", password=PASSWORD)
    out = demo()
    assert "Skipped the recovery request: there is no demo account carol." in out
    assert not RecoveryRequest.objects.filter(user=real).exists()
    assert Project.objects.count() == 1


def test_no_files_are_added_to_someone_elses_demo_hello(make_user: Any) -> None:
    stranger = make_user(username="zed", email="zed@example.net")
    project = Project.objects.create(name="demo-hello", normalized_name="demo-hello")
    Role.objects.create(project=project, user=stranger, kind=Role.Kind.OWNER)
    out = demo()
    assert "Skipped demo-hello: a project of that name exists without alice." in out
    assert not File.objects.exists()
    assert list(project.roles.values_list("user__username", flat=True)) == ["zed"]
