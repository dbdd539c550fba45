"""Debian's nginx running the shipped ``deploy/nginx.conf``, for tests and benchmarks.

One source of truth: the site configuration is the shipped file itself, with each of its EDIT
values (example hosts, ports, certificate and files paths) replaced by what this run uses; a
value that is no longer in the file stops the run instead of testing something else. Around
it, the few main-context lines a Debian install has in /etc/nginx/nginx.conf (pid, logs,
temporary paths), all in a directory of the run's own, so nginx needs no system path and
leaves nothing behind.
"""

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "deploy" / "nginx.conf"
NGINX = Path("/usr/sbin/nginx")
MIME_TYPES = Path("/etc/nginx/mime.types")
UPSTREAM_LINE = "    server {address} max_fails=2 fail_timeout=10s;\n"
EXAMPLE_HOSTS = ("10.0.0.11:8000", "10.0.0.12:8000")


@dataclass(frozen=True)
class Site:
    """What this run puts in place of the shipped file's EDIT values."""

    hosts: tuple[str, ...]  # host:port of every relatch serve
    http_port: int
    https_port: int
    certificate: Path
    key: Path
    files_dir: Path
    access_log: Path
    store: str = "10.0.0.20:8333"  # host:port of the S3 store (files kept in a bucket)


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"deploy/nginx.conf no longer has {old!r}: update tests/deploy/nginx.py"
    return text.replace(old, new)


def render_site(site: Site, shipped: str | None = None) -> str:
    """The shipped configuration with ``site``'s values in place of its examples."""
    text = SHIPPED.read_text() if shipped is None else shipped
    example = "".join(UPSTREAM_LINE.format(address=host) for host in EXAMPLE_HOSTS)
    ours = "".join(UPSTREAM_LINE.format(address=host) for host in site.hosts)
    text = _replace(text, example, ours)
    text = _replace(text, "    listen 80;\n", f"    listen 127.0.0.1:{site.http_port};\n")
    text = _replace(text, "    listen 443 ssl;\n", f"    listen 127.0.0.1:{site.https_port} ssl;\n")
    text = _replace(text, "/etc/ssl/relatch/fullchain.pem", str(site.certificate))
    text = _replace(text, "/etc/ssl/relatch/privkey.pem", str(site.key))
    text = _replace(text, "alias /srv/relatch/files/;", f"alias {site.files_dir}/;")
    text = _replace(text, "    server 10.0.0.20:8333;\n", f"    server {site.store};\n")
    text = _replace(text, "proxy_set_header Host 10.0.0.20:8333;",
                    f"proxy_set_header Host {site.store};")
    return _replace(text, "/var/log/nginx/relatch-access.log", str(site.access_log))


def main_config(work: Path, site_file: Path) -> str:
    """What Debian's /etc/nginx/nginx.conf holds around conf.d/, with every path in ``work``.
    ``user root``: the files are in the test's temporary directory, which only root reads
    (ignored, with a warning, when the run is not root)."""
    temp = {name: work / f"{name}_temp" for name in ("client_body", "proxy", "fastcgi",
                                                     "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(exist_ok=True)
    return f"""
daemon off;
user root;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log info;
events {{ worker_connections 512; }}
http {{
    include {MIME_TYPES};
    default_type application/octet-stream;
    sendfile on;
    access_log off;
    client_body_temp_path {temp['client_body']};
    proxy_temp_path {temp['proxy']};
    fastcgi_temp_path {temp['fastcgi']};
    uwsgi_temp_path {temp['uwsgi']};
    scgi_temp_path {temp['scgi']};
    include {site_file};
}}
"""


@dataclass
class Nginx:
    process: subprocess.Popen[bytes]
    work: Path
    site: Site

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.site.https_port}"

    def access_lines(self) -> list[str]:
        """The shipped access log's lines (format ``relatch``), once nginx wrote them."""
        log = self.site.access_log
        return log.read_text().splitlines() if log.exists() else []

    def error_log(self) -> str:
        path = self.work / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def available() -> str:
    """Why nginx cannot run here ("" when it can)."""
    return "" if NGINX.exists() else f"no nginx at {NGINX} (./dev test installs it)"


@contextmanager
def running_nginx(work: Path, site: Site) -> Iterator[Nginx]:
    """nginx with the rendered configuration, checked by ``nginx -t`` first, in the
    foreground; accepting connections when yielded, stopped (and waited for) after."""
    work.mkdir(parents=True, exist_ok=True)
    site_file = work / "relatch.conf"
    site_file.write_text(render_site(site))
    config = work / "nginx.conf"
    config.write_text(main_config(work, site_file))
    command = [str(NGINX), "-p", str(work), "-c", str(config)]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=60,
                             check=False)
    assert checked.returncode == 0, f"nginx -t refused the configuration:\n{checked.stderr}"
    with (work / "nginx.out").open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    nginx = Nginx(process, work, site)
    try:
        # A bound, not a speed target (a loaded 2-core machine).
        deadline = time.monotonic() + 60
        while not _accepts(site.https_port):
            assert process.poll() is None, f"nginx stopped:\n{nginx.error_log()}"
            assert time.monotonic() < deadline, f"nginx did not listen:\n{nginx.error_log()}"
            time.sleep(0.1)
        yield nginx
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # graceful: finish answers in progress
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
