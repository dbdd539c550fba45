"""Slow clients cannot starve the server (issue 18 §3).

Before, ``relatch serve`` ran gunicorn's gthread worker, which gives a connection to one of its
eight threads at the first byte; eight clients dribbling a header took the server offline.
Now the worker's main loop reads each request whole (``relatch.web.worker``) and closes slow
ones after RELATCH_HEADER_TIMEOUT / RELATCH_BODY_TIMEOUT. The end-to-end tests drive a real
``relatch serve`` with raw sockets; the first ones check the request reader on its own.
"""

import http.client
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest

from relatch.web.request_reader import IN_MEMORY, MAX_HEADER, Limits, Refusal, RequestReader
from tests.index.dists import build_wheel
from tests.serving import Server, running_server, wait_for

LIMITS = Limits(header_timeout=10, body_timeout=20, body_min_rate=500, max_body=10_000_000,
                too_large="File too large: the limit is 9 MB.")


def reader(now: float = 100.0) -> RequestReader:
    return RequestReader(LIMITS, now, fresh=True)


def refusal(data: bytes) -> Refusal:
    with pytest.raises(Refusal) as caught:
        reader().feed(data, 100.0)
    return caught.value


# --- the request reader ----------------------------------------------------------------------


def test_a_request_is_complete_when_its_header_is_in_whatever_the_pieces() -> None:
    request = b"GET /simple/ HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n"
    r = reader()
    for i, byte in enumerate(request):
        assert not r.complete, i
        r.feed(bytes([byte]), 100.0 + i)
    assert r.complete
    assert bytes(r.head) == request
    assert r.spool is None


def test_a_body_is_waited_for_and_bytes_after_the_request_stay_with_it() -> None:
    r = reader()
    r.feed(b"POST /legacy/ HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345", 100.0)
    assert not r.complete
    r.feed(b"67890GET / HTTP/1.1\r\n", 101.0)  # a pipelined request's start
    assert r.complete
    assert bytes(r.head).endswith(b"\r\n\r\n1234567890GET / HTTP/1.1\r\n")


