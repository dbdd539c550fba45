"""Sample project for ``relatch demo``: ``demo-hello``, owned by alice, bob its maintainer.

Two releases, each with one small pure-Python wheel built here in memory, so that
``pip install --index-url http://localhost:8000/simple/ demo-hello`` works on a fresh server.
The files enter the index through the operator's import, as moved-in packages do: the upload
pipeline, published as alice.
"""

import base64
import hashlib
import io
import secrets
import tempfile
import zipfile
from pathlib import Path

from django.db import transaction

from relatch.accounts.demo import DemoRun, demo_account
from relatch.accounts.models import User
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.index.manage.services import lock_project, role_of
from relatch.index.models import File, Project, Role, UsedFilename
from relatch.index.names import normalize_project_name
from relatch.index.upload.imports import import_distribution

PROJECT = "demo-hello"
PACKAGE = "demo_hello"
VERSIONS = ("1.0", "1.1")
SUMMARY = "A tiny package seeded by relatch demo"
REQUIRES_PYTHON = ">=3.8"
# Fixed member times: the bytes depend on the version and the build id only.
ZIP_TIME = (2024, 1, 1, 0, 0, 0)


def wheel_filename(version: str) -> str:
    return f"{PACKAGE}-{version}-py3-none-any.whl"


def _record_line(path: str, data: bytes) -> str:
    # PEP 376/427: urlsafe base64 of the sha256 digest, without "=" padding, and the size.
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _wheel_members(version: str, build: str) -> dict[str, bytes]:
    info = f"{PACKAGE}-{version}.dist-info"
    return {
        f"{PACKAGE}/__init__.py": (
            f'"""Seeded by relatch demo."""\n\n__version__ = "{version}"\n'
            f'__build__ = "{build}"\n\n\n'
            "def hello(name: str = \"world\") -> str:\n"
            '    return f"Hello, {name}!"\n'
        ).encode(),
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {PROJECT}\nVersion: {version}\n"
            f"Summary: {SUMMARY}\nRequires-Python: {REQUIRES_PYTHON}\n"
        ).encode(),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: relatch-demo\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }


def build_wheel(version: str, build: str) -> bytes:
    """The bytes of a valid wheel of ``demo-hello`` ``version`` (RECORD last, as PEP 427 asks).

    ``build`` is written into the package, so each build has bytes of its own.
    """
    members = _wheel_members(version, build)
    record_path = f"{PACKAGE}-{version}.dist-info/RECORD"
    lines = [_record_line(path, data) for path, data in members.items()]
    members[record_path] = "\n".join([*lines, f"{record_path},,", ""]).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in members.items():
            info = zipfile.ZipInfo(path, ZIP_TIME)
            info.external_attr = 0o644 << 16  # rw-r--r-- once installed
            archive.writestr(info, data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


@transaction.atomic
def seed_projects(run: DemoRun) -> None:
    """``demo-hello`` 1.0 and 1.1, owned by alice, with bob as its maintainer."""
    alice = demo_account("alice")
    if alice is None:
        run.notes.append(
            f"Skipped {PROJECT}: there is no demo account alice (alice@example.org) to own it."
        )
        return
    project = Project.objects.filter(normalized_name=normalize_project_name(PROJECT)).first()
    if project is not None and role_of(user=alice, project=project) is None:
        # Someone else's project of that name: the demo adds nothing to it.
        run.notes.append(f"Skipped {PROJECT}: a project of that name exists without alice.")
        return
    for version in VERSIONS:
        _seed_release(run, alice, version)
    project = Project.objects.filter(normalized_name=normalize_project_name(PROJECT)).first()
    if project is not None:  # None only when every file was deleted along with the project
        _seed_maintainer(run, project)


def _seed_release(run: DemoRun, alice: User, version: str) -> None:
    filename = wheel_filename(version)
    if File.objects.filter(filename__iexact=filename).exists():
        run.notes.append(f"Skipped {PROJECT} {version}: {filename} exists.")
    elif UsedFilename.objects.filter(filename__iexact=filename).exists():
        # Deleted since: a file name is never reused (as on PyPI), so this release stays gone.
        run.notes.append(
            f"Skipped {PROJECT} {version}: {filename} was deleted, and names are not reused."
        )
    else:
        # A fresh build id: files are stored under their sha256, and a data directory whose
        # database was reset may still hold an earlier run's file. New bytes, new path.
        _import_wheel(filename, build_wheel(version, secrets.token_hex(8)), alice)
        run.created.append(f"{PROJECT} {version}")
        run.notes.append(f"Created {PROJECT} {version} ({filename}), owned by alice.")


def _import_wheel(filename: str, content: bytes, owner: User) -> File:
    # The import service reads a file on disk, named as the distribution.
    with tempfile.TemporaryDirectory(prefix="relatch-demo-") as directory:
        source = Path(directory) / filename
        source.write_bytes(content)
        return import_distribution(source=source, project_name=PROJECT, owner=owner)


def _seed_maintainer(run: DemoRun, project: Project) -> None:
    bob = demo_account("bob")
    if bob is None:
        run.notes.append(f"Skipped bob's role on {PROJECT}: there is no demo account bob.")
    elif role_of(user=bob, project=project) is not None:
        run.notes.append(f"Skipped bob's role on {PROJECT}: bob is already a member.")
    else:
        add_maintainer(project=project, user=bob)
        run.created.append(f"bob, maintainer of {PROJECT}")
        run.notes.append(f"Added bob as maintainer of {PROJECT}.")


@transaction.atomic
def add_maintainer(*, project: Project, user: User) -> Role:
    """Make ``user`` a maintainer of ``project`` at once, recorded on their account.

    For the operator's seeding only: people join a project through an owner's invitation
    (``manage.services.invite``), which mails the invitee and waits for their answer.
    """
    project = lock_project(project)
    role = Role.objects.create(project=project, user=user, kind=Role.Kind.MAINTAINER)
    record_event(
        user=user,
        kind=EventKind.ROLE_CHANGED,
        details={"project": project.name, "role": role.kind, "by": "relatch demo"},
    )
    return role
