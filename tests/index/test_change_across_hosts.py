"""Two hosts on one PostgreSQL database (relatch.index.change_listener): a file uploaded through
host A is listed by host B on B's next request, though B keeps the project's page in memory,
because A's commit notifies B, whose listener rewrites B's change stamp. B's listener
connection killed from the database side reconnects, and changes keep arriving.

Each host is a real ``relatch serve`` with a data directory (so a change stamp) of its own; the
database is the test's own, on the suite's PostgreSQL server.
"""

import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest
from django.db import connection, transaction

from relatch.index.change_listener import APPLICATION_NAME, ChangeListener, connection_params
from relatch.index.change_stamp import ChangeStamp
from relatch.index.changes import mark_project_changed, mark_project_list_changed
from tests.index.dists import build_wheel
from tests.index.project_rows import make_project
from tests.index.uploading import create_uploader, upload
from tests.serving import Server, command_line, running_server, wait_for
from tests.signin_load import fresh_postgres_database

PAGE = "/simple/sample-pkg/"
# Bounds for what is asynchronous (a notification crossing the database, a reconnection),
# generous for a loaded machine: they are never what a pass depends on being fast.
BOUND = 60.0


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[tuple[Server, Server, str]]:
    """Hosts A and B on one new database, sharing a secret key as an operator's hosts do."""
    with fresh_postgres_database() as url, ExitStack() as stack:
        env = {"RELATCH_DATABASE_URL": url, "RELATCH_SECRET_KEY": secrets.token_urlsafe(50)}
        servers = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            servers.append(stack.enter_context(running_server(tmp_path / name, **env)))
        yield servers[0], servers[1], url


def stamp_of(server: Server) -> bytes:
    """The host's change stamp as its processes read it."""
    return (server.data_dir / "index-changes").read_bytes()


def listed(server: Server, filename: str) -> bool:
    status, body, _ = server.get(PAGE)
    assert status == 200, body
    return filename.encode() in body


def listeners(url: str, server: Server) -> dict[int, int]:
    """The listener connections of ``server``'s processes, as an operator finds them in
    pg_stat_activity: backend pid by the pid of the process holding it."""
    processes = server.children()
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pid, application_name FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name LIKE %s",
            [APPLICATION_NAME + " %"],
        ).fetchall()
    by_process = {int(name.rsplit(" ", 1)[1]): backend for backend, name in rows}
    return {pid: backend for pid, backend in by_process.items() if pid in processes}


def kill_listeners(url: str, server: Server) -> int:
    """End, from the database, the listener connections of ``server``'s processes (as a
    restart or a failover would end them); how many there were."""
    found = listeners(url, server)
    with psycopg.connect(url, autocommit=True) as admin:
        for backend in found.values():
            admin.execute("SELECT pg_terminate_backend(%s)", [backend])
    return len(found)


def upload_and_see_on_other_host(a: Server, b: Server, token: str, version: str) -> None:
    dist = build_wheel(version=version)
    before = stamp_of(b)
    assert not listed(b, dist.filename)  # B keeps the page without the file
    assert upload(a, token, dist).status == 200
    # B made no change itself: only A's notification, heard by B's listener, moves B's stamp.
    # It travels after A's commit (milliseconds), so this waits for it with a generous bound.
    assert wait_for(lambda: stamp_of(b) != before, BOUND), "host B never heard of the upload"
    assert listed(b, dist.filename), "host B's next request did not list the new file"


@pytest.mark.slow
@pytest.mark.own_database
def test_an_upload_through_one_host_is_listed_by_the_other_on_its_next_request(
    hosts: tuple[Server, Server, str],
) -> None:
    a, b, url = hosts
    token = create_uploader(a)
    assert upload(a, token, build_wheel(version="1.0")).status == 200
    # B builds the page, then keeps it: the second answer is the same bytes with the same ETag.
    first, second = b.get(PAGE), b.get(PAGE)
    assert first[0] == second[0] == 200
    assert first[1] == second[1] and first[2]["ETag"] == second[2]["ETag"]
    assert wait_for(lambda: "listening for index changes from other hosts" in b.output(), BOUND)
    # Only web processes listen: not the background worker, nor the commands run beside.
    for host in (a, b):
        holders = listeners(url, host)
        assert holders, host.output()
        assert all("gunicorn" in command_line(pid) for pid in holders), holders

    for version in ("1.1", "1.2", "1.3"):
        upload_and_see_on_other_host(a, b, token, version)

    # The database ends B's listener connection: B says so, reconnects, and hears again.
    assert kill_listeners(url, b) >= 1
    assert wait_for(lambda: "listening for index changes from other hosts again" in b.output(),
                    BOUND), b.output()
    # Said once per outage, however many processes and retries.
    assert b.output().count("not listening for index changes from other hosts") == 1
    for version in ("1.4", "1.5"):
        upload_and_see_on_other_host(a, b, token, version)


class CountedStamp(ChangeStamp):
    """A real stamp file that also counts its bumps."""

    bumps = 0

    def bump(self) -> None:
        self.bumps += 1
        super().bump()


@pytest.mark.django_db(transaction=True)
def test_a_change_is_heard_when_it_commits_once_and_never_when_it_rolls_back(
    tmp_path: Path,
) -> None:
    """On the suite's database when it is PostgreSQL (CI's second pass): the notification is
    part of the change's transaction."""
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; on SQLite nothing is sent")
    project = make_project("sample-pkg")
    stamp = CountedStamp(tmp_path / "index-changes")
    listener = ChangeListener(params=connection_params(), stamp=stamp, heartbeat=0.5)
    listener.start()
    try:
        assert listener.connected.wait(BOUND)
        assert stamp.bumps == 1  # on connecting: what happened before was not heard

        with pytest.raises(RuntimeError), transaction.atomic():
            mark_project_changed(project_id=project.pk)
            raise RuntimeError("the upload failed after marking")
        with transaction.atomic():  # two marks, one transaction: one notification
            mark_project_changed(project_id=project.pk)
            mark_project_list_changed(project_name="sample-pkg")

        assert wait_for(lambda: stamp.bumps >= 2, BOUND)
        # PostgreSQL delivers in commit order: a notification of the rolled-back transaction,
        # or a second one of the committed one, would have come by now.
        listener.stop()
        assert stamp.bumps == 2
    finally:
        listener.stop()
