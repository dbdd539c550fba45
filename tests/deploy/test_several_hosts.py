"""Relatch on several machines, all of it real and on loopback (issue 22, the first "Done
when"): SeaweedFS (S3), PostgreSQL, Redis, the shipped nginx configuration and two
``relatch serve`` hosts.

- twine uploads through nginx, and pip and uv install the new version through nginx at once,
  while the host that did not take the upload is asked directly whether it lists the file
  (the hosts agree through PostgreSQL NOTIFY, not a shared disk or a timer);
- for 60 seconds pip and uv install in loops while twine keeps uploading; after 15 s one host
  is killed with SIGKILL (its supervisor and both process groups). Once nginx says it marked
  the host down ("upstream server temporarily disabled" in its error log, read as it is
  written), no install fails, and installs keep succeeding through the surviving host;
- every stored object matches its File row: nothing missing, nothing extra, sizes and
  SHA-256 equal (the PEP 658 ``.metadata`` beside each wheel too), and the rows are exactly
  the files twine was told were uploaded.
"""

import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import private_postgres
from tests.deploy import nginx as nginx_runner
from tests.deploy.install_load import Install, Installers, Load, first_time, kill_host
from tests.deploy.stored import (
    BucketObjects,
    DirectoryObjects,
    Objects,
    expected_objects,
    mismatches,
)
from tests.deploy.test_nginx import Deployment, big_wheel, deployed
from tests.index.dists import Dist, build_sdist, build_wheel
from tests.s3store import running_seaweedfs
from tests.serving import Server
from tests.signin_load import RedisServer, redis_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.own_database,
    pytest.mark.skipif(bool(nginx_runner.available()), reason=nginx_runner.available()),
    pytest.mark.skipif(bool(private_postgres.available()), reason=private_postgres.available()),
]

# The hosts keep their files in SeaweedFS (RELATCH_FILES_URL); False: in one shared
# directory, as before object storage.
FILES_IN_S3 = True
PREFIX = "files"
STORE_ACCEL = "/internal-store/"
LOAD_SECONDS = 60.0
KILL_AFTER = 15.0
# Bounds for what is asynchronous, generous for a loaded 2-core machine: never what a pass
# depends on being fast.
BOUND = 60.0
# One access log line (deploy/nginx.conf's `relatch` format); upstream lists every host tried.
ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" (?P<status>\d+) \d+ '
                    r"upstream=(?P<upstream>.*?) upstream_status=")


@dataclass
class Run:
    """What the test did, for its assertions and for the record of a failure."""

    deployment: Deployment
    objects: Objects
    installers: Installers
    uploaded: set[str]  # every file name twine said it uploaded
    redis: RedisServer
    store: str  # host:port of the S3 store nginx fetches files from ("": files on disk)

    def upload(self, *dists: Dist) -> str:
        """twine through nginx; the host (host:port) that took the last file."""
        mark = len(self.deployment.nginx.access_lines())
        done = self.deployment.twine(*dists)
        assert done.returncode == 0, done.stdout + done.stderr
        self.uploaded |= {dist.filename for dist in dists}
        posts = [match["upstream"] for match in accesses(self.deployment, mark)
                 if match["method"] == "POST" and match["path"] == "/legacy/"]
        assert len(posts) == len(dists), posts
        return posts[-1].split(", ")[-1]


def accesses(deployment: Deployment, since: int = 0) -> list[re.Match[str]]:
    lines = deployment.nginx.access_lines()[since:]
    return [match for line in lines if (match := ACCESS.search(line))]


def address(host: Server) -> str:
    return f"127.0.0.1:{host.port}"


