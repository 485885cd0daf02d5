"""`dispatch build`: one issue folder → email.html, email.txt, email.mjml and email.eml,
and ``events/<n>-<title>.ics`` for each event (``render/calendar.py``).

Everything is rendered in memory first; files are written only when all of it
succeeded, each one atomically.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from dispatch_mail.errors import ContentError, DispatchError
from dispatch_mail.mail.eml import build_message, message_bytes
from dispatch_mail.project.files import atomic_write_many
from dispatch_mail.project.issue import Issue
from dispatch_mail.project.loader import (
    find_project_root,
    issue_dirs,
    load,
    load_project,
    resolve_issue_dir,
)
from dispatch_mail.project.paths import build_dir, shown_path
from dispatch_mail.project.placeholders import placeholder_problems
from dispatch_mail.project.settings import Project
from dispatch_mail.publish.outputs import check_folder_path
from dispatch_mail.publish.slugs import slug_problems
from dispatch_mail.quality.budget import build_warnings
from dispatch_mail.render import Rendered, render_issue
from dispatch_mail.render.calendar import FOLDER as CALENDAR_FOLDER
from dispatch_mail.render.calendar import calendar_files

OUTPUT_NAMES = ("email.html", "email.txt", "email.mjml", "email.eml")


@dataclass
class BuildResult:
    """What a build produced, for the CLI's summary and for callers."""

    project: Project
    issue: Issue
    rendered: Rendered
    eml: bytes
    out_dir: Path
    files: dict[str, int] = field(default_factory=dict)  # name -> bytes written
    calendars: dict[str, int] = field(default_factory=dict)  # events/<n>-<title>.ics -> bytes
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def link_count(self) -> int:
        return len(set(re.findall(r'href="([^"]+)"', self.rendered.html)))


def build_issue(issue_dir: Path, out_dir: Path | None = None, *, write: bool = True) -> BuildResult:
    """Load, validate, render and (unless ``write`` is false) write one issue."""
    t0 = time.perf_counter()
    project, issue = load_issue(Path(issue_dir))
    t1 = time.perf_counter()
    rendered = render_issue(project, issue)
    t2 = time.perf_counter()
    eml = message_bytes(build_message(project, issue, rendered))
    t3 = time.perf_counter()
    out = Path(out_dir) if out_dir else build_dir(project, issue.slug)
    # placeholders first: they are the fields the owner still has to fill in, by line
    placeholders = [str(p) for p in placeholder_problems(Path(issue.path))]
    result = BuildResult(
        project, issue, rendered, eml, out, warnings=placeholders + build_warnings(issue, rendered)
    )
    result.timings = {"load": t1 - t0, **rendered.timings, "eml": t3 - t2}
    if write:
        check_folder_path(out, out / OUTPUT_NAMES[0])
        contents: tuple[str | bytes, ...] = (rendered.html, rendered.text, rendered.mjml, eml)
        raws = {
            name: data.encode("utf-8") if isinstance(data, str) else data
            for name, data in zip(OUTPUT_NAMES, contents, strict=True)
        }
        calendars = calendar_files(project, issue)
        # all of them, or none
        atomic_write_many({out / name: raw for name, raw in {**raws, **calendars}.items()})
        _remove_stale_calendars(out, calendars)
        result.files = {name: len(raw) for name, raw in raws.items()}
        result.calendars = {name: len(raw) for name, raw in calendars.items()}
        result.timings["write"] = time.perf_counter() - t3
    return result


def load_issue(issue_dir: Path) -> tuple[Project, Issue]:
    """:func:`load`, refusing a folder name that cannot be the issue's slug (with the
    manifest's problems, if it has any, in the same error)."""
    folder = resolve_issue_dir(issue_dir)
    problems = slug_problems(folder)
    try:
        project, issue = load(folder)
    except ContentError as exc:
        raise ContentError([*exc.problems, *problems]) from None
    if problems:
        raise ContentError(problems)
    return project, issue


def _remove_stale_calendars(out: Path, kept: dict[str, bytes]) -> None:
    """An event removed or renamed since the last build must not leave its .ics behind."""
    folder = out / CALENDAR_FOLDER
    if not folder.is_dir() or folder.is_symlink():
        return
    for path in folder.glob("*.ics"):
        if f"{CALENDAR_FOLDER}/{path.name}" not in kept and path.is_file():
            path.unlink(missing_ok=True)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def describe(result: BuildResult) -> str:
    """The short summary `dispatch build` prints."""
    sizes = ", ".join(f"{name} {size / 1024:.1f} KB" for name, size in result.files.items())
    lines = [
        f"built {result.issue.slug}: {_count(len(result.issue.sections), 'section')}, "
        f"{_count(result.link_count, 'link')} → {shown_path(result.out_dir)}/",
        f"  {sizes}" if sizes else "",
        f"  {_count(len(result.calendars), 'calendar file')} in {CALENDAR_FOLDER}/"
        if result.calendars
        else "",
    ]
    lines += [f"  warning: {w}" for w in result.warnings]
    return "\n".join(line for line in lines if line)


def build_all(
    project_dir: Path, out_dir: Path | None = None
) -> tuple[list[BuildResult], list[tuple[Path, DispatchError]]]:
    """Build every issue of the project; a failing issue does not stop the others."""
    project = load_project(find_project_root(project_dir))
    built: list[BuildResult] = []
    failed: list[tuple[Path, DispatchError]] = []
    for folder in issue_dirs(project):
        try:
            built.append(build_issue(folder, out_dir / folder.name if out_dir else None))
        except DispatchError as exc:
            failed.append((folder, exc))
    return built, failed
