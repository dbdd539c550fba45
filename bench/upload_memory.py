"""Uploading a large file does not grow the server's memory with the file size (issue 4 §3).

Starts a real ``relatch serve`` (gunicorn, one worker) in a throw-away data directory, makes
an account with a second factor and an API token, and uploads with the real ``twine``:
a small warm-up wheel, then a SMALL (default 10 MB) and a LARGE (default 200 MB) wheel of
incompressible bytes. Before each measured upload it resets the web worker's peak RSS
(``/proc/<pid>/clear_refs``) and reads the peak (``VmHWM``) afterwards.

    .venv/bin/python bench/upload_memory.py [--small-mb 10] [--large-mb 200] [--s3]

``--s3``: the server keeps its files in a real S3 server (SeaweedFS, tests/s3store.py) through
RELATCH_FILES_URL, so the upload goes to the store in multipart parts.

Exits 1 when the large upload grows the worker by 32 MB or more.
"""
# ruff: noqa: T201, S603  (a script run by hand: it prints its results and runs twine)

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.s3store import running_seaweedfs  # noqa: E402
from tests.serving import Server, direct_children, running_server  # noqa: E402

TWINE = Path(sys.executable).with_name("twine")
TARGET_MB = 32
SETUP = """
import json
from relatch.accounts.provisioning import create_verified_user
from relatch.index.tokens.services import create_token
from relatch.mfa.models import TotpDevice
user = create_verified_user(username="bench", email="bench@example.org", password=None)
TotpDevice.objects.create(user=user, encrypted_secret="x")
print("TOKEN " + create_token(request=None, user=user, name="bench", project=None,
                              expires_at=None)[1])
"""


def _record_line(name: str, digest: "hashlib._Hash", size: int) -> str:
    encoded = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    return f"{name},sha256={encoded},{size}\n"


def write_wheel(directory: Path, name: str, size_mb: int) -> Path:
    """A wheel holding ``size_mb`` MB of random bytes, written in chunks (never in memory),
    with the RECORD uploads check every member against."""
    dist = name.replace("-", "_")
    path = directory / f"{dist}-1.0-py3-none-any.whl"
    info = f"{dist}-1.0.dist-info"
    members = {
        f"{dist}/__init__.py": b"",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"
                            "Summary: bench\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    blob_digest = hashlib.sha256()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        with archive.open(f"{dist}/blob.bin", "w", force_zip64=True) as blob:
            for _ in range(size_mb):
                chunk = os.urandom(1024 * 1024)
                blob_digest.update(chunk)
                blob.write(chunk)
        record = _record_line(f"{dist}/blob.bin", blob_digest, size_mb * 1024 * 1024)
        for member, data in members.items():
            archive.writestr(member, data)
            record += _record_line(member, hashlib.sha256(data), len(data))
        archive.writestr(f"{info}/RECORD", record + f"{info}/RECORD,,\n")
    return path


def web_worker(server: Server) -> int:
    """The gunicorn worker process (the child of gunicorn's master) that handles requests."""
    for pid, command in direct_children(server.process.pid).items():
        if "gunicorn" in command:
            workers = direct_children(pid)
            assert len(workers) == 1, f"expected one gunicorn worker, got {workers}"
            return next(iter(workers))
    raise RuntimeError("no gunicorn process found")


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def upload(server: Server, token: str, path: Path) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [str(TWINE), "upload", "--repository-url", f"{server.url}/legacy/", "-u", "__token__",
         "-p", token, "--non-interactive", "--disable-progress-bar", str(path)],
        capture_output=True, text=True, check=False, timeout=1800,
        env={**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"twine failed:\n{done.stdout}\n{done.stderr}")
    return time.monotonic() - started


def measure(server: Server, token: str, path: Path) -> tuple[int, float]:
    """Peak RSS growth of the web worker (KB) during the upload of ``path``, and seconds."""
    pid = web_worker(server)
    reset_peak(pid)
    before = status_kb(pid, "VmHWM")
    seconds = upload(server, token, path)
    return status_kb(pid, "VmHWM") - before, seconds


def stored_digest(server: Server, filename: str) -> str:
    script = ("from relatch.index.models import File; "
              f"print('SHA ' + File.objects.get(filename={filename!r}).sha256_digest)")
    out = server.relatch("shell", "-c", script).stdout
    return next(x for x in out.splitlines() if x.startswith("SHA ")).split()[1]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-mb", type=int, default=10)
    parser.add_argument("--large-mb", type=int, default=200)
    parser.add_argument("--s3", action="store_true", help="files in SeaweedFS's S3 bucket")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="relatch-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        env = {"RELATCH_MAX_UPLOAD_MB": str(options.large_mb + 10)}
        if options.s3:
            store = stack.enter_context(running_seaweedfs(work / "s3"))
            env |= store.env("bench")
        with running_server(work, **env) as server:
            setup = server.relatch("shell", "-c", SETUP)
            token = next(x for x in setup.stdout.splitlines() if x.startswith("TOKEN ")).split()[1]
            upload(server, token, write_wheel(work, "warm-up", 1))  # code and caches loaded
            results = {}
            for label, size in (("small", options.small_mb), ("large", options.large_mb)):
                path = write_wheel(work, f"bench-{label}", size)
                growth_kb, seconds = measure(server, token, path)
                assert stored_digest(server, path.name) == file_sha256(path)
                path.unlink()
                results[label] = {"size_mb": size, "rss_growth_mb": round(growth_kb / 1024, 1),
                                  "seconds": round(seconds, 1)}
    return report(results)


def report(results: dict[str, dict[str, float]]) -> int:
    small, large = results["small"], results["large"]
    ratio = large["rss_growth_mb"] / max(small["rss_growth_mb"], 0.1)
    for label, row in results.items():
        print(f"{label:5}  {row['size_mb']:>5} MB upload  worker peak RSS +{row['rss_growth_mb']}"
              f" MB  ({row['seconds']} s)")
    times = large["size_mb"] / small["size_mb"]
    print(f"ratio large/small growth: {ratio:.2f} (file sizes {times:.0f}x)")
    print(json.dumps(results))
    ok = large["rss_growth_mb"] < TARGET_MB
    print(f"{'OK' if ok else 'FAIL'}: target < {TARGET_MB} MB growth for the large upload")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
