"""``relatch index_import_file``: an operator adds existing wheels and sdists to the index."""

import hashlib
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.test import Client

from relatch.index.models import File, Project, Release, UsedFilename
from tests.index.dists import build_sdist, build_wheel


def _write(tmp_path: Path, dist: Any) -> Path:
    path = tmp_path / dist.filename
    path.write_bytes(dist.content)
    return path


@pytest.mark.django_db
def test_import_creates_rows_and_stores_bytes_and_metadata(tmp_path: Path, client: Client) -> None:
    wheel = build_wheel("Sample_Pkg", "1.0", project_urls={"Repository": "https://git.example/x"})
    sdist = build_sdist("Sample_Pkg", "1.0")
    out = StringIO()
    call_command("index_import_file", str(_write(tmp_path, wheel)), str(_write(tmp_path, sdist)),
                 "--project", "Sample_Pkg", stdout=out)
    assert f"imported {wheel.filename}" in out.getvalue()
    project = Project.objects.get()
    assert (project.name, project.normalized_name) == ("Sample_Pkg", "sample-pkg")
    release = Release.objects.get()
    assert release.version == "1.0"
    assert release.summary == "A sample package"
    assert release.requires_python == ">=3.8"
    assert release.project_urls == {"Repository": "https://git.example/x"}
    stored = File.objects.get(filename=wheel.filename)
    assert stored.sha256_digest == wheel.sha256
    assert default_storage.open(stored.path).read() == wheel.content
    assert stored.metadata_sha256_digest == hashlib.sha256(wheel.metadata.encode()).hexdigest()
    assert File.objects.get(filename=sdist.filename).metadata_sha256_digest == ""
    assert UsedFilename.objects.count() == 2
    response = client.get(f"/files/{stored.path}.metadata")
    assert b"".join(response.streaming_content) == wheel.metadata.encode()


@pytest.mark.django_db
def test_import_refuses_a_used_file_name_and_a_wrong_project(tmp_path: Path) -> None:
    path = _write(tmp_path, build_wheel())
    call_command("index_import_file", str(path), stdout=StringIO())
    with pytest.raises(CommandError, match="uploaded before"):
        call_command("index_import_file", str(path), stdout=StringIO())
    other = _write(tmp_path, build_wheel(version="2.0"))
    with pytest.raises(CommandError, match="not a file of"):
        call_command("index_import_file", str(other), "--project", "other", stdout=StringIO())
    bad = tmp_path / "not-a-distribution.txt"
    bad.write_text("x")
    with pytest.raises(CommandError):
        call_command("index_import_file", str(bad), stdout=StringIO())
    with pytest.raises(CommandError, match="no such file"):
        call_command("index_import_file", str(tmp_path / "missing.whl"), stdout=StringIO())
    assert File.objects.count() == 1


def test_import_can_name_an_owner_who_may_then_upload(tmp_path: Path, make_user: Any) -> None:
    from relatch.audit.models import EventKind, SecurityEvent
    from relatch.index.models import Role
    from relatch.mfa.policy import owns_projects

    maria = make_user(username="maria")
    wheel = _write(tmp_path, build_wheel("owned-pkg", "1.0"))
    call_command("index_import_file", str(wheel), "--owner", "MARIA", stdout=StringIO())
    role = Role.objects.get(project__normalized_name="owned-pkg")
    assert (role.user, role.kind) == (maria, Role.Kind.OWNER)
    assert owns_projects(maria)
    assert SecurityEvent.objects.filter(user=maria, kind=EventKind.ROLE_CHANGED).count() == 1


@pytest.mark.django_db
def test_import_refuses_an_unknown_owner_and_changes_nothing(tmp_path: Path) -> None:
    wheel = _write(tmp_path, build_wheel("owned-pkg", "1.0"))
    with pytest.raises(CommandError, match="no account named nobody"):
        call_command("index_import_file", str(wheel), "--owner", "nobody", stdout=StringIO())
    assert not Project.objects.exists()
