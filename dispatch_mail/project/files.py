"""Writing output so that a crash or a failed build never leaves a half-written file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from dispatch_mail.errors import WriteError
from dispatch_mail.project.paths import shown_path

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: mkstemp's 0600 would make every output private


def _write_temp(path: Path, raw: bytes) -> str:
    """Write ``raw`` to a new temporary file beside ``path`` (fsynced); return its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_many(files: dict[Path, bytes | str]) -> None:
    """Write several files as one: every temporary file first, then the renames.

    A failure while writing (disk full) leaves every previous file as it was and no
    temporary file behind; only the renames, which do not fail for lack of space, remain.
    """
    written: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            raw = data.encode("utf-8") if isinstance(data, str) else data
            written.append((_write_temp(path, raw), path))
        for tmp, path in written:
            os.replace(tmp, path)
    except OSError as exc:
        for tmp, _ in written:
            Path(tmp).unlink(missing_ok=True)
        failed = path  # the file being written or renamed when it failed
        message = f"cannot write {shown_path(failed)}: {exc.strerror or exc}"
        raise WriteError(message, failed) from None
    except BaseException:
        for tmp, _ in written:
            Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it."""
    atomic_write_many({path: data})
