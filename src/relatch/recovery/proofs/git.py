"""Finding a project's repository in its release metadata, and asking it for a branch.

Only ``https://`` (and, for loopback testing and self-hosted forges, ``http://`` and
``git://``) URLs are ever contacted: never ``file://``, ``ssh://``, ``ext::`` or a path, which
would let metadata make the server read local files or run commands. git itself is told the
same through GIT_ALLOW_PROTOCOL, so a redirect cannot reach another transport either.

Only hosts in the REPOSITORY_HOSTS setting are contacted, and only at public addresses unless
the address itself is listed (``host_refusal``): release metadata cannot make the server probe
its own network (SSRF). git is then pinned to the addresses that were checked, so DNS cannot
answer differently between the check and git's own lookup (rebinding), and it is killed, with
its helpers, after REPOSITORY_CHECK_TIMEOUT seconds.
"""

import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

from relatch.index.models import Project

ALLOWED_SCHEMES = frozenset({"https", "http", "git"})
REPOSITORY_LABELS = frozenset({"source", "source code", "repository", "code", "git"})
FORGE_HOSTS = frozenset({"github.com", "gitlab.com", "codeberg.org", "bitbucket.org"})
DEFAULT_PORTS = {"https": 443, "http": 80, "git": 9418}
MAX_URL_LENGTH = 500
MAX_ERROR_LENGTH = 500
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class LsRemote:
    """What ``git ls-remote`` answered: the ref lines, or why it could not answer."""

    lines: list[str]
    error: str = ""
    timed_out: bool = False
    # The host's name did not resolve (perhaps for a moment): nothing was contacted.
    unresolved: bool = False


@dataclass(frozen=True)
class _Target:
    """Where a URL may be fetched from: its host, port, and the addresses that were checked;
    or, in ``refusal``, why it may not."""

    host: str = ""
    port: int = 0
    addresses: tuple[Address, ...] = ()
    refusal: str = ""
    unresolved: bool = False


def is_allowed_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [IPv6 literal
        return False
    return (
        len(url) <= MAX_URL_LENGTH and parts.scheme in ALLOWED_SCHEMES and bool(parts.hostname)
        and not any(c.isspace() for c in url)
    )


def repository_url(label: str, url: str) -> str | None:
    """The git URL that a Project-URL entry names, or None when it names no repository."""
    url = url.strip()
    if not is_allowed_url(url):
        return None
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host in FORGE_HOSTS:
        segments = [s for s in parts.path.split("/") if s][:2]
        return f"https://{host}/{'/'.join(segments)}" if len(segments) == 2 else None
    if parts.path.endswith(".git") or label.strip().lower() in REPOSITORY_LABELS:
        return url
    return None


def repository_urls(project: Project) -> list[str]:
    """Every repository URL the project's releases name, newest release first, no repeats."""
    found: dict[str, None] = {}
    for release in project.releases.order_by("-created_at"):
        entries = release.project_urls if isinstance(release.project_urls, dict) else {}
        for label, url in entries.items():
            repo = repository_url(str(label), str(url))
            if repo:
                found[repo] = None
    return list(found)


def _environment() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_TERMINAL_PROMPT": "0",  # never wait for a password nobody will type
        "GIT_ALLOW_PROTOCOL": "http:https:git",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,  # no helper or rewrite from the server's own config
        "HOME": os.devnull,
    }


def ls_remote(*, url: str, branch: str, timeout: float | None = None) -> LsRemote:
    """List ``refs/heads/<branch>`` of the repository at ``url`` (no shell, bounded time).
    Refused, without running git, when ``host_refusal(url)`` is not None; otherwise git
    connects only to the addresses that were checked, and is killed after ``timeout``
    seconds (default REPOSITORY_CHECK_TIMEOUT). Runs in the worker, never in a web request."""
    target = _vet(url)
    if target.refusal:
        return LsRemote([], error=target.refusal, unresolved=target.unresolved)
    pinned_url, options = _pinned(url, target)
    command = ["git", *options, "ls-remote", "--heads", "--", pinned_url,
               f"refs/heads/{branch}"]
    limit = float(settings.REPOSITORY_CHECK_TIMEOUT if timeout is None else timeout)
    return _run(command, limit)


# -- which hosts and addresses may be contacted --------------------------------------------


