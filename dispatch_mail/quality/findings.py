"""What `dispatch check` reports: findings, each with a level, and one report per issue.

Errors fail the check, warnings fail it only with --strict, notes never do.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal, TypedDict

Level = Literal["error", "warning", "note"]
LEVELS: tuple[Level, ...] = ("error", "warning", "note")


@dataclass(frozen=True)
class Finding:
    level: Level
    code: str  # e.g. "size.gmail-clip"; docs/checks.md lists them
    message: str
    where: str = ""

    def __str__(self) -> str:
        where = f" [{self.where}]" if self.where else ""
        return f"{self.level}: {self.code}: {self.message}{where}"


class SectionWeight(TypedDict):
    section: str
    bytes: int


class CheckStats(TypedDict):
    """The figures the text report prints above the findings."""

    html_bytes: int
    text_bytes: int
    links: int
    images: int
    sections: list[SectionWeight]
    client_data: str


@dataclass
class CheckReport:
    slug: str
    path: str
    findings: list[Finding] = field(default_factory=list)
    stats: CheckStats | None = None  # None when the manifest did not load

    def count(self, level: str) -> int:
        return sum(1 for f in self.findings if f.level == level)

    def failed(self, strict: bool = False) -> bool:
        return self.count("error") > 0 or (strict and self.count("warning") > 0)

    def to_dict(self) -> dict[str, object]:
        return {
            "issue": self.slug,
            "path": self.path,
            "errors": self.count("error"),
            "warnings": self.count("warning"),
            "notes": self.count("note"),
            "stats": self.stats or {},
            "findings": [dataclasses.asdict(f) for f in self.findings],
        }
