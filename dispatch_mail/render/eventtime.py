"""An event's time as a reader reads it: in the event's own zone, with the zone named.

English for now; the words and the order come from the theme's catalog once it
has them (``render/templates.py`` registers these as the ``event_when`` filter).
"""

from __future__ import annotations

from datetime import date, datetime

from dispatch_mail.project.issue import Event
from dispatch_mail.project.when import offset_text, resolve


def event_when(event: Event) -> str:
    """E.g. 'Tuesday 12 May 2026, 09:00–17:00 CEST' or '12–14 May 2026'."""
    span = resolve(event.start, event.end, event.timezone)
    start, end = span.start, span.end
    if not isinstance(start, datetime):
        return _day_range(start, end if end is not None else start)
    if not isinstance(end, datetime):
        return f"{_day(start)}, {start:%H:%M} {_zone(start)}"
    zones = (_zone(start), _zone(end))
    if start.date() == end.date() and zones[0] == zones[1]:
        return f"{_day(start)}, {start:%H:%M}–{end:%H:%M} {zones[1]}"
    first = f"{_day(start)}, {start:%H:%M}" + (f" {zones[0]}" if zones[0] != zones[1] else "")
    last = end.strftime("%H:%M") if start.date() == end.date() else f"{_day(end)}, {end:%H:%M}"
    return f"{first} – {last} {zones[1]}"


def _day(moment: date) -> str:
    return f"{moment:%A} {moment.day} {moment:%B %Y}"


def _day_range(first: date, last: date) -> str:
    if first == last:
        return _day(first)
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}–{last.day} {last:%B %Y}"
    if first.year == last.year:
        return f"{first.day} {first:%B} – {last.day} {last:%B %Y}"
    return f"{first.day} {first:%B %Y} – {last.day} {last:%B %Y}"


def _zone(moment: datetime) -> str:
    """The zone's abbreviation ('CEST'), or 'UTC+05:30' where it has none."""
    name = moment.tzname() or ""
    if name and name[0] not in "+-" and not name.startswith("UTC"):
        return name
    offset = moment.utcoffset()
    return f"UTC{offset_text(offset)}" if offset else "UTC"
