"""Issue slugs that name a period (2027-01, 2027-q1, 2027-w05, 2027-01-04) and what comes next.

`dispatch new` dates an issue from its slug rather than from the day it was
started, and with no slug at all it names the period after the last issue's, at
the cadence the existing issues show. What it cannot tell, it asks for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from dispatch_mail.errors import UsageError

Kind = Literal["monthly", "quarterly", "weekly", "dated"]


@dataclass(frozen=True)
class Period:
    """The period an issue slug names; ``start`` is the issue's date."""

    kind: Kind
    start: date

    @property
    def slug(self) -> str:
        if self.kind == "monthly":
            return f"{self.start:%Y-%m}"
        if self.kind == "quarterly":
            return f"{self.start.year}-q{(self.start.month - 1) // 3 + 1}"
        if self.kind == "weekly":
            year, week, _ = self.start.isocalendar()
            return f"{year}-w{week:02d}"
        return self.start.isoformat()

    @property
    def name(self) -> str:
        """How the issue is called in its masthead and subject: 'January 2027', 'Q1 2027'."""
        if self.kind == "monthly":
            return f"{self.start:%B %Y}"
        if self.kind == "quarterly":
            return f"Q{(self.start.month - 1) // 3 + 1} {self.start.year}"
        if self.kind == "weekly":
            year, week, _ = self.start.isocalendar()
            return f"Week {week}, {year}"
        return f"{self.start.day} {self.start:%B %Y}"

    def following(self, step_days: int = 7) -> Period:
        """The next period of the same kind (a dated slug moves on by ``step_days``)."""
        if self.kind == "monthly":
            year, month = divmod(self.start.year * 12 + self.start.month, 12)  # month is 0-based
            return Period("monthly", date(year, month + 1, 1))
        if self.kind == "quarterly":
            year, month = divmod(self.start.year * 12 + self.start.month - 1 + 3, 12)
            return Period("quarterly", date(year, month + 1, 1))
        if self.kind == "weekly":
            return Period("weekly", self.start + timedelta(days=7))
        return Period("dated", self.start + timedelta(days=step_days))


_SHAPES: tuple[tuple[re.Pattern[str], Kind], ...] = (
    (re.compile(r"(\d{4})-(\d{2})"), "monthly"),
    (re.compile(r"(\d{4})-q(\d)"), "quarterly"),
    (re.compile(r"(\d{4})-w(\d{2})"), "weekly"),
    (re.compile(r"(\d{4})-(\d{2})-(\d{2})"), "dated"),
)


def parse_period(slug: str) -> Period | None:
    """The period ``slug`` names, or None when it names none (or an impossible one: 2027-13)."""
    for pattern, kind in _SHAPES:
        m = pattern.fullmatch(slug)
        if not m:
            continue
        numbers = [int(g) for g in m.groups()]
        try:
            if kind == "monthly":
                return Period(kind, date(numbers[0], numbers[1], 1))
            if kind == "quarterly":
                if not 1 <= numbers[1] <= 4:
                    return None
                return Period(kind, date(numbers[0], 3 * numbers[1] - 2, 1))
            if kind == "weekly":
                return Period(kind, date.fromisocalendar(numbers[0], numbers[1], 1))
            return Period(kind, date(*numbers))
        except ValueError:
            return None
    return None


def _cadence_of_dates(earlier: date, later: date) -> Kind | None:
    """The cadence that a gap between two issues' dates shows, if it is a usual one."""
    gap = (later - earlier).days
    if 5 <= gap <= 9:
        return "weekly"
    if 25 <= gap <= 35:
        return "monthly"
    if 80 <= gap <= 100:
        return "quarterly"
    return None


def _period_of(kind: Kind, day: date) -> Period:
    """The period of ``kind`` that contains ``day``."""
    if kind == "monthly":
        return Period(kind, day.replace(day=1))
    if kind == "quarterly":
        return Period(kind, date(day.year, (day.month - 1) // 3 * 3 + 1, 1))
    return Period("weekly", day - timedelta(days=day.weekday()))


def cadence_label(kind: Kind, step_days: int) -> str:
    if kind != "dated":
        return kind
    return {7: "weekly", 14: "fortnightly"}.get(step_days, f"every {step_days} days")


@dataclass(frozen=True)
class Guess:
    """The next issue's period, and the words that say how it was guessed."""

    period: Period
    cadence: str  # 'monthly', 'weekly', 'every 10 days', …
    after: str  # the last issue's slug


def next_period(issues: list[tuple[str, date]]) -> Guess:
    """The period after the newest of ``issues`` (slug, date), at the cadence they show.

    The newest issue's slug decides when it names a period; a dated slug (2027-01-04)
    moves on by the gap to the issue dated before it. Otherwise the gap between the
    last two issues' dates says weekly, monthly or quarterly.
    """
    if not issues:
        raise UsageError("no previous issue to start from", hint="previous")
    ordered = sorted(issues, key=lambda item: (item[1], item[0]))
    last_slug, last_date = ordered[-1]
    last = parse_period(last_slug)
    if last is not None and last.kind != "dated":
        return Guess(last.following(), last.kind, last_slug)
    earlier = [d for s, d in ordered[:-1] if d < last_date]
    if last is not None:
        dated = [p.start for s, _ in ordered[:-1] if (p := parse_period(s)) and p.kind == "dated"]
        before = [d for d in dated if d < last.start]
        if before:
            step = (last.start - max(before)).days
            return Guess(last.following(step), cadence_label("dated", step), last_slug)
    elif earlier:
        kind = _cadence_of_dates(max(earlier), last_date)
        if kind is not None:
            return Guess(_period_of(kind, last_date).following(), kind, last_slug)
    raise UsageError(
        f"cannot tell from the issues so far which period comes after {last_slug}: "
        "name the new issue, e.g. `dispatch new 2027-01` (monthly), 2027-q1, 2027-w05 or 2027-01-04"
    )