@contextmanager
def several_hosts(tmp_path: Path) -> Iterator[Run]:
    """Redis and SeaweedFS of the test's own, then the deployment (PostgreSQL, two hosts,
    nginx: tests/deploy/test_nginx.py's); the hosts use both."""
    with ExitStack() as stack:
        redis = stack.enter_context(redis_server(tmp_path))
        settings = {"RELATCH_REDIS_URL": redis.url, "RELATCH_WEB_WORKERS": "2"}
        objects: Objects = DirectoryObjects(tmp_path / "site" / "files")
        store_address = ""
        if FILES_IN_S3:
            store = stack.enter_context(running_seaweedfs(tmp_path / "s3"))
            # As deploy/nginx.conf says for files in a bucket: nginx fetches each one from the
            # store, at the URL Relatch presigned once its checks passed.
            settings |= {**store.env(PREFIX), "RELATCH_ACCEL_REDIRECT": STORE_ACCEL}
            store_address = store.endpoint.split("//", 1)[1]
            objects = BucketObjects(store, PREFIX)
        deployment = stack.enter_context(deployed(tmp_path / "site", store=store_address,
                                                  **settings))
        yield Run(deployment, objects, Installers(deployment, tmp_path / "installs"), set(),
                  redis, store_address)


def install_at_once(run: Run, requirement: str, module: str) -> list[Install]:
    """pip and uv at the same moment, each in a thread of its own."""
    done: list[Install] = []
    threads = [threading.Thread(target=lambda kind=kind: done.append(
        run.installers.install(kind, requirement, module))) for kind in ("pip", "uv")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done


def upload_then_install_from_the_other_host(run: Run, version: str) -> tuple[str, float]:
    """Upload ``fresh-demo`` ``version`` through nginx; at once pip and uv install it through
    nginx, and the host that did not take the upload is asked for its page directly. The
    other host's address, and how long it took to list the file."""
    deployment = run.deployment
    wheel = build_wheel("fresh-demo", version)
    took = run.upload(wheel)
    uploaded = time.monotonic()
    other = next(host for host in deployment.hosts if address(host) != took)
    installs: list[Install] = []
    installing = threading.Thread(target=lambda: installs.extend(
        install_at_once(run, f"fresh-demo=={version}", "fresh_demo")))
    installing.start()
    listed = first_time(lambda: wheel.filename.encode() in deployment.direct(
        other, "/simple/fresh-demo/").body, BOUND)
    installing.join()
    assert listed is not None, f"{address(other)} never listed {wheel.filename}"
    assert all(install.succeeded for install in installs), "\n".join(map(str, installs))
    return address(other), listed - uploaded


def seed(run: Run) -> None:
    """What the load installs: an application and the library it requires (a few hundred KB
    that does not compress away), each with an sdist stored beside."""
    run.upload(big_wheel("load-lib"), build_sdist("load-lib", "1.0"))
    run.upload(build_wheel("load-app", "1.0", requires_dist=("load-lib>=1.0",)),
               build_sdist("load-app", "1.0"))


class Uploader(threading.Thread):
    """twine uploads a new ``fresh-demo`` version (a wheel and an sdist) through nginx, then pip
    installs it through nginx, over and over until ``until``. ``lock`` is held around each
    upload: the host is killed between uploads, so no upload dies half-way (a row never
    written for a stored file is the orphan sweep's to remove, not this test's subject)."""

    def __init__(self, run: Run, load: Load, until: float) -> None:
        super().__init__(daemon=True)
        self.run_, self.load, self.until = run, load, until
        self.lock = threading.Lock()
        self.versions: list[str] = []
        self.failure = ""

    def run(self) -> None:
        try:
            for number in range(1, 1000):
                if time.monotonic() > self.until:
                    return
                version = f"2.{number}"
                with self.lock:
                    self.run_.upload(build_wheel("fresh-demo", version),
                                     build_sdist("fresh-demo", version))
                self.versions.append(version)
                self.load.record(self.run_.installers.install(
                    "pip", f"fresh-demo=={version}", "fresh_demo"))
        except AssertionError as error:
            self.failure = str(error)


def marked_down(deployment: Deployment, host: Server) -> bool:
    """nginx's own word that it stopped sending requests to ``host`` (max_fails reached)."""
    return any("upstream server temporarily disabled" in line and address(host) in line
               for line in deployment.nginx.error_log().splitlines())


def test_installs_carry_on_when_a_host_dies_and_every_object_matches_its_row(
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    with several_hosts(tmp_path) as run:
        deployment = run.deployment
        started = time.monotonic()
        seed(run)

        # Uploads and installs at once, from the host that did not take the upload.
        agreed = [upload_then_install_from_the_other_host(run, f"1.{n}") for n in (1, 2, 3)]
        others = {other for other, _ in agreed}
        page_hosts = {match["upstream"] for match in accesses(deployment)
                      if match["path"].startswith("/simple/fresh-demo/")
                      and match["status"] == "200"}
        # Both hosts answered the new project's page through nginx, so an installer read a
        # version from the host that did not take its upload.
        assert {address(host) for host in deployment.hosts} <= page_hosts, page_hosts
        at_once = time.monotonic()

        dead, survivor = deployment.hosts
        until = time.monotonic() + LOAD_SECONDS
        with Load(run.installers, ["pip", "uv", "pip", "uv"], "load-app", "load_app",
                  until) as load:
            uploader = Uploader(run, load, until - 10)
            uploader.start()
            # Kill once the load runs through both hosts, KILL_AFTER seconds in.
            assert first_time(lambda: time.monotonic() > until - LOAD_SECONDS + KILL_AFTER
                              and sum(r.succeeded for r in load.runs) >= 2, BOUND)
            with uploader.lock:
                kill_host(dead)
            killed = time.monotonic()
            down = first_time(lambda: marked_down(deployment, dead), BOUND)
            uploader.join()
        loaded = time.monotonic()

        said = deployment.nginx.error_log()
        assert down is not None, f"nginx never marked the dead host down:\n{said[-3000:]}"
        assert not uploader.failure, uploader.failure
        runs = sorted(load.runs, key=lambda r: r.started)
        after = [r for r in runs if r.started > down]
        before = [r for r in runs if r.ended < killed]
        during = [r for r in runs if r not in after and r not in before]
        failed_after = [r for r in after if not r.succeeded]
        assert not failed_after, "\n".join(map(str, failed_after))
        assert all(r.succeeded for r in before), "\n".join(map(str, before))
        # The surviving host carried on: several installs of each kind, and uploads.
        assert Counter(r.kind for r in after if r.succeeded) >= Counter(pip=3, uv=3), after
        assert any(r.started > down for r in runs if "fresh-demo" in r.requirement), runs
        assert "connect() failed (111: Connection refused) while connecting to upstream" in said
        assert survivor.process.poll() is None, survivor.output()[-3000:]

        expected, filenames = expected_objects(dead.env["RELATCH_DATABASE_URL"])
        assert filenames == run.uploaded
        assert mismatches(expected, run.objects) == []
        if FILES_IN_S3:  # none on the hosts' disks; nginx fetched the files from the store
            assert DirectoryObjects(tmp_path / "site" / "files").sizes() == {}
            assert any(match["upstream"].endswith(f" : {run.store}")
                       for match in accesses(deployment) if match["status"] == "200"
                       and match["path"].startswith("/files/")), "no file came from the store"
        redis_keys = len(run.redis.keys("*"))
        checked = time.monotonic()

    ended = time.monotonic()
    # The figures of the run (shown with -s): where the time goes, and what happened when.
    sys.stdout.write(f"\nstart {started - began:.1f} s, uploads and installs at once "
          f"{at_once - started:.1f} s (listed by the other host after "
          f"{', '.join(f'{delay:.2f}' for _, delay in agreed)} s), load {loaded - at_once:.1f} s, "
          f"killed at {killed - at_once:.1f} s, marked down {down - killed:.2f} s later, "
          f"check {checked - loaded:.1f} s, stop {ended - checked:.1f} s; installs "
          f"{len(before)} before the kill, {len(during)} around it "
          f"({sum(not r.succeeded for r in during)} failed), {len(after)} after (0 failed); "
          f"{len(uploader.versions)} uploads during the load; {len(expected)} objects; "
          f"{redis_keys} Redis keys; "
          f"other hosts {sorted(others)}\n")
