"""The gunicorn worker ``relatch serve`` runs: gthread, with each request read in full first.

gunicorn's gthread worker hands a connection to one of its threads as soon as a first byte
arrives, and that thread then reads the request header and, through the application, the body
with blocking reads and no deadline. Eight clients sending a header one byte a second held the
eight threads of the default set-up, and the server answered nothing (issue 18 §3).

This worker keeps gthread (its threads, keep-alive handling, graceful stop, and the index
path tuned on it in docs/performance.md) and changes one thing: the main loop, which already
polls every socket, reads each request — header and body — without blocking, and a thread gets
the connection only once the whole request is there. A slow or idle client then costs a socket
and a few kilobytes, never a thread, and is closed when it is too slow:

- the header must be complete within ``HEADER_TIMEOUT`` seconds of the connection (or of the
  first byte of a request on a kept-alive connection, which may first stay idle for gunicorn's
  keep-alive timeout); an idle connection is closed silently, a partial header gets 408;
- the body may pause at most ``BODY_TIMEOUT`` seconds, and must arrive at ``BODY_MIN_RATE``
  bytes a second on average after its first ``BODY_TIMEOUT`` seconds (Apache's mod_reqtimeout
  rule), else 408.

Bodies up to ``IN_MEMORY`` bytes are kept in memory; the rest of a larger body (an upload of
up to RELATCH_MAX_UPLOAD_MB) goes to an unnamed temporary file, which the thread then reads as
if from the socket, so no upload is ever whole in memory and nothing is left after a kill.
A body larger than any endpoint accepts is refused with 413 before it is read, a chunked body
with 411 (Django reads no body without Content-Length, so such a request never worked),
``Expect: 100-continue`` is answered here once the header is in.

Why not another design (the measurements are in docs/operations.md, "Slow clients"): an
asynchronous front proxy in Python in front of gunicorn costs a second hop on every request;
gevent or eventlet workers would run Argon2 and SQLite calls on the event loop; more threads
only move the number of slow clients needed. Responses are written by the thread as before
(sendfile for files), so a client that stops reading a large response still holds a thread:
the front proxy of docs/operations.md buffers responses when that matters.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial
from typing import IO, Any

from gunicorn.http.message import Request
from gunicorn.http.parser import RequestParser
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

from relatch.web.request_reader import Limits, Refusal, RequestReader, size_limit_message

# One read from a socket, and at most this many reads for one socket per turn of the loop.
READ_SIZE = 64 * 1024
READS_PER_TURN = 16
# How often the main loop looks for connections past their deadline, and logs what it closed.
SWEEP_INTERVAL = 0.25
LOG_INTERVAL = 60.0
# A refused request's connection stays open this long to read what the client still sends
# (so it reads the answer instead of a reset), and at most this much of it (413: see Limits).
LINGER = 2.0
LINGER_BYTES = 64 * 1024


class GatheredUnreader(SocketUnreader):
    """gunicorn's socket unreader, which first gives back what the main loop read: the start
    of the request from memory, then the rest of its body from the spool file."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.spool: IO[bytes] | None = None

    def load(self, head: bytes, spool: IO[bytes] | None) -> None:
        self.release()
        self.unread(head)
        self.spool = spool

    def chunk(self, size_hint: int | None = None) -> bytes:
        if self.spool is not None:
            data = self.spool.read(min(max(size_hint or 0, READ_SIZE), self.max_body_chunk))
            if data:
                return data
            self.release()
        return bytes(super().chunk(size_hint))

    def take_rest(self) -> bytes:
        """What was read past the request just served: the start of the next one."""
        data = self.take_buffered()
        if self.spool is not None:
            data += self.spool.read()
            self.release()
        return bytes(data)

    def release(self) -> None:
        if self.spool is not None:
            self.spool.close()
            self.spool = None


class _Request(Request):
    # The main loop answers "Expect: 100-continue" once the header is in; gunicorn would send
    # a second "100 Continue" after the body.
    _policy_expect_continue = False


class _Parser(RequestParser):
    mesg_class = _Request

    def __init__(self, cfg: Any, sock: socket.socket, client: Any) -> None:
        super().__init__(cfg, sock, client)
        self.unreader = GatheredUnreader(sock)


@dataclass
class _Lingering:
    """A refused connection: its answer sent, what the client still sends read and dropped."""

    deadline: float
    left: int


