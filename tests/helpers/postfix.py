"""A real Postfix on 127.0.0.1, from a config folder of its own, for the bounce tests (as root).

``Postfix(routes).start()`` writes main.cf and master.cf into a temp folder
(queue, data and log there too) and runs ``postfix -c DIR start``, whose own
check makes the queue folders (a separate ``postfix check`` would only repeat
those 3 s). ``stop()`` runs ``postfix -c DIR abort``, waits for the master (it
takes its children with it), kills its process group if it lingers and removes
the folder. Its smtpd listens on a free loopback port and relays for 127.0.0.0/8
only. ``routes`` maps each domain to a loopback port (an aiosmtpd server of the
test): every other destination is refused by the error transport, so nothing
this Postfix queues, its own bounces included, can leave the machine.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Self

import pytest

POSTFIX = "/usr/sbin/postfix"
HOSTNAME = "relay.example.net"  # its own name: in its Received lines and its bounces' From

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = {hostname}
mydomain = example.net
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = {relay_domains}
smtpd_relay_restrictions = permit_mynetworks, reject
transport_maps = texthash:{root}/etc/transport
default_transport = error:5.7.1 this test relay only routes the test domains
relay_transport = $default_transport
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtputf8_enable = no
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtp_dns_support_level = disabled
smtp_connect_timeout = 2s
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
"""

# chroot off everywhere (column 5): a chroot would need copies of /etc inside the queue folder
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def available() -> bool:
    return os.path.exists(POSTFIX) and os.geteuid() == 0


def require() -> None:
    """Skip the calling test without Postfix (or root), except under CI=true, where it fails."""
    if available():
        return
    reason = "needs /usr/sbin/postfix (Debian: apt-get install postfix) and root"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true, so the Postfix tests must run, not skip: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Postfix:
    """One throwaway Postfix relay; ``port`` is its smtpd, ``log()`` the tail of its maillog."""

    def __init__(self, routes: Mapping[str, int], relay_domains: list[str] | None = None) -> None:
        self.routes = dict(routes)
        self.relay_domains = relay_domains if relay_domains is not None else list(routes)
        # pytest's temp folders are 0700: Postfix's unprivileged processes could not enter them
        self.root = Path(tempfile.mkdtemp(prefix="dispatch-postfix-"))
        os.chmod(self.root, 0o755)
        self.config = self.root / "etc"
        self.port = free_port()

    # ------------------------------------------------------------------ life
    def start(self) -> Self:
        try:
            self._write_config()
            self._postfix("start")
            self._wait_listening()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop it and remove its folder; whatever happened before, nothing is left running."""
        master = self._master_pid()
        if master is not None:
            # abort, not stop: the same SIGTERM, without `postfix stop`'s 1 s sleeps between checks
            subprocess.run(
                [POSTFIX, "-c", str(self.config), "abort"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=30,
                check=False,
            )
            if _alive(master):  # what `postfix stop` does when the master lingers
                _kill_group(master)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ for the tests
    def cli_args(self) -> list[str]:
        return ["--smtp-host", "127.0.0.1", "--smtp-port", str(self.port), "--tls", "none"]

    def log(self, tail: int = 4000) -> str:
        path = self.root / "maillog"
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        return text[-tail:]

    # ------------------------------------------------------------------ inside
    def _write_config(self) -> None:
        self.config.mkdir()
        for folder in ("queue", "data"):
            (self.root / folder).mkdir()
        os.chown(self.root / "data", *_owner("postfix"))
        (self.config / "main.cf").write_text(
            MAIN_CF.format(
                root=self.root, hostname=HOSTNAME, relay_domains=", ".join(self.relay_domains)
            ),
            encoding="utf-8",
        )
        (self.config / "master.cf").write_text(MASTER_CF.format(port=self.port), encoding="utf-8")
        (self.config / "transport").write_text(
            "".join(f"{domain} smtp:[127.0.0.1]:{port}\n" for domain, port in self.routes.items()),
            encoding="utf-8",
        )

    def _postfix(self, command: str) -> None:
        result = subprocess.run(
            [POSTFIX, "-c", str(self.config), command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"postfix {command} failed ({result.returncode}): "
                f"{result.stdout}{result.stderr}{self.log()}"
            )

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"postfix did not listen on {self.port}: {self.log()}")

    def _master_pid(self) -> int | None:
        try:
            text = (self.root / "queue" / "pid" / "master.pid").read_text(encoding="ascii")
            return int(text.split()[0])
        except (OSError, ValueError, IndexError):
            return None


def _owner(user: str) -> tuple[int, int]:
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def _alive(pid: int, wait: float = 5.0) -> bool:
    """Whether ``pid`` still runs after up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return False
        if state[0] in ("Z", "X"):  # exited, not yet reaped by whoever adopted it
            return False
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.05)


def _kill_group(pid: int) -> None:
    """SIGKILL the master's process group (it is a session leader), then the master itself."""
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