def test_a_large_body_goes_to_a_temporary_file_not_memory() -> None:
    size = 3 * IN_MEMORY
    r = reader()
    r.feed(f"POST /legacy/ HTTP/1.1\r\nContent-Length: {size}\r\n\r\n".encode(), 100.0)
    for i in range(size // 4096):
        r.feed(bytes([i % 256]) * 4096, 100.0)
    assert r.complete
    assert len(r.head) <= IN_MEMORY
    assert r.spool is not None
    body = bytes(r.head).split(b"\r\n\r\n", 1)[1] + r.spool.read()
    assert body == b"".join(bytes([i % 256]) * 4096 for i in range(size // 4096))
    r.discard()


def test_the_header_deadline_counts_from_the_connection_not_from_the_last_byte() -> None:
    r = reader(now=100.0)
    assert r.deadline == 110.0
    r.feed(b"GET / HTTP/1.1\r\n", 105.0)
    r.feed(b"X-Slow: a", 109.0)
    assert r.deadline == 110.0
    assert r.timeout_kind() == "header"
    assert reader().timeout_kind() == "idle"


def test_a_body_may_pause_for_the_body_timeout_and_must_keep_the_minimum_rate() -> None:
    r = reader(now=100.0)
    r.feed(b"POST / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n", 100.0)
    assert r.deadline == 120.0  # 20 s for a first byte
    r.feed(b"x" * 5000, 101.0)
    assert r.deadline == 121.0  # no pause over 20 s; the rate allows 20 + 5000 / 500 = 30 s
    r.feed(b"x", 119.0)
    assert r.deadline == pytest.approx(130.002)  # now the average rate decides
    assert r.timeout_kind() == "body"


@pytest.mark.parametrize(("data", "status"), [
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 10000001\r\n\r\n", 413),
    (b"POST / HTTP/1.1\r\nExpect: something\r\n\r\n", 417),
    (b"GET / HTTP/1.1\nHost: x\n", 400),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEADER, 431),
])
def test_requests_a_thread_could_not_serve_safely_are_refused_at_once(data: bytes,
                                                                       status: int) -> None:
    assert refusal(data).status == status


def test_the_413_says_the_upload_limit_in_the_reason_as_twine_prints_it() -> None:
    answer = refusal(b"POST /legacy/ HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n").response()
    assert answer.startswith(b"HTTP/1.1 413 File too large: the limit is 9 MB.\r\n")
    assert b"Connection: close\r\n" in answer


def test_expect_100_continue_is_answered_once_the_header_is_in() -> None:
    r = reader()
    r.feed(b"POST / HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n", 100.0)
    assert r.wants_continue
    r = reader()
    r.feed(b"POST / HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\nbody", 100.0)
    assert r.complete and not r.wants_continue  # the body came anyway


# --- a real relatch serve, raw sockets ------------------------------------------------------

SLOW_HEADER = b"GET /simple/ HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
SLOW_BODY = (b"POST /legacy/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n"
             b"Content-Type: application/octet-stream\r\n\r\n")


@dataclass
class SlowClient:
    kind: str
    sock: socket.socket
    opened: float
    received: bytes = b""
    closed_at: float | None = None


class Dribbler(threading.Thread):
    """Sends every open slow client one more byte each second (idle ones nothing) and notes
    when the server closes each, and what it answered before that."""

    def __init__(self, clients: list[SlowClient]) -> None:
        super().__init__(daemon=True)
        self.clients = clients
        self.stopping = threading.Event()
        self.selector = selectors.DefaultSelector()
        for client in clients:
            self.selector.register(client.sock, selectors.EVENT_READ, client)

    def run(self) -> None:
        next_byte = time.monotonic() + 1
        while not self.stopping.is_set():
            for key, _ in self.selector.select(timeout=0.1):
                client: SlowClient = key.data
                try:
                    data = client.sock.recv(65536)
                except OSError:
                    data = b""
                client.received += data
                if not data:
                    client.closed_at = time.monotonic()
                    self.selector.unregister(client.sock)
            if time.monotonic() >= next_byte:
                next_byte += 1
                for client in self.clients:
                    if client.closed_at is None and client.kind != "idle":
                        with suppress(OSError):  # the server closed it: noted on read
                            client.sock.send(b"a")

    def still_open(self) -> list[SlowClient]:
        return [c for c in self.clients if c.closed_at is None]


@contextmanager
def slow_clients(server: Server, **counts: int) -> Iterator[Dribbler]:
    clients = []
    try:
        for kind, count in counts.items():
            for _ in range(count):
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                sock.sendall({"header": SLOW_HEADER, "body": SLOW_BODY + b"x",
                              "idle": b""}[kind])
                sock.setblocking(False)
                clients.append(SlowClient(kind, sock, time.monotonic()))
        dribbler = Dribbler(clients)
        dribbler.start()
        yield dribbler
        dribbler.stopping.set()
        dribbler.join(5)
    finally:
        for client in clients:
            client.sock.close()


def timed_get(server: Server, path: str, timeout: float = 5) -> tuple[int, float]:
    """Status and seconds of ``GET path`` on a new connection."""
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": f"localhost:{server.port}"})
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - start
    finally:
        conn.close()


def raw_exchange(server: Server, data: bytes, *, until: bytes = b"", timeout: float = 10
                 ) -> bytes:
    """Send ``data`` on a new connection; what comes back until ``until`` or the close."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while not (until and until in received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


@pytest.mark.slow
@pytest.mark.own_database  # a server on SQLite of its own
def test_dozens_of_slow_clients_leave_normal_requests_served_and_are_closed_in_time(
    tmp_path: Path,
) -> None:
    timeout = 5
    with running_server(tmp_path, RELATCH_HEADER_TIMEOUT=str(timeout),
                        RELATCH_BODY_TIMEOUT=str(timeout)) as server:
        server.create_account("owner")
        wheel = tmp_path / build_wheel("sample-pkg").filename
        wheel.write_bytes(build_wheel("sample-pkg").content)
        imported = server.relatch("index_import_file", str(wheel), "--owner", "owner")
        assert imported.returncode == 0, imported.stderr

        with slow_clients(server, header=64, body=64, idle=32) as dribbler:
            # 160 slow connections, 20 times the web server's 8 threads: pages still come
            # at once, on new connections, as a pip run's would.
            for path in ["/", "/simple/sample-pkg/"] * 4:
                status, seconds = timed_get(server, path)
                assert (path, status) == (path, 200)
                assert seconds < 3, f"{path} took {seconds:.1f} s beside the slow clients"
            assert len(dribbler.still_open()) == 160, "the pages were served beside them all"

            # Then the server closes every one of them: an idle connection silently, a header
            # or a body that is too slow with 408.
            assert wait_for(lambda: not dribbler.still_open(), timeout=30), (
                f"{len(dribbler.still_open())} slow connections still open")
            for client in dribbler.clients:
                assert client.closed_at is not None
                kept = client.closed_at - client.opened
                assert kept >= timeout - 0.5, f"{client.kind} closed after {kept:.1f} s"
                expected = b"" if client.kind == "idle" else b"HTTP/1.1 408 Request Timeout\r\n"
                assert client.received.startswith(expected), (client.kind, client.received)
                if client.kind == "idle":
                    assert client.received == b""

        assert timed_get(server, "/simple/sample-pkg/")[0] == 200


@pytest.mark.slow
@pytest.mark.own_database  # a server on SQLite of its own
def test_keep_alive_pipelining_continue_and_refusals_over_raw_sockets(tmp_path: Path) -> None:
    with running_server(tmp_path, RELATCH_MAX_UPLOAD_MB="1") as server:
        host = f"Host: localhost:{server.port}\r\n".encode()
        # Two requests in one packet, the second closing: two answers on one connection.
        answers = raw_exchange(server, b"GET /simple/ HTTP/1.1\r\n" + host + b"\r\n"
                               b"GET / HTTP/1.1\r\n" + host + b"Connection: close\r\n\r\n")
        assert answers.count(b"HTTP/1.1 200 OK\r\n") == 2, answers[:300]

        # A client that waits for "100 Continue" gets it, sends its body, and gets the answer.
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            body = b"x" * 3_000_000  # past what is kept in memory: read back from a file
            sock.sendall(b"POST /legacy/ HTTP/1.1\r\n" + host + b"Expect: 100-continue\r\n"
                         + f"Content-Length: {len(body)}\r\n\r\n".encode())
            assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(body)
            answer = sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 403 No API token"), answer[:200]

        # A body larger than any endpoint takes is refused before it is sent.
        answer = raw_exchange(server, b"POST /legacy/ HTTP/1.1\r\n" + host
                              + b"Content-Length: 99999999999\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 413 File too large: the limit is 1 MB"), answer
        # A chunked body (Django reads none without a length) is refused, not left hanging.
        answer = raw_exchange(server, b"POST /legacy/ HTTP/1.1\r\n" + host
                              + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 411 Length Required\r\n"), answer

        assert timed_get(server, "/simple/")[0] == 200
