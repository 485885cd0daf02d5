"""The latest build of the previewed issue: made in memory, handed to every page that waits.

A failed build is a build too: it carries the problems instead of the email, so
the pages show them and the server keeps running until a save fixes them.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from dispatch_mail.browser.watcher import is_within
from dispatch_mail.errors import ContentError, DispatchError
from dispatch_mail.project.loader import load_project
from dispatch_mail.project.wording import plural
from dispatch_mail.publish.build import BuildResult, build_issue
from dispatch_mail.render import templates as template_engine

Log = Callable[[str], None]


@dataclass(frozen=True)
class Build:
    """One build attempt, as the pages show it: the outputs, or the problems."""

    number: int
    version: str  # changes with every build and every server start; the pages' reload token
    slug: str
    finished: datetime
    seconds: float
    subject: str = ""
    html: str = ""
    text: str = ""
    eml: bytes = b""
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    def status(self) -> dict[str, object]:
        """The build as /status.json reports it."""
        return {
            "build": self.number,
            "version": self.version,
            "ok": self.ok,
            "issue": self.slug,
            "subject": self.subject,
            "finished": self.finished.isoformat(timespec="seconds"),
            "milliseconds": round(self.seconds * 1000),
            "warnings": list(self.warnings),
            "errors": list(self.errors),
        }


class LiveBuild:
    """The issue's newest build, rebuilt on demand; readers wait for the next one.

    ``stopping`` is set by :meth:`close`, which also wakes every waiter.
    """

    def __init__(self, issue_dir: Path, root: Path, log: Log) -> None:
        self.issue_dir = issue_dir
        self.root = root
        self.log = log
        self.stopping = threading.Event()
        self.templates_dir = _configured_templates_dir(root)
        self._boot = secrets.token_hex(4)
        self._build: Build | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition()  # notified after each build, and on close

    @property
    def latest(self) -> Build:
        if self._build is None:
            raise RuntimeError("the preview has not built yet: call start()")
        return self._build

    def template_roots(self) -> tuple[Path, ...]:
        """Where templates come from: the newsletter's own folder, then the built-in theme."""
        return (self.templates_dir, template_engine.THEME_DIR)

    def rebuild(self, changed: Iterable[str] = ()) -> Build:
        """Build the issue in memory, publish the outcome and wake the waiters."""
        paths = sorted(changed)
        with self._lock:
            if any(is_within(path, folder) for path in paths for folder in self.template_roots()):
                # The Jinja environment is cached per search path and checks only the
                # files it already loaded: a new override would go unnoticed.
                template_engine.reset_templates()
            number = self._build.number + 1 if self._build else 1
            started = time.perf_counter()
            result, errors = self._attempt()
            build = Build(
                number=number,
                version=f"{self._boot}.{number}",
                slug=self.issue_dir.name,
                finished=datetime.now().astimezone(),
                seconds=time.perf_counter() - started,
                errors=errors,
            )
            if result is not None:
                self.templates_dir = result.project.root / result.project.templates
                build = replace(
                    build,
                    subject=result.issue.subject,
                    html=result.rendered.html,
                    text=result.rendered.text,
                    eml=result.eml,
                    warnings=tuple(result.warnings),
                )
            with self._changed:
                self._build = build
                self._changed.notify_all()
        self._report(build, paths)
        return build

    def wait_for_build(self, after: int, timeout: float | None) -> Build | None:
        """The newest build once its number differs from ``after``; None on timeout or close."""
        with self._changed:
            self._changed.wait_for(
                lambda: self.stopping.is_set() or self.latest.number != after, timeout
            )
            if self.stopping.is_set() or self.latest.number == after:
                return None
            return self.latest

    def close(self) -> None:
        self.stopping.set()
        with self._changed:
            self._changed.notify_all()

    def _attempt(self) -> tuple[BuildResult | None, tuple[str, ...]]:
        try:
            return build_issue(self.issue_dir, write=False), ()
        except ContentError as exc:
            return None, tuple(str(p) for p in exc.problems) or (str(exc),)
        except DispatchError as exc:
            return None, (str(exc),)
        except Exception as exc:  # noqa: BLE001 - a bug or an odd template: show it, keep serving
            return None, (f"internal error: {type(exc).__name__}: {exc}",)

    def _report(self, build: Build, changed: list[str]) -> None:
        took = f"#{build.number}, {build.seconds * 1000:.0f} ms"
        prefix = f"{describe_changes(changed, self.root)}: " if changed else ""
        if build.ok:
            self.log(f"{prefix}built {build.slug} ({took})")
            for warning in build.warnings:
                self.log(f"warning: {warning}")
            return
        for problem in build.errors:
            self.log(f"error: {problem}")
        self.log(
            f"{prefix}build {build.number} of {build.slug} failed: "
            f"{plural(len(build.errors), 'problem')}, "
            "shown in the browser; save a fix to rebuild"
        )


def _configured_templates_dir(root: Path) -> Path:
    try:
        project = load_project(root)
    except DispatchError:
        return root / "templates"  # the default; corrected after the first good build
    return project.root / project.templates


def describe_changes(changed: list[str], root: Path) -> str:
    """The changed files for the log: relative to the project, the theme's as ``theme/…``."""
    names = []
    for path in changed:
        if is_within(path, template_engine.THEME_DIR):
            names.append("theme/" + os.path.relpath(path, template_engine.THEME_DIR))
        else:
            names.append(os.path.relpath(path, root) if is_within(path, root) else path)
    shown = ", ".join(names[:3])
    return f"{shown} and {len(names) - 3} more" if len(names) > 3 else shown
