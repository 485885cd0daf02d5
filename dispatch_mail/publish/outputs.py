"""Where build, export and the archive may write: a folder path with no file in the way.

Checked before writing, so the error names the file that blocks the path rather
than whatever the operating system says about the first write that failed.
"""

from __future__ import annotations

from pathlib import Path

from dispatch_mail.errors import WriteError
from dispatch_mail.project.paths import shown_path


def blocking_file(folder: Path) -> Path | None:
    """The first of ``folder`` and its parents that exists and is not a folder, if any."""
    for part in (folder, *folder.parents):
        if part.exists() or part.is_symlink():
            return None if part.is_dir() else part
    return None


def check_folder_path(folder: Path, writing: Path | None = None) -> None:
    """Raise :class:`WriteError` when ``folder`` cannot be created or written into."""
    blocker = blocking_file(folder)
    if blocker is not None:
        target = writing or folder
        raise WriteError(
            f"cannot write {shown_path(target)}: {shown_path(blocker)} is not a folder", target
        )
