"""When an event happens: ISO 8601 dates and times, IANA time zones, and the rules between them.

An owner writes a time as it appears on the poster (``2026-05-12T09:00``) and
names the zone once (``timezone: Europe/Stockholm``), or writes an offset
(``2026-05-12T09:00+02:00``), or a date alone for an all-day event. A time with
neither zone nor offset is refused: a reader in another country would get the
wrong hour, and so would every calendar that imports the ``.ics``.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# an IANA name: what zoneinfo accepts and what an iCalendar TZID parameter may hold unquoted
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*")
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:?\d{2})?")


def parse_moment(text: str) -> date | datetime:
    """``2026-05-12`` → a date; ``2026-05-12T09:00[+02:00|Z]`` → a datetime (aware or naive).

    Raises ValueError for anything else, including seconds fractions and week dates:
    one spelling each, so what the owner wrote is what the calendar shows.
    """
    text = text.strip()
    if _DATE_ONLY.fullmatch(text):
        return date.fromisoformat(text)
    if not _DATE_TIME.fullmatch(text):
        raise ValueError(text)
    return datetime.fromisoformat(text.replace(" ", "T", 1))


def moment_problem(text: str) -> str | None:
    """Why ``text`` is not a date or date-time an event may start or end at, or None."""
    try:
        parse_moment(text)
    except ValueError:
        return (
            f"{text!r} is not a date or date-time (use 2026-05-12 for a whole day, "
            "2026-05-12T09:00 with `timezone`, or 2026-05-12T09:00+02:00)"
        )
    return None


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The zone named ``name`` (cached: every filter and the calendar ask again)."""
    return ZoneInfo(name)


def zone_problem(name: str) -> str | None:
    """Why ``name`` is not an IANA time zone this machine knows, or None."""
    if _ZONE_NAME.fullmatch(name):
        try:
            zone(name)
            return None
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    return f"{name!r} is not a time zone (use an IANA name such as 'Europe/Stockholm' or 'UTC')"


class Span(NamedTuple):
    """An event's time resolved: aware datetimes in the event's zone, or dates (all day)."""

    start: date | datetime
    end: date | datetime | None
    zone_name: str | None  # the IANA name, when the event gives one

    @property
    def all_day(self) -> bool:
        return not isinstance(self.start, datetime)


def resolve(start: str, end: str | None, timezone: str | None) -> Span:
    """The span of an event already validated by :func:`span_problems`."""
    tz: tzinfo | None = zone(timezone) if timezone else None

    def at(text: str) -> date | datetime:
        moment = parse_moment(text)
        if not isinstance(moment, datetime):
            return moment
        if moment.tzinfo is None:
            return moment.replace(tzinfo=tz)
        return moment.astimezone(tz) if tz is not None else moment

    return Span(at(start), at(end) if end else None, timezone)


def span_problems(start: str, end: str | None, timezone: str | None) -> list[tuple[str, str]]:
    """(field, message) for each rule an event's time breaks, beyond each field's own syntax."""
    first = parse_moment(start)
    last = parse_moment(end) if end else None
    problems: list[tuple[str, str]] = []
    for name, moment in (("start", first), ("end", last)):
        if not isinstance(moment, datetime):
            continue
        if moment.tzinfo is None and timezone is None:
            problems.append(
                (
                    name,
                    "has no time zone: add `timezone:` (e.g. Europe/Stockholm) to the event, "
                    "or an offset such as +02:00",
                )
            )
        elif moment.tzinfo is not None and timezone is not None:
            expected = moment.replace(tzinfo=None).replace(tzinfo=zone(timezone)).utcoffset()
            if moment.utcoffset() != expected:
                problems.append(
                    (
                        name,
                        f"its offset {offset_text(moment.utcoffset())} is not {timezone}'s on that "
                        f"day ({offset_text(expected)}); leave the offset out or correct it",
                    )
                )
    if problems or last is None:
        return problems
    if isinstance(first, datetime) != isinstance(last, datetime):
        kind = "a date-time" if isinstance(first, datetime) else "a date (all day)"
        return [("end", f"must be {kind}, like start")]
    span = resolve(start, end, timezone)
    assert span.end is not None
    if span.end < span.start:  # both dates or both aware datetimes
        return [("end", f"is before start ({start})")]
    return []


def offset_text(delta: timedelta | None) -> str:
    """``+02:00`` style: for messages, and for a zone with no abbreviation."""
    minutes = int((delta or timedelta()).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
