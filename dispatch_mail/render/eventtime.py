"""An event's time as a reader reads it: in the event's own zone, with the zone named.

In English as written here; in another language from CLDR through Babel (its own
words, order and interval forms), with the zone's abbreviation or UTC offset after
it. ``render/templates.py`` registers this as the ``event_when`` filter.
"""

from __future__ import annotations

from datetime import date, datetime

from dispatch_mail.project.issue import Event
from dispatch_mail.project.when import offset_text, resolve
from dispatch_mail.render.strings import babel_locale, primary_subtag


def event_when(event: Event, lang: str = "en") -> str:
    """E.g. 'Tuesday 12 May 2026, 09:00–17:00 CEST' or '12–14 May 2026', in ``lang``."""
    span = resolve(event.start, event.end, event.timezone)
    start, end = span.start, span.end
    if primary_subtag(lang) != "en":
        return _localized(start, end, lang)
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


def _localized(start: date, end: date | None, lang: str) -> str:
    from babel.dates import format_date, format_interval, format_time

    locale = babel_locale(lang)
    if not isinstance(start, datetime):
        last = end if end is not None else start
        if last == start:
            return str(format_date(start, "full", locale=locale))
        return str(format_interval(start, last, "yMMMd", locale=locale))
    if not isinstance(end, datetime):
        day = format_date(start.date(), "full", locale=locale)
        time = format_time(start.replace(tzinfo=None), "short", locale=locale)
        return f"{day} {time} {_zone(start)}"
    day = format_date(start.date(), "full", locale=locale)
    if start.date() == end.date():
        times = format_interval(start.time(), end.time(), "Hm", locale=locale)
        return f"{day} {times} {_zone(end)}"
    last_day = format_date(end.date(), "full", locale=locale)
    first_time = format_time(start.replace(tzinfo=None), "short", locale=locale)
    last_time = format_time(end.replace(tzinfo=None), "short", locale=locale)
    return f"{day} {first_time} – {last_day} {last_time} {_zone(end)}"
