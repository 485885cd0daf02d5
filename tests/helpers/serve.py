"""`dispatch serve` as a real process on loopback: started with ``--port 0``, asked over HTTP.

The server prints ``serving http://127.0.0.1:PORT/…`` once it listens; ``start_serve``
waits for that line and reads the port from it, and the rest of its output is
collected as it comes (for tests that check what it logs, or never logs).
"""

from __future__ import annotations

import http.client
import queue
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.send import spawn

WAIT = 30  # seconds for any one request, start or stop


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


@dataclass
class Served:
    """A running `dispatch serve`; its output is collected as it comes."""

    proc: subprocess.Popen[str]
    root: Path
    port: int = 0
    lines: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return Reply(
                response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
            )
        finally:
            conn.close()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("dispatch serve did not stop:\n" + self.output) from None
        for thread in self.threads:
            thread.join(timeout=WAIT)
        return code

    @property
    def output(self) -> str:
        return "".join(self.lines)


def start_serve(root: Path, *args: str, **env: str) -> Served:
    """`dispatch serve --port 0` in ``root``; returns once it printed its address."""
    proc = spawn(["serve", "--port", "0", *args], root, **env)
    served = Served(proc, root)
    first: queue.Queue[str] = queue.Queue()

    def read(stream: object, announce: bool) -> None:
        for line in stream:  # type: ignore[attr-defined]
            served.lines.append(line)
            if announce and line.startswith("serving "):
                first.put(line)
        first.put("")

    for stream, announce in ((proc.stdout, True), (proc.stderr, False)):
        served.threads.append(threading.Thread(target=read, args=(stream, announce), daemon=True))
        served.threads[-1].start()
    line = first.get(timeout=WAIT)
    if not line.startswith("serving http://127.0.0.1:"):
        served.stop()
        raise AssertionError("dispatch serve did not start:\n" + served.output)
    served.port = int(line.split("http://127.0.0.1:", 1)[1].split("/", 1)[0])
    return served
