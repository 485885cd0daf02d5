"""A copy of this checkout, and this interpreter's packages for a venv made from it.

For the tests that install dispatch as a user would (the README's command, a wheel)
without fetching the dependencies again.
"""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
NOT_SOURCE = ("build", "dist", "site", "previews", "*.egg-info", "__pycache__", ".*")


def copy_source(to: Path) -> Path:
    """The checkout's source copied to ``to``: no builds, caches, venvs or dot-folders."""
    shutil.copytree(ROOT, to, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    return to


def dependencies_only(folder: Path) -> Path:
    """This interpreter's installed packages, less dispatch itself: links in ``folder``.

    A venv needs them on its path, not ``--system-site-packages`` (from a venv that
    means the base interpreter's packages, on a fresh machine none of ours) and not
    our site-packages as it is: the editable install's finder module there has the
    same name as the one a new editable install writes, and would win the import.
    No .pth file is linked, so nothing of ours runs at start-up.
    """
    folder.mkdir()
    for key in ("purelib", "platlib"):
        for entry in Path(sysconfig.get_paths()[key]).iterdir():
            own = entry.name.startswith(("__editable__", "dispatch_mail"))
            if own or entry.suffix == ".pth" or entry.name == "__pycache__":
                continue
            if not (folder / entry.name).exists():
                (folder / entry.name).symlink_to(entry)
    return folder