def host_refusal(url: str) -> str | None:
    """None when Relatch may contact ``url``; else a plain sentence saying why not. The host
    must be in REPOSITORY_HOSTS, and every address it resolves to must be public unless that
    address is itself listed. Resolving is the only network use: nothing is contacted."""
    return _vet(url).refusal or None


def _allowlist() -> tuple[frozenset[str], frozenset[Address]]:
    """The allowed host names, and the IP literals among them."""
    names = {str(h).strip().lower().strip("[]") for h in settings.REPOSITORY_HOSTS}
    literals = {a for a in map(_as_address, names) if a is not None}
    return frozenset(names), frozenset(literals)


def _as_address(text: str) -> Address | None:
    """``text`` as an IP address, IPv4-mapped IPv6 unwrapped (so ::ffff:127.0.0.1 is
    127.0.0.1 and meets the same rules); None for a name."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _vet(url: str) -> _Target:
    if not is_allowed_url(url):
        return _Target(refusal="Relatch only contacts https://, http:// and git:// repository "
                               "addresses.")
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return _Target(refusal="The repository address has an invalid port.")
    host = (parts.hostname or "").lower()
    names, literals = _allowlist()
    literal = _as_address(host)
    if host not in names and (literal is None or literal not in literals):
        return _Target(host=host, refusal=f"The host {host} is not one this Relatch server "
                                          "checks repositories on.")
    return _resolved(host, port, literals)


def _resolved(host: str, port: int, literals: frozenset[Address]) -> _Target:
    addresses = _resolve(host, port)
    if not addresses:
        return _Target(host=host, refusal=f"The host {host} cannot be resolved.",
                       unresolved=True)
    for address in addresses:
        kind = _non_public_kind(address)
        # A private, loopback or link-local address only when the operator named it.
        if kind and address not in literals:
            return _Target(host=host, refusal=f"The host {host} resolves to {address}, a "
                                              f"{kind} address, which Relatch does not contact.")
    return _Target(host=host, port=port, addresses=addresses)


def _resolve(host: str, port: int) -> tuple[Address, ...]:
    literal = _as_address(host)
    if literal is not None:
        return (literal,)
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return ()
    addresses = (_as_address(str(info[4][0]).split("%")[0]) for info in found)
    return tuple(dict.fromkeys(a for a in addresses if a is not None))


def _non_public_kind(address: Address) -> str:
    """What kind of non-public address ``address`` is, or "" when it is globally routable."""
    for kind in ("unspecified", "loopback", "link-local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind.replace('-', '_')}"):
            return kind
    return "" if address.is_global else "non-public"


# -- running git, pinned to the checked addresses ------------------------------------------


def _pinned(url: str, target: _Target) -> tuple[str, list[str]]:
    """The URL git fetches and its options, so that it connects only to ``target``'s
    addresses: git:// to the address itself, http(s) through curl's resolve list."""
    parts = urlsplit(url)
    if parts.scheme == "git":
        # DNS rebinding: git would look the name up again; it gets the checked address.
        return _with_host(parts, target.addresses[0], target.port), []
    # Redirects are refused: a 302 to an internal address would undo every check above.
    options = ["-c", "http.followRedirects=false"]
    if _as_address(target.host) is None:  # an IP literal is not looked up
        resolve = ",".join(f"[{a}]" if a.version == 6 else str(a) for a in target.addresses)
        options += ["-c", f"http.curloptResolve={target.host}:{target.port}:{resolve}"]
    return url, options


def _with_host(parts: SplitResult, address: Address, port: int) -> str:
    host = f"[{address}]" if address.version == 6 else str(address)
    return parts._replace(netloc=f"{host}:{port}").geturl()


def _run(command: list[str], timeout: float) -> LsRemote:
    # A session of its own: on timeout the whole group (git and git-remote-https) is killed,
    # so no helper lingers holding a connection or a worker slot.
    with subprocess.Popen(  # noqa: S603 - fixed argv, checked and pinned URL, no shell
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_environment(), start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            return LsRemote([], error=f"No answer within {timeout:g} seconds.", timed_out=True)
    if process.returncode != 0:
        return LsRemote([], error=err.strip()[-MAX_ERROR_LENGTH:]
                        or f"git exit {process.returncode}")
    return LsRemote([line for line in out.splitlines() if line.strip()])


def _kill_group(process: subprocess.Popen[str]) -> None:
    """Kill git's process group, then reap git (it is not reaped yet, so its id is still
    the group's and cannot belong to anyone else)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.communicate(timeout=5)
