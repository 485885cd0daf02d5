"""The folder the web archive replaces: which folders it may replace, and replacing one safely.

The archive replaces its folder whole, so a wrong folder (a Jekyll or Hugo
``_site/`` holds an ``index.html`` and a ``feed.xml`` too, and may be reached
through a link) must be refused before anything is deleted. Every archive marks
its folder with a file of its own, ``.dispatch-archive``; a folder is replaced
only when it is empty, carries that mark, or is an archive written before the
mark existed, recognised by holding exactly what dispatch writes and nothing else.
A link is never followed to delete: through one, only an archive of ours is
replaced, and the link itself stays.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
from pathlib import Path

from dispatch_mail.errors import UsageError, WriteError
from dispatch_mail.project.files import atomic_write_many
from dispatch_mail.project.paths import shown_path
from dispatch_mail.publish.outputs import blocking_file
from dispatch_mail.publish.slugs import visible
from dispatch_mail.version import __version__

FEED_NAME = "feed.xml"
INDEX_NAME = "index.html"
MARKER_NAME = ".dispatch-archive"
MARKER_VERSION = 1
# The marker's first line: the format's version and the archive's id, kept across rebuilds.
_MARKER_LINE = re.compile(r"dispatch-archive ([0-9]+) ([0-9a-f]{16})\s*\Z")
# A feed dispatch wrote names it as its generator before the first entry.
_OUR_FEED = re.compile(rb"<generator\b[^>]*>dispatch</generator>")
_FEED_HEAD_BYTES = 8192
_OLD_LAYOUT = f"{INDEX_NAME}, {FEED_NAME} and one folder per issue holding only its {INDEX_NAME}"


def site_folder(out: Path, root: Path) -> Path:
    """The folder to write the archive into, ``out`` with its links resolved.

    Raises :class:`UsageError` for a folder whose replacement could lose anything
    but an earlier archive: the project, a file, a folder that is not an archive, or
    a link to anything but an archive.
    """
    given = Path(os.path.abspath(out))
    folder = given.resolve()
    shown = shown_path(out)
    if folder == root or folder in root.parents:
        raise UsageError(
            f"{shown}: the archive would replace the project itself; choose a folder such as site/"
        )
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{shown}: exists and is not a folder")
    blocker = blocking_file(folder.parent)
    if blocker is not None:
        raise UsageError(f"{shown}: {shown_path(blocker)} is not a folder")
    if given.is_symlink():
        if not folder.is_dir() or not _entries(folder) or refusal(folder) is not None:
            raise UsageError(
                f"{shown}: a symbolic link to {shown_path(folder)}, which is not a dispatch "
                "archive; the archive replaces its folder entirely, so it writes through a "
                "link only into an archive it made: give a new folder, or that one itself"
            )
    elif folder.is_dir():
        reason = refusal(folder)
        if reason is not None:
            raise UsageError(_not_an_archive(shown, reason))
    return folder


def refusal(folder: Path) -> str | None:
    """Why ``folder`` may not be replaced; None when it is empty or an archive of ours."""
    entries = _entries(folder)
    if not entries or archive_id(folder) is not None:
        return None
    return _unlike_an_old_archive(folder, entries)


def archive_id(folder: Path) -> str | None:
    """The id in ``folder``'s marker, or None when it has no marker of ours."""
    try:
        fd = os.open(folder / MARKER_NAME, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        first = handle.readline(200).decode("ascii", "replace")
    match = _MARKER_LINE.match(first)
    return match.group(2) if match else None


def marker_text(folder: Path) -> str:
    """The marker for a new archive in ``folder``: the id of the one it replaces, if any."""
    known = archive_id(folder) if folder.is_dir() and not folder.is_symlink() else None
    return (
        f"dispatch-archive {MARKER_VERSION} {known or secrets.token_hex(8)}\n"
        f"A web archive written by dispatch {__version__}, which replaces this whole folder "
        "each time it writes the archive: files added here are lost then.\n"
    )


def replace_folder(site: dict[Path, str | bytes], out: Path) -> None:
    """Write ``site`` (paths inside the folder → contents) into a folder beside ``out``,
    then swap it in for the old one.

    Every file goes through :func:`atomic_write_many` (fsynced, all or none), so the
    folder swapped in holds complete files even after a crash.
    """
    staging = _beside(out, "tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(staging)  # not mkdtemp: its 0700 would reach the web server
    except OSError as exc:
        raise _write_error(out, exc) from None
    try:
        try:
            atomic_write_many({staging / name: data for name, data in site.items()})
        except WriteError as exc:
            # Name the file as it would have been published, not its staging copy.
            failed = out / exc.path.relative_to(staging) if exc.path else out
            raise WriteError(_reworded(exc, failed), failed) from None
        _swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# ------------------------------------------------------------------ recognising an archive
def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as scan:
            return sorted(scan, key=lambda entry: entry.name)
    except OSError as exc:
        raise UsageError(
            f"{shown_path(folder)}: cannot be read ({exc.strerror or exc}), so it cannot be "
            "told to be an archive"
        ) from None


def _unlike_an_old_archive(folder: Path, entries: list[os.DirEntry[str]]) -> str | None:
    """Why ``folder`` is not an archive written before the marker; None when it is one."""
    names = {entry.name for entry in entries}
    for entry in entries:
        if entry.name in (INDEX_NAME, FEED_NAME):
            if not entry.is_file(follow_symlinks=False):
                return f"its {entry.name} is not a plain file"
            continue
        if not entry.is_dir(follow_symlinks=False):
            return f"it holds {visible(entry.name)}, which dispatch does not write"
        inside = _entries(Path(entry.path))
        if len(inside) != 1 or inside[0].name != INDEX_NAME:
            stray = next((e.name for e in inside if e.name != INDEX_NAME), None)
            what = f"{entry.name}/{stray}" if stray else f"{entry.name}/, empty"
            return f"it holds {visible(what)}, which dispatch does not write"
        if not inside[0].is_file(follow_symlinks=False):
            return f"its {visible(entry.name)}/{INDEX_NAME} is not a plain file"
    for needed in (INDEX_NAME, FEED_NAME):
        if needed not in names:
            return f"it has no {needed}"
    try:
        with open(folder / FEED_NAME, "rb") as feed:
            head = feed.read(_FEED_HEAD_BYTES)
    except OSError:
        head = b""
    if not _OUR_FEED.search(head):
        return f"its {FEED_NAME} is not a feed dispatch wrote"
    return None


def _not_an_archive(shown: str, reason: str) -> str:
    return (
        f"{shown}: not a dispatch archive: it has no {MARKER_NAME} file and {reason}; "
        "the archive replaces its folder entirely, so choose a new or empty folder "
        "(an unmarked archive from an earlier dispatch is replaced only while it holds "
        f"just {_OLD_LAYOUT}; if yours holds more, delete it once)"
    )


# ------------------------------------------------------------------ swapping
def _swap_in(staging: Path, out: Path) -> None:
    """Put the new site in place of the old; the old one comes back if the swap fails."""
    try:
        if not out.exists() and not out.is_symlink():
            staging.rename(out)
            return
        # Looked at again: the folder may have changed while the site was being built.
        if out.is_symlink() or not out.is_dir():
            raise UsageError(f"{shown_path(out)}: is no longer a folder; nothing was replaced")
        reason = refusal(out)
        if reason is not None:
            raise UsageError(_not_an_archive(shown_path(out), reason))
        old = _beside(out, "old")
        out.rename(old)
        try:
            staging.rename(out)
        except BaseException:
            old.rename(out)
            raise
    except OSError as exc:
        raise _write_error(out, exc) from None
    shutil.rmtree(old, ignore_errors=True)  # a real folder, renamed: links inside are not followed


def _beside(out: Path, kind: str) -> Path:
    """A hidden sibling of ``out``, its name short enough for any file system."""
    return out.parent / f".{out.name[:40]}.{kind}-{secrets.token_hex(4)}"


def _write_error(path: Path, exc: OSError) -> WriteError:
    return WriteError(f"cannot write {shown_path(path)}: {exc.strerror or exc}", path)


def _reworded(exc: WriteError, path: Path) -> str:
    """The message of ``exc`` with its file shown as ``path``."""
    said = str(exc)
    if exc.path is not None:
        named = f"cannot write {shown_path(exc.path)}: "
        if said.startswith(named):
            return f"cannot write {shown_path(path)}: {said[len(named) :]}"
    return said
