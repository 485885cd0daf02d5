"""`dispatch preview` gives no client more than its share: real sockets against a real server.

The reproduction: 400 connections, each sending half a request line and then nothing,
held 403 threads of the preview, each blocked for ever reading its request.
Nothing here asserts how fast anything happened, only that it did.
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatch_mail.browser.server import Limits, PreviewServer
from tests.helpers.project import REPO_CONFIG, create_project
from tests.helpers.send import spawn

ROOT = Path(__file__).resolve().parent.parent
SUBJECT = "DPDK Dispatch Q1 2026"
WAIT = 60.0  # generous: the machine may be busy
HUNG = 400


@pytest.fixture
def issue_dir(tmp_path: Path) -> Path:
    create_project(tmp_path, config=REPO_CONFIG, issues={"2026-q1": ROOT / "issues" / "2026-q1"})
    return tmp_path / "issues" / "2026-q1"


def preview(issue_dir: Path, limits: Limits | None = None) -> PreviewServer:
    return PreviewServer(issue_dir, 0, poll_interval=0.05, keepalive=0.3, limits=limits)


def get(port: int, path: str = "/", headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def half_sent(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that each send part of a request line, then nothing."""
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        sock.sendall(b"GET / HT")
        socks.append(sock)
    return socks


def closed_by_server(sock: socket.socket, timeout: float = WAIT) -> bool:
    """Whether the server closes ``sock`` (EOF or reset) within ``timeout``; reads what it sent."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return True


def still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.settimeout(WAIT)


def threads_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    match = re.search(r"^Threads:\s+(\d+)$", status, re.MULTILINE)
    assert match, status
    return int(match.group(1))


@pytest.fixture
def hung() -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    yield socks
    for sock in socks:
        sock.close()


# ------------------------------------------------------------------ the reproduction
def test_half_sent_requests_hold_no_threads_and_are_closed(
    issue_dir: Path, hung: list[socket.socket]
) -> None:
    project = issue_dir.parent.parent
    proc = spawn(["preview", "issues/2026-q1", "--port", "0"], project)
    try:
        assert proc.stderr is not None
        port = None
        for line in proc.stderr:
            found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            if found:
                port = int(found.group(1))
                break
        assert port, "the preview did not say where it listens"

        hung += half_sent(port, HUNG)
        # Answered while all of them hang; accepted after them, so they were all taken in.
        status, body = get(port)
        threads = threads_of(proc.pid)

        assert status == 200 and SUBJECT in body.decode("utf-8")
        assert threads < 40, f"{threads} threads for {HUNG} half-sent requests"
        assert all(closed_by_server(sock) for sock in hung)
        assert get(port)[0] == 200  # and it goes on serving
    finally:
        proc.kill()
        proc.communicate()


def test_a_request_that_trickles_in_is_closed_too(issue_dir: Path) -> None:
    """A byte now and then resets no timer: the whole head has a deadline."""
    with preview(issue_dir, Limits(head_seconds=1.0)) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
        stop = threading.Event()

        def trickle() -> None:
            sock.sendall(b"GET / HTTP/1.0\r\n")
            while not stop.wait(0.2):
                try:
                    sock.sendall(b"X")  # a header line that never ends
                except OSError:
                    return

        sender = threading.Thread(target=trickle, daemon=True)
        sender.start()
        try:
            assert closed_by_server(sock)
        finally:
            stop.set()
            sender.join(WAIT)
            sock.close()


def test_when_too_many_wait_the_oldest_is_closed(issue_dir: Path) -> None:
    with preview(issue_dir, Limits(waiting=4, head_seconds=WAIT * 3)) as server:
        socks = half_sent(server.port, 4)
        try:
            socks += half_sent(server.port, 1)

            assert closed_by_server(socks[0])
            assert all(still_open(sock) for sock in socks[2:])
            assert get(server.port)[0] == 200  # room is made for it the same way
        finally:
            for sock in socks:
                sock.close()


def test_a_head_beyond_the_size_limit_is_refused(issue_dir: Path) -> None:
    # 100 headers of 1,000 bytes: within http.server's own limits (100 headers, 64 KB a line)
    headers = {f"X-Filler-{n}": "x" * 1000 for n in range(99)}
    with preview(issue_dir) as server:
        assert get(server.port, "/", headers)[0] == 431
        assert get(server.port, "/", {"X-Small": "x" * 1000})[0] == 200


# ------------------------------------------------------------------ event streams
class Stream:
    """A raw Server-Sent Events connection, read frame by frame."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.sock.sendall(b"GET /events HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        self.file = self.sock.makefile("rb")
        assert self.file.readline().startswith(b"HTTP/1.0 200")
        while self.file.readline() not in (b"\r\n", b"\n"):
            pass
        assert self.frame() == b"retry: 1000"

    def frame(self) -> bytes | None:
        """The next frame, or None at the end of the stream."""
        lines: list[bytes] = []
        while True:
            line = self.file.readline()
            if not line:
                return None
            if line == b"\n":
                return b"".join(lines)
            lines.append(line.rstrip(b"\n"))

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_event_streams_are_bounded_and_the_oldest_ends(issue_dir: Path) -> None:
    with preview(issue_dir, Limits(streams=2, workers=4)) as server:
        first = Stream(server.port)
        second = Stream(server.port)
        try:
            assert first.frame() == b": keep-alive"
            third = Stream(server.port)
            try:
                frame = first.frame()
                while frame == b": keep-alive":  # one may have been on its way
                    frame = first.frame()
                assert frame is None  # ended: its page's EventSource would reconnect
                assert second.frame() == b": keep-alive"
                assert third.frame() == b": keep-alive"
                assert get(server.port)[0] == 200
            finally:
                third.close()
        finally:
            first.close()
            second.close()


def test_in_process_the_thread_count_stays_bounded(issue_dir: Path) -> None:
    with preview(issue_dir, Limits(head_seconds=WAIT * 3)) as server:
        before = threading.active_count()
        socks = half_sent(server.port, 100)
        try:
            assert get(server.port)[0] == 200
            assert threading.active_count() - before <= 2  # at most the workers that answered
        finally:
            for sock in socks:
                sock.close()
