"""A real Postfix on 127.0.0.1, from a config folder of its own, for the relay tests (as root).

``Postfix(routes).start()`` writes main.cf and master.cf into a temp folder
(queue, data and log there too) and runs ``postfix -c DIR start``, whose own
check makes the queue folders (a separate ``postfix check`` would only repeat
those 3 s). ``stop()`` runs ``postfix -c DIR abort``, waits for the master (it
takes its children with it), kills its process group if it lingers and removes
the folder. Its smtpd listens on a free loopback port and relays for 127.0.0.0/8
only. ``routes`` maps each domain to a loopback port (an aiosmtpd server of the
test): every other destination is refused by the error transport, so nothing
this Postfix queues, its own bounces included, can leave the machine.

With a ``Submission`` it is a relay as an operator runs one for senders (Debian's
``submission`` service): STARTTLS required, with a certificate of the test's CA,
then SMTP AUTH (Cyrus SASL, users in a sasldb of its folder, PLAIN and LOGIN), and
only authenticated clients may relay; without one, any loopback client relays.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import pytest

POSTFIX = "/usr/sbin/postfix"
SASLPASSWD2 = "/usr/sbin/saslpasswd2"
SASL_PLUGINS = ("libsasldb.so", "libplain.so", "liblogin.so")  # Debian: libsasl2-modules
SASL_PLUGIN_DIRS = ("/usr/lib/x86_64-linux-gnu/sasl2", "/usr/lib/aarch64-linux-gnu/sasl2",
                    "/usr/lib/sasl2")  # fmt: skip
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
transport_maps = texthash:{root}/etc/transport
default_transport = error:5.7.1 this test relay only routes the test domains
relay_transport = $default_transport
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtputf8_enable = no
smtp_tls_security_level = none
smtp_dns_support_level = disabled
smtp_connect_timeout = 2s
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
"""

OPEN_RELAY_CF = """\
smtpd_tls_security_level = none
smtpd_relay_restrictions = permit_mynetworks, reject
"""

# Debian's submission service in master.cf, as main.cf settings of this one smtpd
SUBMISSION_CF = """\
smtpd_tls_security_level = encrypt
smtpd_tls_chain_files = {root}/etc/relay.pem
smtpd_tls_auth_only = yes
smtpd_tls_received_header = yes
smtpd_tls_loglevel = 1
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = {root}/etc/sasl
smtpd_sasl_security_options = noanonymous
smtpd_relay_restrictions = permit_sasl_authenticated, reject
"""

SASL_CONF = """\
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: {sasldb}
mech_list: PLAIN LOGIN
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
tlsmgr    unix  - - n 1000? 1 tlsmgr
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


def sasl_available() -> bool:
    """saslpasswd2 and the Cyrus plugins a sasldb login needs (sasl2-bin, libsasl2-modules)."""
    plugins = next((Path(d) for d in SASL_PLUGIN_DIRS if Path(d).is_dir()), None)
    return (
        os.path.exists(SASLPASSWD2)
        and plugins is not None
        and all((plugins / name).exists() for name in SASL_PLUGINS)
    )


def require_submission() -> None:
    """Like ``require``, for a relay with AUTH: also Cyrus SASL's tools and plugins."""
    require()
    if sasl_available():
        return
    reason = (
        f"needs {SASLPASSWD2} and Cyrus SASL's sasldb, PLAIN and LOGIN plugins "
        "(Debian: apt-get install sasl2-bin libsasl2-modules)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true, so the relay tests must run, not skip: {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class Submission:
    """What a relay for senders demands: STARTTLS with this certificate, then AUTH as a user."""

    chain_pem: bytes  # the private key, then the certificate and its chain (smtpd_tls_chain_files)
    users: Mapping[str, str]  # "user@realm" → password


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Postfix:
    """One throwaway Postfix relay; ``port`` is its smtpd, ``log()`` the tail of its maillog."""

    def __init__(
        self,
        routes: Mapping[str, int],
        relay_domains: list[str] | None = None,
        submission: Submission | None = None,
    ) -> None:
        self.routes = dict(routes)
        self.relay_domains = relay_domains if relay_domains is not None else list(routes)
        self.submission = submission
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
        tls = "starttls" if self.submission else "none"
        return ["--smtp-host", "127.0.0.1", "--smtp-port", str(self.port), "--tls", tls]

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
        smtpd = SUBMISSION_CF if self.submission else OPEN_RELAY_CF
        (self.config / "main.cf").write_text(
            (MAIN_CF + smtpd).format(
                root=self.root, hostname=HOSTNAME, relay_domains=", ".join(self.relay_domains)
            ),
            encoding="utf-8",
        )
        if self.submission:
            self._write_submission(self.submission)
        (self.config / "master.cf").write_text(MASTER_CF.format(port=self.port), encoding="utf-8")
        (self.config / "transport").write_text(
            "".join(f"{domain} smtp:[127.0.0.1]:{port}\n" for domain, port in self.routes.items()),
            encoding="utf-8",
        )

    def _write_submission(self, submission: Submission) -> None:
        """The TLS key and chain (root's alone), and the sasldb, which smtpd reads as postfix."""
        chain = self.config / "relay.pem"
        chain.touch(mode=0o600)
        chain.write_bytes(submission.chain_pem)
        sasl = self.config / "sasl"  # Debian's Postfix reads $config_directory/sasl whatever is set
        sasl.mkdir(mode=0o755)
        sasldb = self.root / "sasldb2"  # not in etc/: `postfix check` wants root to own all there
        for login, password in submission.users.items():
            user, _, realm = login.partition("@")
            subprocess.run(
                [SASLPASSWD2, "-c", "-p", "-f", str(sasldb), "-u", realm or HOSTNAME, user],
                input=password.encode(),
                capture_output=True,
                timeout=30,
                check=True,
            )
        os.chown(sasldb, *_owner("postfix"))
        os.chmod(sasldb, 0o600)
        (sasl / "smtpd.conf").write_text(SASL_CONF.format(sasldb=sasldb), encoding="utf-8")

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
