"""How `dispatch preview` takes connections, with every limit in one place.

A thread per connection, blocked reading a request that never ends, let 400
half-sent requests hold 403 threads. Here one thread reads the request heads of
all connections without blocking, and closes those that take too long or grow
too big; a connection gets one of a few worker threads only once its head has
arrived whole. Event streams hold a worker while their page is open, so they are
bounded too: one more ends the oldest, whose page reconnects if it is still open.
"""

from __future__ import annotations

import queue
import re
import selectors
import socket
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Address = Any  # what accept() returns beside the socket: (host, port) for IPv4
Answer = Callable[[socket.socket, Address, bytes], None]
OnError = Callable[[socket.socket, Address], None]  # called inside ``except``
# The end of a request head: an empty line, after CRLF or bare LF line ends as http.server reads.
_HEAD_END = re.compile(rb"\n\r?\n")


@dataclass(frozen=True)
class Limits:
    """How much the preview gives any client; the defaults suit a browser with a few tabs."""

    head_seconds: float = 5.0  # for the request line and the headers
    head_bytes: int = 64 * 1024
    waiting: int = 512  # connections still sending their head; one more closes the oldest
    workers: int = 24  # threads answering complete requests
    queued: int = 64  # complete requests waiting for a worker; more are answered 503
    streams: int = 16  # open event streams; one more ends the oldest
    write_seconds: float = 30.0  # for a client that stops reading the answer
    stream_check_seconds: float = 1.0  # how often a stream looks whether its page went away

    def __post_init__(self) -> None:
        if self.streams >= self.workers:
            raise ValueError("streams must leave workers for the other requests")


