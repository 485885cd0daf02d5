"""A real Dovecot IMAP server on 127.0.0.1, with its own config in a temp folder (for root).

``Dovecot(ca).start()`` writes a dovecot.conf of its own (passwd-file user with a
plaintext password, maildir under the temp folder, ssl=required with a trustme
certificate for 127.0.0.1, an implicit-TLS listener on a free port) and runs
``dovecot -F -c CONF`` in the background; ``stop()`` ends that process and
removes the folder. Mail is delivered as maildir files (``deliver``).
"""

from __future__ import annotations

import mailbox
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import trustme

DOVECOT = "/usr/sbin/dovecot"
USER = "bounces"
PASSWORD = "correct horse battery staple"
MAIL_USER = "nobody"  # the mail processes' user: any non-root one with a valid uid

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = 1
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:{root}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""


def available() -> bool:
    return os.path.exists(DOVECOT) and os.geteuid() == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Dovecot:
    """One throwaway Dovecot; ``url(folder)`` is the imaps:// URL of a folder of its user."""

    def __init__(self, ca: trustme.CA) -> None:
        self.ca = ca
        # pytest's temp folders are 0700: Dovecot's unprivileged processes could not enter them
        self.root = Path(tempfile.mkdtemp(prefix="dispatch-dovecot-"))
        os.chmod(self.root, 0o755)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        import pwd

        entry = pwd.getpwnam(MAIL_USER)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid

    @property
    def maildir(self) -> Path:
        return self.root / "mail" / USER

    def url(self, folder: str = "INBOX") -> str:
        return f"imaps://{USER}@127.0.0.1:{self.port}/{folder}"

    def start(self) -> Dovecot:
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(self.root / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(self.root / "cert.pem"))
        (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n", encoding="utf-8")
        for folder in ("run", "state", f"home/{USER}", f"mail/{USER}"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        self._own(self.root / "home")
        self._own(self.root / "mail")
        config = self.root / "dovecot.conf"
        config.write_text(
            CONFIG.format(root=self.root, port=self.port, uid=self.uid, gid=self.gid),
            encoding="utf-8",
        )
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not listen on {self.port}: {self.log()}")

    def deliver(self, messages: list[bytes], folder: str = "") -> None:
        """Put messages into the user's maildir (INBOX, or a sub-folder ``.name``)."""
        path = self.maildir / folder if folder else self.maildir
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        box = mailbox.Maildir(path)
        for raw in messages:
            box.add(raw)
        self._own(self.root / "mail")

    def folder_count(self, folder: str = "") -> int:
        path = self.maildir / (f".{folder}" if folder else "")
        if not path.is_dir():
            return 0
        return sum(1 for sub in ("new", "cur") for _ in (path / sub).glob("*"))

    def clear(self) -> None:
        """Empty every folder (between tests of one module-scoped server)."""
        for sub in self.maildir.glob("**/*"):
            if sub.is_file() and sub.parent.name in ("new", "cur"):
                sub.unlink()

    def _own(self, top: Path) -> None:
        for path in [top, *top.rglob("*")]:
            os.chown(path, self.uid, self.gid)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
        if (
            self.process is not None
            and self.process.stdout is not None
            and self.process.poll() is not None
        ):
            text += self.process.stdout.read().decode("utf-8", "replace")
        return text[-3000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self.root, ignore_errors=True)