class RequestBufferingWorker(ThreadWorker):
    """gthread, with every request read whole by the main loop before a thread serves it."""

    def run(self) -> None:
        from django.conf import settings  # the application is loaded: settings are ready

        self.limits = Limits(
            header_timeout=settings.HEADER_TIMEOUT, body_timeout=settings.BODY_TIMEOUT,
            body_min_rate=settings.BODY_MIN_RATE,
            # The largest body an endpoint takes: an upload and its form fields (/legacy/).
            max_body=settings.MAX_UPLOAD_SIZE + settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
            too_large=size_limit_message(),
        )
        # TLS, HTTP/2 and the PROXY protocol are gunicorn options relatch serve does not use;
        # with one of them on, the worker is plain gthread.
        cfg = self.cfg
        self.buffering = not (cfg.is_ssl or cfg.proxy_protocol != "off"
                              or cfg.http2_cleartext != "off")
        self.reading: dict[TConn, RequestReader] = {}
        self.lingering: dict[TConn, _Lingering] = {}
        self.closed: Counter[str] = Counter()
        self.next_sweep = 0.0
        self.next_log = time.monotonic() + LOG_INTERVAL
        self.stop_capped = False
        super().run()

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            # Stopping. The listening socket stays open in this process until it exits (after
            # the graceful timeout, for an upload in flight), and the kernel keeps completing
            # connections on it that nobody accepts: a client would wait for seconds, then get
            # a reset, and nginx would try the next host late (or answer an upload 502).
            # Closed now (the arbiter closed its copy already), a new connection is refused
            # at once and goes to another host.
            for listener in self.sockets:
                listener.close()

    # --- connections in, requests to the threads ------------------------------------------

    def accept(self, listener: socket.socket) -> None:
        if not self.buffering:
            super().accept(listener)
            return
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())  # non-blocking
        self._read_request(conn, RequestReader(self.limits, time.monotonic(), fresh=True))

    def on_client_socket_readable(self, conn: TConn, client: Any) -> None:
        """A kept-alive connection sends its next request."""
        if not self.buffering:
            super().on_client_socket_readable(conn, client)
            return
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_request(conn, RequestReader(self.limits, time.monotonic(), fresh=False))

    def finish_request(self, conn: TConn, fs: Any) -> None:
        keep = (self.buffering and not fs.cancelled() and fs.exception() is None
                and fs.result() is True)
        unreader = getattr(conn.parser, "unreader", None)
        if keep and isinstance(unreader, GatheredUnreader):
            if rest := unreader.take_rest():
                # The client sent its next request already: read the rest of it here.
                reader = RequestReader(self.limits, time.monotonic(), fresh=False)
                self._read_request(conn, reader, rest)
                return
        elif isinstance(unreader, GatheredUnreader):
            unreader.release()
        super().finish_request(conn, fs)

    def _read_request(self, conn: TConn, reader: RequestReader, data: bytes = b"") -> None:
        self.reading[conn] = reader
        self._on_readable(conn, registered=False, data=data)
        if conn in self.reading:
            self.poller.register(conn.sock, selectors.EVENT_READ,
                               partial(self._on_readable, conn))

    def _on_readable(self, conn: TConn, _fileobj: Any = None, *, registered: bool = True,
                     data: bytes = b"") -> None:
        reader = self.reading.get(conn)
        if reader is None:  # closed earlier in this turn of the loop
            return
        try:
            if data:
                self._feed(conn, reader, data, registered=registered)
            if conn in self.reading:
                self._read_more(conn, reader, registered=registered)
        except Exception:
            # An exception here would end the worker and every request it serves.
            self.log.exception("Error reading a request from %s", conn.client)
            if conn in self.reading:
                self._drop(conn, registered=registered)

    def _read_more(self, conn: TConn, reader: RequestReader, *, registered: bool) -> None:
        for _ in range(READS_PER_TURN):
            try:
                data = conn.sock.recv(READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:  # the client closed or reset the connection
                self._drop(conn, registered=registered)
                return
            self._feed(conn, reader, data, registered=registered)
            if conn not in self.reading:
                return

    def _feed(self, conn: TConn, reader: RequestReader, data: bytes, *,
              registered: bool = False) -> None:
        try:
            reader.feed(data, time.monotonic())
        except Refusal as refusal:
            self._refuse(conn, refusal, registered=registered)
            return
        if reader.wants_continue:
            reader.wants_continue = False
            self._send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
        if reader.complete:
            self._dispatch(conn, reader, registered=registered)

    def _dispatch(self, conn: TConn, reader: RequestReader, *, registered: bool) -> None:
        del self.reading[conn]
        if registered:
            self.poller.unregister(conn.sock)
        if conn.parser is None:
            conn.parser = _Parser(self.cfg, conn.sock, conn.client)
            conn.initialized = True
        conn.parser.unreader.load(bytes(reader.head), reader.spool)
        conn.data_ready = True
        self.enqueue_req(conn)

    # --- slow, refused and departed clients -----------------------------------------------

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        if now < self.next_sweep:
            return
        self.next_sweep = now + SWEEP_INTERVAL
        if not self.alive and not self.stop_capped:
            # Stopping: connections that have not started a request close as kept-alive
            # ones do; a request on its way (an upload) may finish within the graceful timeout.
            self.stop_capped = True
            for reader in self.reading.values():
                if not reader.started:
                    reader.deadline = min(reader.deadline, now + STOP_KEEPALIVE_LINGER)
        for conn, reader in list(self.reading.items()):
            if reader.deadline <= now:
                kind = reader.timeout_kind()
                self.closed[kind] += 1
                if kind == "idle":
                    self._drop(conn)
                else:
                    self._refuse(conn, Refusal(408, "The request came too slowly.", kind=kind))
        for conn, linger in list(self.lingering.items()):
            if linger.deadline <= now:
                self._close_lingering(conn)
        if now >= self.next_log:
            self.next_log = now + LOG_INTERVAL
            self._log_closed()

    def _log_closed(self) -> None:
        if not self.closed:
            return
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(self.closed.items()))
        self.log.info(
            "Closed %d slow or refused connections in the last %.0f s (%s); header timeout "
            "%g s, body timeout %g s", sum(self.closed.values()), LOG_INTERVAL, counts,
            self.limits.header_timeout, self.limits.body_timeout,
        )
        self.closed.clear()

    def _refuse(self, conn: TConn, refusal: Refusal, *, registered: bool = True) -> None:
        if refusal.kind == "refused":
            self.closed[f"refused {refusal.status}"] += 1
            self.log.debug("Refused a request from %s: %s %s", conn.client, refusal.status,
                           refusal.message)
        elif refusal.kind == "spool":
            self.closed["no room to spool"] += 1
            self.log.error("Refused a request from %s: cannot write its body to a temporary "
                           "file (%s)", conn.client, refusal.__cause__)
        reader = self.reading.pop(conn)
        reader.discard()
        self._send(conn, refusal.response())
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._drop(conn, registered=registered, reading=False)
            return
        # Read and drop what the client still sends, so it reads the answer, not a reset. A
        # refused upload (413) gets its whole declared body's worth; slow clients get nothing.
        left = 2 * self.limits.max_body if refusal.status == 413 else LINGER_BYTES
        if refusal.status == 408:
            left = 0
        linger = _Lingering(deadline=time.monotonic() + LINGER, left=left)
        if left <= 0:
            self._drop(conn, registered=registered, reading=False)
            return
        self.lingering[conn] = linger
        if registered:
            self.poller.modify(conn.sock, selectors.EVENT_READ,
                               partial(self._on_lingering, conn))
        else:
            self.poller.register(conn.sock, selectors.EVENT_READ,
                                 partial(self._on_lingering, conn))

    def _on_lingering(self, conn: TConn, _fileobj: Any = None) -> None:
        linger = self.lingering.get(conn)
        if linger is None:
            return
        for _ in range(READS_PER_TURN):
            try:
                data = conn.sock.recv(READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            linger.left -= len(data)
            if not data or linger.left <= 0:
                self._close_lingering(conn)
                return
            linger.deadline = time.monotonic() + LINGER

    def _close_lingering(self, conn: TConn) -> None:
        del self.lingering[conn]
        self._close(conn, registered=True)

    def _drop(self, conn: TConn, *, registered: bool = True, reading: bool = True) -> None:
        if reading and (reader := self.reading.pop(conn, None)):
            reader.discard()
        self._close(conn, registered=registered)

    def _close(self, conn: TConn, *, registered: bool) -> None:
        if registered:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        conn.close()

    @staticmethod
    def _send(conn: TConn, data: bytes) -> None:
        with contextlib.suppress(OSError):
            conn.sock.send(data)  # small, into an empty send buffer: never blocks
