"""An iCalendar file (RFC 5545) per event, so a reader can put it in their calendar in one click.

One file per event, ``events/<n>-<title>.ics`` inside the issue's folder, both
beside the build and in the web archive: the email's "Add to calendar" link
points at the archive's copy, so it exists only when the issue has a web URL.
A file per event (not one for the issue) because a reader adds the one event
they are going to, and a calendar that imports a file adds all of it.

The output is deterministic, so a rebuild changes nothing: the UID is the
event's position in the issue (an edited title updates the same calendar entry
rather than adding a second), and DTSTAMP is the issue's date.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dispatch_mail.project.issue import Event, EventsSection, Issue
from dispatch_mail.project.settings import Project
from dispatch_mail.project.when import Span, resolve, zone

FOLDER = "events"
PRODID = "-//dispatch//newsletter events//EN"
_FOLD_OCTETS = 75  # RFC 5545 3.1: lines longer than 75 octets are folded
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs a TEXT value may not hold (HTAB is fine)


def issue_events(issue: Issue) -> list[tuple[Event, str]]:
    """Every event of the issue, in order, with its file's path inside the issue's folder."""
    found: list[tuple[Event, str]] = []
    for section in issue.sections:
        if isinstance(section, EventsSection):
            for event in section.items:
                found.append((event, f"{FOLDER}/{len(found) + 1}-{_file_slug(event)}.ics"))
    return found


def calendar_path(issue: Issue, event: Event) -> str:
    """The path of ``event``'s .ics in the issue's folder (the very object, not an equal one)."""
    return next(path for candidate, path in issue_events(issue) if candidate is event)


def calendar_files(project: Project, issue: Issue) -> dict[str, bytes]:
    """Each event's .ics, by its path inside the issue's folder."""
    return {
        path: ics_text(project, issue, event, n).encode("utf-8")
        for n, (event, path) in enumerate(issue_events(issue), start=1)
    }


def ics_text(project: Project, issue: Issue, event: Event, n: int) -> str:
    """One VCALENDAR with one VEVENT (and the VTIMEZONE its TZID needs), CRLF-terminated."""
    span = resolve(event.start, event.end, event.timezone)
    place = event.place or event.online
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        *(_vtimezone(span) if span.zone_name and not span.all_day else []),
        "BEGIN:VEVENT",
        f"UID:{escape_text(f'event-{n}.{issue.slug}@{project.sender.domain.lower()}')}",
        f"DTSTAMP:{issue.date:%Y%m%d}T000000Z",
        *_times(span),
        f"SUMMARY:{escape_text(event.title.plain)}",
        *([f"LOCATION:{escape_text(place)}"] if place else []),
        *([f"URL:{_uri(url)}"] if (url := _main_url(project, issue, event)) else []),
        *([f"DESCRIPTION:{escape_text(text)}"] if (text := _description(event)) else []),
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(fold(line) + "\r\n" for line in lines)


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545 3.3.11): backslash, ';' and ',' escaped, line breaks as ``\\n``.

    Every other control character is dropped, so no value can start a property of its own.
    """
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    value = value.replace("\n", "\\n")
    return _CONTROL.sub("", value)


def fold(line: str) -> str:
    """``line`` folded at 75 octets (RFC 5545 3.1), never inside a UTF-8 sequence."""
    out: list[str] = []
    current, size, limit = "", 0, _FOLD_OCTETS
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            out.append(current)
            current, size, limit = "", 0, _FOLD_OCTETS - 1  # a continuation starts with a space
        current += char
        size += width
    out.append(current)
    return "\r\n ".join(out)


