"""A home folder of the test run's own, so nothing a test starts can write into the user's home.

``dispatch`` keeps compiled templates in ``$DISPATCH_CACHE_DIR``, else
``$XDG_CACHE_HOME/dispatch``, else ``~/.cache/dispatch``. For the whole run HOME,
the XDG folders and DISPATCH_CACHE_DIR point into one temp folder; child
processes inherit them. Chromium gets a writable HOME that way too.

Two watches check that it holds (like pre-commit's guard against writing to
$HOME). In this process an audit hook refuses every write into the user's
cache, config and data folders, anywhere else in the user's home but the
checkout, and into pytest's shared ``pytest-of-<user>`` folder (the run's
temp folders live in its own folder: ``temp``, given to pytest as basetemp), so
the test that tries fails at that line. Child processes cannot be hooked: the
user's dispatch folders are fingerprinted at the start of the run and compared
at its end.

The system temp dir itself stays open: the Postfix, Dovecot and PostgreSQL
helpers make their folders there on purpose (their unprivileged processes
cannot enter a 0700 folder such as the run's), and they remove them.
"""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# (path relative to the folder, size, modification time) of every entry; None: no such folder
Fingerprint = frozenset[tuple[str, int, int]] | None

REDIRECTED = ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# audit events that change the file system, and which of their arguments are paths
CHANGES = {
    "os.mkdir": (0,),
    "os.rename": (0, 1),  # os.replace too
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.symlink": (1,),
    "os.link": (1,),
    "os.truncate": (0,),
    "os.chmod": (0,),
    "os.utime": (0,),
    "shutil.rmtree": (0,),
}


class WroteIntoHome(AssertionError):
    """Code run by a test wrote into the user's home (an AssertionError: no ``except OSError``)."""


def fingerprint(folder: Path) -> Fingerprint:
    """What is in ``folder`` now, enough to tell that anything in it was written."""
    if not folder.exists():
        return None
    found = set()
    for path in [folder, *folder.rglob("*")]:
        try:
            stat = path.lstat()
        except FileNotFoundError:  # removed while we looked
            continue
        found.add((str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns))
    return frozenset(found)


def _real_home() -> Path:
    return Path(os.environ.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir)


def _written_path(event: str, args: tuple[object, ...]) -> list[object]:
    """The paths an audit event writes to (none for a read)."""
    if event == "open":
        path, mode, flags = args
        writes = (isinstance(flags, int) and flags & WRITE_FLAGS) or (
            isinstance(mode, str) and any(c in mode for c in "wax+")
        )
        return [path] if writes else []
    return [args[i] for i in CHANGES.get(event, ()) if i < len(args)]


@dataclass
class RunHome:
    """The run's temp home, and the user's folders it keeps watch over."""

    folder: Path
    saved: dict[str, str | None]
    guarded: list[Path]  # the user's own dispatch folders: fingerprinted
    watched: tuple[str, ...]  # the user's cache, config and data folders: no writes at all
    home: str | None  # the user's home: no writes outside ``allowed``
    allowed: tuple[str, ...]  # the checkout and the run's folder
    writes: list[str] = field(default_factory=list)  # refused writes not yet reported
    start: dict[Path, Fingerprint] = field(default_factory=dict)
    active: bool = True

    @property
    def temp(self) -> Path:
        """The run's temp folders (pytest's basetemp): removed with the run's home."""
        return self.folder / "tmp"

    @classmethod
    def enter(cls, allowed: tuple[Path, ...] = ()) -> RunHome:
        """Point HOME, XDG_* and DISPATCH_CACHE_DIR into a new temp folder, children included.

        ``allowed``: where in the user's home the tests may write (the checkout).
        """
        real = _real_home()
        cache = Path(os.environ.get("XDG_CACHE_HOME") or real / ".cache")
        config = Path(os.environ.get("XDG_CONFIG_HOME") or real / ".config")
        data = Path(os.environ.get("XDG_DATA_HOME") or real / ".local" / "share")
        state = Path(os.environ.get("XDG_STATE_HOME") or real / ".local" / "state")
        guarded = [cache / "dispatch", config / "dispatch", data / "dispatch"]
        if os.environ.get("DISPATCH_CACHE_DIR", "off") != "off":
            guarded.append(Path(os.environ["DISPATCH_CACHE_DIR"]))
        shared = Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}"
        watched = tuple(
            os.path.abspath(p) + os.sep for p in (cache, config, data, state, *guarded, shared)
        )
        home = os.path.abspath(real) + os.sep if os.path.abspath(real) != os.sep else None
        folder = Path(tempfile.mkdtemp(prefix="dispatch-tests-home-"))
        allowed_prefixes = tuple(os.path.abspath(p) + os.sep for p in (*allowed, folder))
        saved = {name: os.environ.get(name) for name in (*REDIRECTED, "DISPATCH_CACHE_DIR")}
        os.environ.update(
            HOME=str(folder),
            XDG_CACHE_HOME=str(folder / ".cache"),
            XDG_CONFIG_HOME=str(folder / ".config"),
            XDG_DATA_HOME=str(folder / ".local" / "share"),
            XDG_STATE_HOME=str(folder / ".local" / "state"),
            DISPATCH_CACHE_DIR=str(folder / ".cache" / "dispatch"),
        )
        run_home = cls(folder, saved, guarded, watched, home, allowed_prefixes)
        run_home.temp.mkdir()
        run_home.start = run_home.snapshot()
        sys.addaudithook(run_home._audit)
        return run_home

    def _refuses(self, name: str) -> bool:
        """Whether a write to the absolute path ``name`` leaves the run's folders."""
        if "__pycache__" in name or name.startswith(self.allowed):
            return False
        return name.startswith(self.watched) or (
            self.home is not None and name.startswith(self.home)
        )

    def _audit(self, event: str, args: tuple[object, ...]) -> None:
        if not self.active or (event != "open" and event not in CHANGES):
            return
        for path in _written_path(event, args):
            if not isinstance(path, str | bytes | os.PathLike):  # a file descriptor: checked
                continue  # when it was opened
            name = os.path.abspath(os.fsdecode(path))
            if self._refuses(name):
                self.writes.append(f"{event} {name}")
                raise WroteIntoHome(f"a test wrote into the user's home: {event} {name}")

    def refused(self) -> list[str]:
        """The writes refused since the last call."""
        found, self.writes[:] = list(self.writes), []
        return found

    def snapshot(self) -> dict[Path, Fingerprint]:
        """The fingerprint of every guarded folder of the user's."""
        return {path: fingerprint(path) for path in self.guarded}

    def changes(self) -> list[str]:
        """The guarded folders that are not as the run found them, as lines to report."""
        lines = []
        for path, was in self.start.items():
            now = fingerprint(path)
            if now == was:
                continue
            if was is None:
                lines.append(f"{path} was created")
            else:
                touched = sorted({name for name, *_ in (now or frozenset()) ^ was})
                lines.append(f"{path} changed: {', '.join(touched) or 'removed'}")
        return lines

    def leave(self) -> None:
        """Stop watching, give the environment back and remove the temp home."""
        self.active = False
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(self.folder, ignore_errors=True)
