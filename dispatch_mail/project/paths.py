"""Where a project's files live, and how a path is shown to the user: each derived in one place."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dispatch_mail.project.settings import Project

BUILD_DIR = "build"
MANIFEST_FILE = "issue.yaml"
PREVIEWS_DIR = "previews"
SITE_DIR = "site"


def shown_path(path: Path | str) -> str:
    """The path as the user would type it: relative to the working folder when inside it.

    A path outside the working folder is shown absolute, never as ``../../../dev/null``.
    """
    text = os.fspath(path)
    try:
        absolute = os.path.abspath(text)
        cwd = os.getcwd()
    except (OSError, ValueError):
        return text
    if absolute == cwd:
        return "."
    if absolute.startswith(cwd.rstrip(os.sep) + os.sep):
        return os.path.relpath(absolute, cwd)
    return absolute if os.path.isabs(text) or ".." in Path(text).parts else text


def build_dir(project: Project, slug: str) -> Path:
    """The default output folder of an issue: ``build/<slug>/`` beside dispatch.yaml."""
    return project.root / BUILD_DIR / slug


def previews_dir(project: Project) -> Path:
    """The default folder of the CI previews gallery: ``build/previews/`` beside dispatch.yaml."""
    return project.root / BUILD_DIR / PREVIEWS_DIR


def site_dir(project: Project) -> Path:
    """The default folder of the web archive: ``site/`` beside dispatch.yaml."""
    return project.root / SITE_DIR


def journal_path(project: Project, slug: str, list_label: str) -> Path:
    """The default send journal of an issue's send to one list."""
    return build_dir(project, slug) / f"send-{list_label}.journal"


def journal_paths(project: Project, slug: str, list_label: str | None = None) -> list[Path]:
    """The send journals of an issue on disk, one list's or every list's."""
    folder = build_dir(project, slug)
    return sorted(folder.glob(f"send-{list_label or '*'}.journal"))