# ------------------------------------------------------------------ the parts
def _times(span: Span) -> list[str]:
    if span.all_day:
        last = span.end or span.start
        # DTEND of an all-day event is the day after its last (exclusive)
        return [
            f"DTSTART;VALUE=DATE:{span.start:%Y%m%d}",
            f"DTEND;VALUE=DATE:{last + timedelta(days=1):%Y%m%d}",
        ]
    out = []
    for name, moment in (("DTSTART", span.start), ("DTEND", span.end)):
        if not isinstance(moment, datetime):
            continue
        if span.zone_name:
            out.append(f"{name};TZID={span.zone_name}:{moment:%Y%m%dT%H%M%S}")
        else:  # an offset alone names no zone: the moment in UTC
            out.append(f"{name}:{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}")
    return out


def _main_url(project: Project, issue: Issue, event: Event) -> str | None:
    return event.online or (event.action.url if event.action else None) or project.web_url(
        issue.slug
    )


def _description(event: Event) -> str:
    parts = [event.description.plain] if event.description else []
    if event.online:
        parts.append(f"Online: {event.online}")
    if event.action:
        parts.append(f"{event.action.label.rstrip(' →')}: {event.action.url}")
    return "\n\n".join(parts)


def _uri(url: str) -> str:
    """A URI value is not escaped (RFC 5545 3.3.13); the manifest's URLs hold no CTLs, but a
    value built in Python might."""
    return re.sub(r"[\x00-\x20\x7f]", "", url)


def _file_slug(event: Event) -> str:
    text = unicodedata.normalize("NFKD", event.title.plain).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].rstrip("-")
    return slug or "event"


def _vtimezone(span: Span) -> list[str]:
    """The VTIMEZONE that RFC 5545 3.6.5 requires for a TZID: the zone's offsets from the start
    of the event's year to its end, read from the zone database (no recurrence rules: the
    observances are listed, which every calendar reads)."""
    assert span.zone_name and isinstance(span.start, datetime)
    tz = zone(span.zone_name)
    first = datetime(span.start.year, 1, 1, tzinfo=tz).astimezone(UTC)
    last = span.end if isinstance(span.end, datetime) else span.start
    lines = ["BEGIN:VTIMEZONE", f"TZID:{span.zone_name}"]
    begin = first.astimezone(tz)
    lines += _observance(tz, begin.replace(tzinfo=None), begin.utcoffset(), first)
    for moment in _transitions(tz, first, last.astimezone(UTC) + timedelta(days=1)):
        before = (moment - timedelta(seconds=1)).astimezone(tz).utcoffset()
        local_onset = (moment + (before or timedelta())).replace(tzinfo=None)
        lines += _observance(tz, local_onset, before, moment)
    return [*lines, "END:VTIMEZONE"]


def _observance(
    tz: ZoneInfo, local_onset: datetime, before: timedelta | None, moment: datetime
) -> list[str]:
    after = moment.astimezone(tz)
    kind = "DAYLIGHT" if after.dst() else "STANDARD"
    name = after.tzname() or ""
    return [
        f"BEGIN:{kind}",
        f"DTSTART:{local_onset:%Y%m%dT%H%M%S}",
        f"TZOFFSETFROM:{_ics_offset(before)}",
        f"TZOFFSETTO:{_ics_offset(after.utcoffset())}",
        *([f"TZNAME:{escape_text(name)}"] if name else []),
        f"END:{kind}",
    ]


def _transitions(tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The UTC instants in [start, end) at which ``tz``'s offset changes, to the second."""
    found: list[datetime] = []
    day = timedelta(days=1)
    at = start
    while at < end:
        nxt = at + day
        if at.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset():
            lo, hi = at, nxt  # the offset is lo's just before hi's: find the first second of hi's
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                same = mid.astimezone(tz).utcoffset() == lo.astimezone(tz).utcoffset()
                lo, hi = (mid, hi) if same else (lo, mid)
            found.append(hi)
        at = nxt
    return found


def _ics_offset(delta: timedelta | None) -> str:
    seconds = int((delta or timedelta()).total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    return f"{sign}{hours:02d}{rest // 60:02d}" + (f"{rest % 60:02d}" if rest % 60 else "")
