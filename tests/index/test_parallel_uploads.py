"""Parallel uploads of one project's files to a real ``relatch serve`` (issue 18 §5).

A CI job uploads a release's wheels from several jobs at once. The load tests saw every round
of parallel uploads to a new project answered "File already exists" for all but one file (on
SQLite and PostgreSQL), and on PostgreSQL the same for a new release of an existing project:
each upload had seen no project (or no release) when it was checked, tried to make it, and
lost to the first. Here six different files of a new project leave at the same moment (two web
processes, eight threads each), then six of a second release; all must be stored, the same bytes
again are skipped (200), and only other bytes under a file name used before are refused, with
the message twine's --skip-existing reads.
"""

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.index.dists import Dist, build_sdist, build_wheel
from tests.index.uploading import (
    Answer,
    create_uploader,
    server_database,
    shell_json,
    upload,
    upload_at_once,
)
from tests.serving import running_server

# Its databases are its own (SQLite files, PostgreSQL databases it makes): the suite's
# database does not change what it tests, so CI's PostgreSQL pass leaves it out.
pytestmark = [pytest.mark.slow, pytest.mark.own_database]

PROJECT = "parallel-pkg"
ALREADY_EXISTS = "File already exists"
SKIPPED = "is already here with the same contents"
STATE = """
import json
from relatch.audit.models import SecurityEvent
from relatch.index.models import File, Project, Release, Role, UsedFilename
print(json.dumps({
    "projects": list(Project.objects.values_list("name", flat=True)),
    "releases": sorted(Release.objects.values_list("version", flat=True)),
    "files": sorted(File.objects.values_list("filename", "path")),
    "used": UsedFilename.objects.count(),
    "roles": list(Role.objects.values_list("user__username", "kind")),
    "created_events": SecurityEvent.objects.filter(kind="project_created").count(),
}))
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    with server_database(str(request.param)) as env:
        yield env


def release_files(version: str) -> list[Dist]:
    """Six different files of one release: wheels for five platforms and the sdist."""
    tags = ["py3-none-any", "cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-win_amd64",
            "cp313-cp313-macosx_11_0_arm64", "cp313-cp313-musllinux_1_2_aarch64"]
    dists = [build_sdist(PROJECT, version)]
    for number, tag in enumerate(tags):
        wheel = build_wheel(PROJECT, version, module_source=f"VARIANT = {number}\n")
        stem = wheel.filename.removesuffix("-py3-none-any.whl")
        dists.append(Dist(f"{stem}-{tag}.whl", wheel.content, wheel.metadata, wheel.fields))
    return dists


def statuses(answers: list[Answer]) -> Counter[int]:
    return Counter(answer.status for answer in answers)


def test_parallel_uploads_of_a_new_project_and_a_new_release_are_all_stored(
    tmp_path: Path, database: dict[str, str]
) -> None:
    with running_server(tmp_path, RELATCH_WEB_WORKERS="2", **database) as server:
        token = create_uploader(server)

        # A new project: six files at once. Each upload finds no project when it is checked.
        first = release_files("1.0")
        answers = upload_at_once(server, token, first)
        assert statuses(answers) == {200: 6}, [a.text for a in answers]

        # A new release of the project, six files at once, with three duplicates among
        # them: a file of 1.0 again, one of 2.0's files twice in the same moment (a CI job
        # re-run: the same bytes, answered 200 and skipped, issue 20), and other bytes under
        # a 1.0 file's name (refused).
        second = release_files("2.0")
        changed = Dist(first[3].filename, build_wheel(PROJECT, "1.0").content,
                       first[3].metadata, first[3].fields)
        answers = upload_at_once(server, token, [*second, second[1], first[2], changed])
        assert statuses(answers) == {200: 8, 400: 1}, [a.text for a in answers]
        twins, old = [answers[1], answers[6]], answers[7]
        assert sorted(SKIPPED in a.text for a in twins) == [False, True], [a.text for a in twins]
        assert SKIPPED in old.text
        assert answers[8].status == 400 and ALREADY_EXISTS in answers[8].text, answers[8]

        state = shell_json(server, STATE)
        assert isinstance(state, dict)
        assert state["projects"] == [PROJECT]
        assert state["releases"] == ["1.0", "2.0"]
        assert {name for name, _path in state["files"]} == {
            dist.filename for dist in first + second}
        assert state["used"] == 12
        assert state["roles"] == [["maria", "owner"]]
        assert state["created_events"] == 1
        contents = {dist.filename: dist.content for dist in first + second}
        for name, path in state["files"]:
            assert (server.data_dir / "files" / path).read_bytes() == contents[name]

        # One at a time: the same file again is skipped, other bytes under its name are
        # refused the way twine expects.
        again = upload(server, token, first[0])
        assert again.status == 200 and SKIPPED in again.text, again
        again = upload(server, token, changed)
        assert again.status == 400 and ALREADY_EXISTS in again.text, again
