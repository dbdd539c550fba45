"""The index's change stamp (relatch.index.change_stamp): a kept response is sent without a
database read while the stamp is unchanged and its last check is under TRUST_SECONDS old; a
committed change rewrites the stamp, in whatever process it commits, and the next request in
every web process of the host reads the database again.
"""

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.db.models import F

from relatch.accounts.models import User
from relatch.index.change_stamp import SIZE, ChangeStamp, index_change_stamp
from relatch.index.changes import mark_project_changed, mark_project_list_changed
from relatch.index.models import Project, Release
from relatch.index.simple.response_cache import TRUST_SECONDS, ResponseCache, ResponseStore
from tests.index.dists import build_wheel
from tests.index.wsgi_calls import Counted, FakeClock, call_app
from tests.serving import RELATCH, Server, running_server

pytestmark = pytest.mark.django_db(transaction=True)
PAGE = "/simple/sample-pkg/"
BUMP = ("import sys; from pathlib import Path; from relatch.index.change_stamp import ChangeStamp;"
        " ChangeStamp(Path(sys.argv[1])).bump()")


def _bump_in_another_process(path: Path) -> None:
    subprocess.run([sys.executable, "-c", BUMP, str(path)], check=True, timeout=60)


def _edit_by_hand() -> None:
    """What docs/operations.md tells an operator editing with SQL: the rows, then the counter.
    Nothing rewrites the stamp."""
    Release.objects.filter(version="1.1").update(yanked=True, yanked_reason="by hand")
    Project.objects.update(generation=F("generation") + 1)


def test_a_bump_in_another_process_is_seen_at_once(tmp_path: Path) -> None:
    stamp = ChangeStamp(tmp_path / "stamp")
    before = stamp.read()
    assert before is not None
    _bump_in_another_process(tmp_path / "stamp")
    assert stamp.read() not in (before, None)


def test_a_stamp_that_cannot_be_made_trusts_nothing_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stamp = ChangeStamp(tmp_path / "no-such-directory" / "stamp")
    with caplog.at_level(logging.WARNING, logger="relatch.index.change_stamp"):
        assert stamp.read() is None
        stamp.bump()
        assert stamp.read() is None
    assert len(caplog.records) == 1
    assert "checked against the database" in caplog.text