def waiting_limit(limits: Limits) -> int:
    """``limits.waiting``, but never more than half of the files this process may open."""
    if sys.platform == "win32":
        return limits.waiting
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return limits.waiting if soft == resource.RLIM_INFINITY else min(limits.waiting, soft // 2)


@dataclass
class _Head:
    address: Address
    deadline: float
    data: bytearray = field(default_factory=bytearray)


class Intake:
    """Reads request heads in one thread and hands complete ones to a bounded pool."""

    def __init__(self, answer: Answer, on_error: OnError, limits: Limits) -> None:
        self._answer = answer
        self._on_error = on_error
        self.limits = limits
        self._waiting_limit = waiting_limit(limits)
        self._selector = selectors.DefaultSelector()
        self._wake_in, self._wake_out = socket.socketpair()
        for end in (self._wake_in, self._wake_out):
            end.setblocking(False)
        self._selector.register(self._wake_in, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._arrivals: list[tuple[socket.socket, Address]] = []
        self._waiting: OrderedDict[socket.socket, _Head] = OrderedDict()  # oldest first
        self._refused: OrderedDict[socket.socket, float] = OrderedDict()  # answered, draining
        self._ready: queue.Queue[tuple[socket.socket, Address, bytes] | None] = queue.Queue()
        self._idle = 0
        self._workers: list[threading.Thread] = []
        self._closed = threading.Event()
        self._reader = threading.Thread(
            target=self._read_heads, name="dispatch-preview-heads", daemon=True
        )
        self._reader.start()

    def admit(self, sock: socket.socket, address: Address) -> None:
        """Take a new connection (from the accepting thread)."""
        with self._lock:
            if self._closed.is_set():
                sock.close()
                return
            self._arrivals.append((sock, address))
        self._wake()

    def close(self, timeout: float = 5.0) -> None:
        """Close every connection not being answered and stop the threads."""
        self._closed.set()
        self._wake()
        self._reader.join(timeout)
        while True:
            try:
                item = self._ready.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                _close(item[0])
        with self._lock:
            workers = list(self._workers)
        for _ in workers:
            self._ready.put(None)
        for worker in workers:
            worker.join(timeout)

    # ---------------------------------------------------------------- the reading thread
    def _read_heads(self) -> None:
        try:
            while not self._closed.is_set():
                for key, _ in self._selector.select(self._next_deadline()):
                    if key.data is None:
                        self._drain_wakes()
                    elif key.data in self._refused:
                        self._discard_input(key.data)
                    else:
                        self._receive(key.data)
                self._take_arrivals()
                self._expire()
        finally:
            with self._lock:
                arrivals, self._arrivals = self._arrivals, []
            for sock, _ in arrivals:
                _close(sock)
            for sock in [*self._waiting, *self._refused]:
                self._forget(sock)
                _close(sock)
            self._selector.close()
            self._wake_in.close()
            self._wake_out.close()

    def _next_deadline(self) -> float | None:
        """Seconds until the oldest waiting or refused connection is due; None if none is."""
        due: list[float] = []
        if self._waiting:
            due.append(next(iter(self._waiting.values())).deadline)
        if self._refused:
            due.append(next(iter(self._refused.values())))
        return max(min(due) - time.monotonic(), 0.0) if due else None

    def _take_arrivals(self) -> None:
        with self._lock:
            arrivals, self._arrivals = self._arrivals, []
        for sock, address in arrivals:
            while len(self._waiting) >= self._waiting_limit:
                oldest = next(iter(self._waiting))  # the oldest: most likely stalled
                self._forget(oldest)
                _close(oldest)
            try:
                sock.setblocking(False)
                self._selector.register(sock, selectors.EVENT_READ, sock)
            except (OSError, ValueError):
                _close(sock)
                continue
            deadline = time.monotonic() + self.limits.head_seconds
            self._waiting[sock] = _Head(address, deadline)

    def _receive(self, sock: socket.socket) -> None:
        head = self._waiting.get(sock)
        if head is None:
            return
        try:
            chunk = sock.recv(16384)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._forget(sock)
            _close(sock)
            return
        start = max(len(head.data) - 2, 0)
        head.data += chunk
        if _HEAD_END.search(head.data, start):
            self._forget(sock)
            self._dispatch(sock, head.address, bytes(head.data))
        elif len(head.data) > self.limits.head_bytes:
            too_large = b"431 Request Header Fields Too Large"
            self._refuse(sock, too_large, b"the request is too large\n")

    def _expire(self) -> None:
        now = time.monotonic()
        while self._waiting:
            sock, head = next(iter(self._waiting.items()))
            if head.deadline > now:
                break
            self._refuse(sock, b"408 Request Timeout", b"the request took too long to arrive\n")
        while self._refused:
            sock, deadline = next(iter(self._refused.items()))
            if deadline > now:
                break
            self._forget(sock)
            _close(sock)

    def _refuse(self, sock: socket.socket, status: bytes, body: bytes) -> None:
        """Answer ``status``, then read and drop what the client still sends until it closes.

        Closing at once, with its request unread, would reset the connection, and the
        client could lose the answer that says why.
        """
        self._forget(sock)
        answer = b"HTTP/1.0 %s\r\nContent-Type: text/plain; charset=utf-8\r\n" % status
        answer += b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        try:
            sock.setblocking(False)
            sock.send(answer)
            sock.shutdown(socket.SHUT_WR)
            self._selector.register(sock, selectors.EVENT_READ, sock)
        except (OSError, ValueError):
            _close(sock)
            return
        while len(self._refused) >= self._waiting_limit:
            oldest = next(iter(self._refused))
            self._forget(oldest)
            _close(oldest)
        self._refused[sock] = time.monotonic() + self.limits.head_seconds

    def _discard_input(self, sock: socket.socket) -> None:
        try:
            if sock.recv(65536):
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._forget(sock)
        _close(sock)

    def _forget(self, sock: socket.socket) -> None:
        self._waiting.pop(sock, None)
        self._refused.pop(sock, None)
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass

    def _drain_wakes(self) -> None:
        try:
            while self._wake_in.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _wake(self) -> None:
        try:
            self._wake_out.send(b"\0")
        except OSError:
            pass  # the pipe is full (a wake is pending) or closed (stopping)

    # ---------------------------------------------------------------- the workers
    def _dispatch(self, sock: socket.socket, address: Address, head: bytes) -> None:
        if self._ready.qsize() >= self.limits.queued:
            self._refuse(sock, b"503 Service Unavailable", b"the preview is busy; reload\n")
            return
        sock.setblocking(True)
        self._ready.put((sock, address, head))
        with self._lock:
            if self._ready.qsize() > self._idle and len(self._workers) < self.limits.workers:
                worker = threading.Thread(
                    target=self._work,
                    name=f"dispatch-preview-worker-{len(self._workers) + 1}",
                    daemon=True,
                )
                self._workers.append(worker)
                self._idle += 1  # counted before it starts, so a burst does not spawn too many
                worker.start()

    def _work(self) -> None:
        while True:
            item = self._ready.get()
            with self._lock:
                self._idle -= 1
            if item is None:
                return
            sock, address, head = item
            try:
                self._answer(sock, address, head)
            except Exception:
                self._on_error(sock, address)
            finally:
                _close(sock, socket.SHUT_WR)  # as socketserver does: the answer is flushed
            with self._lock:
                self._idle += 1


class StreamSlots:
    """At most ``limit`` open event streams; opening one more ends the oldest."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._open: deque[threading.Event] = deque()
        self._lock = threading.Lock()

    def open(self) -> threading.Event:
        """A new stream's flag, set when the stream must end to make room."""
        ended = threading.Event()
        with self._lock:
            while len(self._open) >= self._limit:
                self._open.popleft().set()
            self._open.append(ended)
        return ended

    def close(self, ended: threading.Event) -> None:
        with self._lock:
            if ended in self._open:
                self._open.remove(ended)


def _close(sock: socket.socket, how: int = socket.SHUT_RDWR) -> None:
    try:
        sock.shutdown(how)
    except OSError:
        pass
    sock.close()
