"""The error family of dispatch: every failure a user can cause has a type here.

The CLI turns these into exit codes in one place; a library user catches
:class:`DispatchError` and reads the structured fields instead of parsing text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input file, located as precisely as we can."""

    path: str
    line: int  # 1-based; 0 when unknown
    column: int  # 1-based; 0 when unknown
    key: str  # dotted key path such as ``sections[2].items[0].url``; may be empty
    message: str

    def __str__(self) -> str:
        where = self.path
        if self.line:
            where += f":{self.line}:{self.column}" if self.column else f":{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class DispatchError(Exception):
    """Base of every error dispatch raises on purpose."""

    exit_code = 1


class UsageError(DispatchError):
    """The command was called wrongly (missing folder, bad option combination)."""

    exit_code = 2


class ContentError(DispatchError):
    """One or more problems in a manifest, the project file or a template.

    All problems found are carried, so the user fixes everything in one pass.
    """

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]):
        self.problems = tuple(sorted(set(problems)))
        super().__init__("\n".join(str(p) for p in self.problems))


class RenderError(DispatchError):
    """A template or the MJML engine failed; the message names the template."""