def test_a_stamp_another_user_owns_is_read_and_the_loss_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command run by another user than the server's cannot write the server's file."""
    path = tmp_path / "stamp"
    owner = ChangeStamp(path)
    before = owner.read()
    real_open = os.open

    def refuse_writing(name: Any, flags: int, *args: Any) -> int:
        # Tests run as root, whom file modes do not stop: refuse as the kernel would.
        if flags & os.O_RDWR:
            raise PermissionError(13, "Permission denied", str(name))
        return real_open(name, flags, *args)

    monkeypatch.setattr(os, "open", refuse_writing)
    other = ChangeStamp(path)
    with caplog.at_level(logging.WARNING, logger="relatch.index.change_stamp"):
        assert other.read() == before
        other.bump()
    assert owner.read() == before
    owner.bump()
    assert other.read() not in (before, None)
    assert "read-only for this process" in caplog.text


def test_an_empty_stamp_file_is_filled(tmp_path: Path) -> None:
    """A process killed between making the file and writing it leaves it empty."""
    path = tmp_path / "stamp"
    path.write_bytes(b"")
    assert ChangeStamp(path).read() is not None
    assert path.stat().st_size == SIZE


@pytest.mark.parametrize("mark", ["project", "list"])
def test_a_change_is_announced_once_it_commits_and_never_if_it_rolls_back(
    owner: User, mark: str
) -> None:
    def change() -> None:
        if mark == "project":
            mark_project_changed(project_id=Project.objects.get().pk)
        else:
            mark_project_list_changed()

    stamp = index_change_stamp()
    before = stamp.read()
    with transaction.atomic():
        change()
        assert stamp.read() == before  # a reader now would still see the old counters
    committed = stamp.read()
    assert committed != before
    with pytest.raises(RuntimeError), transaction.atomic():
        change()
        raise RuntimeError
    assert stamp.read() == committed


def test_an_unchanged_stamp_spares_the_database(
    owner: User, app: ResponseCache, django_part: Counted, django_assert_num_queries: Any
) -> None:
    first = call_app(app, PAGE)
    with django_assert_num_queries(0):
        assert call_app(app, PAGE) == first
    assert django_part.calls == 1


def test_the_database_is_asked_again_once_the_bound_passes(
    owner: User, app: ResponseCache, clock: FakeClock, django_part: Counted,
    django_assert_num_queries: Any,
) -> None:
    first = call_app(app, PAGE)
    clock.advance(TRUST_SECONDS)
    with django_assert_num_queries(1):
        assert call_app(app, PAGE) == first
    with django_assert_num_queries(0):  # checked: trusted again for TRUST_SECONDS
        assert call_app(app, PAGE) == first
    assert django_part.calls == 1


def test_a_change_committed_in_another_process_reaches_the_next_request(
    owner: User, app: ResponseCache, django_part: Counted
) -> None:
    before = call_app(app, PAGE)
    _edit_by_hand()  # the other process's rows, as it commits them
    _bump_in_another_process(index_change_stamp().path)  # and then its stamp
    after = call_app(app, PAGE)
    assert after[1]["etag"] != before[1]["etag"]
    assert b'data-yanked="by hand"' in after[2]
    assert django_part.calls == 2


def test_a_change_the_stamp_missed_shows_within_the_bound(
    owner: User, app: ResponseCache, clock: FakeClock
) -> None:
    """A hand-made SQL edit, a change on another host, a kill between commit and stamp."""
    before = call_app(app, PAGE)
    _edit_by_hand()
    clock.advance(TRUST_SECONDS * 0.9)
    assert call_app(app, PAGE) == before
    clock.advance(TRUST_SECONDS * 0.1)
    after = call_app(app, PAGE)
    assert after[1]["etag"] != before[1]["etag"]
    assert b'data-yanked="by hand"' in after[2]


def test_without_a_stamp_every_hit_asks_the_database(
    owner: User, django_part: Counted, tmp_path: Path, django_assert_num_queries: Any
) -> None:
    app = ResponseCache(django_part, ResponseStore(),
                        stamp=ChangeStamp(tmp_path / "no-such-directory" / "stamp"))
    first = call_app(app, PAGE)
    with django_assert_num_queries(1):
        assert call_app(app, PAGE) == first
    _edit_by_hand()
    assert b'data-yanked="by hand"' in call_app(app, PAGE)[2]
    assert django_part.calls == 2


def _poll(server: Server, stop: threading.Event, seen: list[tuple[float, int, bool]]) -> None:
    while not stop.is_set():
        started = time.monotonic()
        status, body, _ = server.get(PAGE)  # a new connection each time: any of the workers
        seen.append((started, status, b"sample_pkg-1.1-" in body))


# Another process's change: it waits for a line, calls the import service, says so once the
# service has returned (committed, and the stamp rewritten) and stays up, as a web worker would.
IMPORT = ("import sys, time; from pathlib import Path; "
          "from relatch.accounts.models import User; "
          "from relatch.index.upload.imports import import_distribution; "
          "sys.stdin.readline(); "
          "import_distribution(source=Path({path!r}), owner=User.objects.get(username='maria')); "
          "print('committed', flush=True); time.sleep(60)")


@pytest.mark.own_database
@pytest.mark.slow
def test_every_web_process_sees_a_change_another_process_commits(tmp_path: Path) -> None:
    """Two gunicorn workers keep the page while it is asked for without a pause; a change
    committed by another process shows in every answer to a request made after the commit."""
    dists = [build_wheel("sample-pkg", version) for version in ("1.0", "1.1")]
    for dist in dists:
        (tmp_path / dist.filename).write_bytes(dist.content)
    seen: list[tuple[float, int, bool]] = []
    stop = threading.Event()
    with running_server(tmp_path, RELATCH_WEB_WORKERS="2") as server:
        server.create_account("maria")
        first = server.relatch("index_import_file", str(tmp_path / dists[0].filename),
                               "--owner", "maria")
        assert first.returncode == 0, first.stderr
        other = subprocess.Popen(
            [str(RELATCH), "shell", "-c", IMPORT.format(path=str(tmp_path / dists[1].filename))],
            env=server.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        pollers = [threading.Thread(target=_poll, args=(server, stop, seen)) for _ in range(4)]
        try:
            for poller in pollers:
                poller.start()
            time.sleep(2 * TRUST_SECONDS)  # both workers keep the page, checked a while ago
            importing = time.monotonic()
            assert other.stdin and other.stdout
            other.stdin.write("go\n")
            other.stdin.flush()
            assert "committed\n" in iter(other.stdout.readline, "")  # after shell's banner
            committed = time.monotonic()
            time.sleep(TRUST_SECONDS)
        finally:
            stop.set()
            for poller in pollers:
                poller.join(timeout=60)
            other.kill()
            other.wait()
    assert {status for _, status, _ in seen} == {200}
    before = [listed for started, _, listed in seen if started < importing]
    after = [listed for started, _, listed in seen if started > committed]
    assert len(before) > 50 and not any(before)
    assert len(after) > 50 and all(after)
