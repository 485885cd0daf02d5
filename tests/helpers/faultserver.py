"""A misbehaving SMTP server in a process of its own: the fault server of the soak.

``python -m tests.helpers.faultserver --plan PLAN.json --log EVENTS`` runs
smtp_server.py's aiosmtpd server with a handler that fails on purpose,
randomly but reproducibly: every decision about a recipient is a hash of the
seed, the address and how many times the address was tried, so the same seed
injects the same faults into the same tries whatever the timing.

- ``451-rcpt`` / ``451-data``: a transient refusal at RCPT or after DATA;
- ``421``: "closing" at RCPT, then the connection is closed;
- ``drop``: the message is kept, then the connection dropped before the reply
  (RFC 1047: the sender cannot know the server has it);
- ``stall-rcpt`` / ``stall-data``: no answer for longer than the client's
  timeout (the message is not kept);
- ``550``: a fixed, seeded set of recipients is refused for good at RCPT;
- ``454``: "throttling" at RCPT whenever more than a set number of messages
  were accepted in the last half second.

Every accepted message and every fault is one line appended to the event log
(``kind TAB recipient TAB Message-ID``), written with O_APPEND at once, so the
log is complete whatever happens to the sender: it is the ground truth the soak
(soak.py) counts against.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Self

from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.helpers.smtp_server import DROP, Recorder, SmtpServer

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("451-rcpt", "451-data", "421", "drop", "stall-rcpt", "stall-data", "550", "454")
_MESSAGE_ID = re.compile(rb"(?im)^message-id:[ \t]*(<[^>\r\n]*>)")


# ------------------------------------------------------------------ the plan of faults
@dataclass(frozen=True)
class FaultPlan:
    """Shares are per try; a recipient meets faults only in its first ``faulty_tries`` tries."""

    seed: int = 1
    rcpt_451: float = 0.04
    close_421: float = 0.001  # each one also halves the sender's rate: see docs/reliability.md
    stall_rcpt: float = 0.002
    data_451: float = 0.03
    drop_after_data: float = 0.004
    stall_data: float = 0.002
    permanent: float = 0.01  # share of the list refused with 550 on every try
    faulty_tries: int = 3
    stall_seconds: float = 3.0  # must be longer than the sender's --timeout
    throttle_limit: int = 200  # at most this many accepted messages in any half second, else 454
    throttle_tries: int = 6  # a recipient is throttled in its first tries only
    # and a seeded share is throttled on its first try whatever the rate, so that a slow machine,
    # which never reaches throttle_limit, still proves the 454 path
    throttle_share: float = 0.004

    def draw(self, *key: object) -> float:
        """A number in [0, 1) fixed by the seed and the key: the same in every run."""
        digest = hashlib.blake2b(
            "|".join(map(str, (self.seed, *key))).encode(), digest_size=8
        ).digest()
        return int.from_bytes(digest, "big") / 2**64

    def is_permanent(self, address: str) -> bool:
        return self.draw("permanent", address) < self.permanent

    def rcpt_fault(self, address: str, attempt: int) -> str | None:
        if attempt > self.faulty_tries:
            return None
        u = self.draw("rcpt", address, attempt)
        for kind, share in (
            ("451-rcpt", self.rcpt_451),
            ("421", self.close_421),
            ("stall-rcpt", self.stall_rcpt),
        ):
            if u < share:
                return kind
            u -= share
        return None

    def data_fault(self, address: str, attempt: int) -> str | None:
        if attempt > self.faulty_tries:
            return None
        u = self.draw("data", address, attempt)
        for kind, share in (
            ("451-data", self.data_451),
            ("drop", self.drop_after_data),
            ("stall-data", self.stall_data),
        ):
            if u < share:
                return kind
            u -= share
        return None


REPLIES = {
    "451-rcpt": "451 4.3.0 Temporary local problem, try again",
    "451-data": "451 4.3.0 Queue file write error, try again",
    "421": "421 4.3.2 Service shutting down, closing transmission channel",
    "550": "550 5.1.1 Recipient address rejected: User unknown in virtual mailbox table",
    "454": "454 4.7.0 Throttling failure: Maximum sending rate exceeded",
}


class FaultHandler(Recorder):
    """The aiosmtpd handler of the soak: faults from a :class:`FaultPlan`, every event logged."""

    def __init__(self, plan: FaultPlan, log: Path) -> None:
        super().__init__()
        self.plan = plan
        self._log = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._accepted: collections.deque[float] = collections.deque()

    def event(self, kind: str, address: str, message_id: str = "") -> None:
        os.write(
            self._log, f"{kind}\t{address}\t{message_id}\n".encode()
        )  # one append, never buffered

    def _throttled(self) -> bool:
        now = time.monotonic()
        while self._accepted and now - self._accepted[0] > 0.5:
            self._accepted.popleft()
        return len(self._accepted) >= self.plan.throttle_limit

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        self.tries["RCPT"][address] += 1
        attempt = self.tries["RCPT"][address]
        if self.plan.is_permanent(address):
            self.event("550", address)
            return REPLIES["550"]
        kind = self.plan.rcpt_fault(address, attempt)
        if kind is None and attempt <= self.plan.throttle_tries and self._throttled():
            kind = "454"
        elif (
            kind is None
            and attempt == 1
            and self.plan.draw("454", address) < self.plan.throttle_share
        ):
            kind = "454"
        if kind is not None:
            self.event(kind, address)
            if kind == "stall-rcpt":
                await asyncio.sleep(
                    self.plan.stall_seconds
                )  # the client gives up first and hangs up
                return "451 4.4.2 Timeout"
            return REPLIES[kind]  # a 421 closes the connection after it (smtp_server.py)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        address = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        data = bytes(envelope.original_content or b"")
        found = _MESSAGE_ID.search(data[:16384])
        message_id = found.group(1).decode("ascii", "replace") if found else ""
        kind = self.plan.data_fault(address, self.tries["RCPT"][address])
        if kind == "stall-data":
            self.event(kind, address, message_id)
            await asyncio.sleep(self.plan.stall_seconds)
            return "451 4.4.2 Timeout"
        if kind == "451-data":
            self.event(kind, address, message_id)
            return REPLIES[kind]
        self._accepted.append(time.monotonic())
        self.event("drop" if kind == "drop" else "accept", address, message_id)
        return DROP if kind == "drop" else "250 2.0.0 Ok: queued"


def serve(plan: FaultPlan, log: Path, port: int = 0) -> None:
    """Run the fault server until SIGTERM; the first line on stdout is ``port N``."""
    server = SmtpServer(FaultHandler(plan, log), port=port)
    server.start()
    print(f"port {server.port}", flush=True)
    stopped = False

    def stop(*_: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    parent = os.getppid()
    while not stopped and os.getppid() == parent:  # the soak that started us is gone: so are we
        time.sleep(0.2)
    server.stop()


class FaultServerProcess:
    """The fault server as a child process: it outlives every sender we kill."""

    def __init__(self, plan: FaultPlan, log: Path) -> None:
        self.plan, self.log = plan, log
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> Self:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.helpers.faultserver",
                "--plan",
                json.dumps(asdict(self.plan)),
                "--log",
                str(self.log),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            },
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # bounded: the server prints its port or dies
        if not line.startswith("port "):
            self.proc.kill()
            raise RuntimeError(f"the fault server did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def cpu_seconds(self) -> float:
        try:
            parts = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()  # type: ignore[union-attr]
            return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError, AttributeError):
            return 0.0

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class EventLog:
    """Reads the server's event log as it grows (the soak polls it to kill the sender mid-send)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self.accepted = 0  # messages the server holds (accepted or kept-then-dropped)

    def poll(self) -> int:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return self.accepted
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        self.accepted += sum(1 for line in lines if line.startswith((b"accept\t", b"drop\t")))
        return self.accepted

    def events(self) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        for line in self.path.read_text().splitlines():
            kind, address, message_id = line.split("\t")
            out.append((kind, address, message_id))
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plan", required=True, help="the FaultPlan as JSON")
    parser.add_argument("--log", required=True, type=Path)
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args()
    serve(FaultPlan(**json.loads(options.plan)), options.log, options.port)


if __name__ == "__main__":
    main()
