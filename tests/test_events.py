"""The events section: times in their own zone, located problems, and an .ics per event.

The .ics is read back as a calendar reads it (lines unfolded, then split into
properties), so these tests check what a calendar would see, not our strings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dispatch_mail.errors import ContentError
from dispatch_mail.project.loader import load
from dispatch_mail.publish.archive import build_archive
from dispatch_mail.publish.build import build_issue
from dispatch_mail.render.calendar import fold
from tests.helpers.project import PROJECT_YAML, REPO

ISSUE = "issues/test/issue.yaml"
WEB = PROJECT_YAML + "base_url: https://news.example.org/\n"


def issue_with_events(events: str) -> str:
    return (
        "subject: Test issue\nname: Issue 1\ndate: 2026-01-08\nmasthead:\n  headline: Hello\n"
        "sections:\n  - kind: events\n    heading: Events\n    items:\n" + events
    )


def unfold(raw: bytes) -> list[str]:
    text = raw.decode("utf-8")
    assert "\n" not in text.replace("\r\n", ""), "every line ends in CRLF"
    return text.replace("\r\n ", "").split("\r\n")[:-1]


def properties(raw: bytes, component: str = "VEVENT") -> dict[str, str]:
    """name (with parameters) → value, for the properties of the first ``component``."""
    lines = unfold(raw)
    inside = lines[lines.index(f"BEGIN:{component}") + 1 : lines.index(f"END:{component}")]
    out: dict[str, str] = {}
    for line in inside:
        name, _, value = line.partition(":")
        out[name] = value
    return out


def unescape(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def problems(folder: Path) -> list[str]:
    with pytest.raises(ContentError) as caught:
        load(folder)
    return [str(p) for p in caught.value.problems]


# ------------------------------------------------------------------ the example's files
@pytest.fixture(scope="module")
def example_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    build_issue(REPO / "examples" / "all-sections", out)
    return out


def test_a_timed_event_keeps_its_local_time_and_names_its_zone(example_build):
    raw = (example_build / "events" / "1-kestrel-summit-2026.ics").read_bytes()
    event = properties(raw)
    assert event["DTSTART;TZID=Europe/Lisbon"] == "20260922T090000"
    assert event["DTEND;TZID=Europe/Lisbon"] == "20260923T173000"
    assert unescape(event["SUMMARY"]) == "Kestrel Summit 2026"
    assert unescape(event["LOCATION"]) == "Centro de Congressos, Lisbon"
    assert event["URL"] == "https://live.example.org/kestrel-summit-2026"
    assert event["UID"] == "event-1.all-sections@example.org"
    assert event["DTSTAMP"] == "20260416T000000Z"  # the issue's date: a rebuild changes nothing
    zone = properties(raw, "VTIMEZONE")
    assert zone["TZID"] == "Europe/Lisbon"
    # the summit is in summer time: the zone says Lisbon is at +01:00 from 29 March 2026
    daylight = properties(raw, "DAYLIGHT")
    assert (daylight["DTSTART"], daylight["TZOFFSETTO"]) == ("20260329T010000", "+0100")
    description = unescape(event["DESCRIPTION"])
    assert "Register for the summit: https://events.example.org/" in description


def test_an_all_day_event_is_a_date_with_an_exclusive_end(example_build):
    raw = (example_build / "events" / "2-community-bug-bash-day.ics").read_bytes()
    event = properties(raw)
    assert event["DTSTART;VALUE=DATE"] == "20260507"
    assert event["DTEND;VALUE=DATE"] == "20260508"
    assert "BEGIN:VTIMEZONE" not in unfold(raw)


def test_every_line_is_at_most_75_octets(example_build):
    for path in (example_build / "events").iterdir():
        for line in path.read_bytes().split(b"\r\n"):
            assert len(line) <= 75, (path.name, line)


def test_folding_never_splits_a_character():
    line = "SUMMARY:" + "日本語のイベント" * 12
    folded = fold(line)
    for part in folded.split("\r\n"):
        assert len(part.encode("utf-8")) <= 75
        part.encode("utf-8").decode("utf-8")  # each piece is whole characters
    assert folded.replace("\r\n ", "") == line


# ------------------------------------------------------------------ hostile text and zones
def test_hostile_text_is_escaped_and_cannot_start_a_property(write_project):
    folder = write_project(
        issue_with_events(
            "      - title: 'Evil, event; really \\\\ yes'\n"
            "        start: 2026-03-01T10:00+01:00\n"
            "        end: 2026-03-01T12:00+01:00\n"
            '        place: "Room 1, floor 2; east"\n'
            '        description: "Line one\\r\\nBEGIN:VEVENT\\nX-EVIL:1"\n'
        ),
        WEB,
    )
    result = build_issue(folder)
    raw = (result.out_dir / "events" / "1-evil-event-really-yes.ics").read_bytes()
    lines = unfold(raw)
    assert lines.count("BEGIN:VEVENT") == 1 and not any(x.startswith("X-EVIL") for x in lines)
    event = properties(raw)
    assert event["SUMMARY"] == "Evil\\, event\\; really \\\\ yes"
    assert unescape(event["SUMMARY"]) == "Evil, event; really \\ yes"
    assert unescape(event["LOCATION"]) == "Room 1, floor 2; east"
    assert unescape(event["DESCRIPTION"]).startswith("Line one")
    # an offset alone names no zone: the moment goes out in UTC
    assert event["DTSTART"] == "20260301T090000Z" and event["DTEND"] == "20260301T110000Z"
    assert "Add to calendar" in result.rendered.text
    assert (
        "https://news.example.org/test/events/1-evil-event-really-yes.ics" in result.rendered.html
    )


def test_without_a_web_url_there_is_no_calendar_link_but_the_file_is_built(write_project):
    folder = write_project(issue_with_events("      - title: Meetup\n        start: 2026-03-01\n"))
    result = build_issue(folder)
    assert "Add to calendar" not in result.rendered.text
    assert (result.out_dir / "events" / "1-meetup.ics").is_file()
    assert result.calendars == {
        "events/1-meetup.ics": len((result.out_dir / "events" / "1-meetup.ics").read_bytes())
    }


def test_the_time_shows_in_the_events_zone(write_project):
    folder = write_project(
        issue_with_events(
            "      - title: Launch\n        start: 2026-07-01T18:30\n"
            "        end: 2026-07-01T20:00\n"
            "        timezone: Asia/Tokyo\n        place: Hall B\n"
        )
    )
    result = build_issue(folder, write=False)
    assert "Wednesday 1 July 2026, 18:30–20:00 JST" in result.rendered.text
    assert "Wednesday 1 July 2026, 18:30–20:00 JST" in result.rendered.html
    assert "Hall B" in result.rendered.html


def test_a_removed_event_leaves_no_calendar_file(write_project):
    folder = write_project(issue_with_events("      - title: Old\n        start: 2026-03-01\n"))
    out = build_issue(folder).out_dir
    (folder / "issue.yaml").write_text(
        issue_with_events("      - title: New\n        start: 2026-03-02\n"), encoding="utf-8"
    )
    build_issue(folder)
    assert sorted(p.name for p in (out / "events").iterdir()) == ["1-new.ics"]


# ------------------------------------------------------------------ located problems
def test_a_bad_time_zone_is_located(write_project):
    folder = write_project(
        issue_with_events(
            "      - title: T\n        start: 2026-03-01T10:00\n        timezone: Mars/Olympus\n"
        )
    )
    assert problems(folder) == [
        f"{ISSUE}:12:19: sections[0].items[0].timezone: 'Mars/Olympus' is not a time zone "
        "(use an IANA name such as 'Europe/Stockholm' or 'UTC')"
    ]


def test_a_path_is_not_a_time_zone(write_project):
    folder = write_project(
        issue_with_events(
            "      - title: T\n        start: 2026-03-01\n        timezone: ../../etc\n"
        )
    )
    assert problems(folder)[0].endswith(
        "'../../etc' is not a time zone (use an IANA name such as 'Europe/Stockholm' or 'UTC')"
    )


def test_an_end_before_the_start_is_located_at_the_end(write_project):
    folder = write_project(
        issue_with_events(
            "      - title: T\n        start: 2026-03-01T10:00\n        end: 2026-03-01T09:00\n"
            "        timezone: Europe/Stockholm\n"
        )
    )
    assert problems(folder) == [
        f"{ISSUE}:12:14: sections[0].items[0].end: is before start (2026-03-01T10:00)"
    ]


def test_a_time_without_a_zone_is_located(write_project):
    folder = write_project(issue_with_events("      - title: T\n        start: 2026-03-01T10:00\n"))
    [problem] = problems(folder)
    assert problem.startswith(f"{ISSUE}:11:16: sections[0].items[0].start: has no time zone")


def test_an_offset_that_disagrees_with_the_zone_is_located(write_project):
    folder = write_project(
        issue_with_events(
            "      - title: T\n        start: 2026-07-01T10:00+01:00\n"
            "        timezone: Europe/Stockholm\n"
        )
    )
    [problem] = problems(folder)
    assert "start: its offset +01:00 is not Europe/Stockholm's on that day (+02:00)" in problem


def test_a_date_end_for_a_timed_start_and_nonsense_are_located(write_project):
    folder = write_project(
        issue_with_events(
            "      - title: T\n        start: 2026-07-01T10:00Z\n        end: 2026-07-02\n"
            "      - title: U\n        start: next tuesday\n"
        )
    )
    found = problems(folder)
    assert found[0] == f"{ISSUE}:12:14: sections[0].items[0].end: must be a date-time, like start"
    assert found[1].startswith(f"{ISSUE}:14:16: sections[0].items[1].start: 'next tuesday' is not")


# ------------------------------------------------------------------ the archive
def test_the_archive_holds_each_events_calendar_file(tmp_path, example_build):
    site = build_archive(REPO / "examples", tmp_path / "site").out_dir
    files = sorted(p.name for p in (site / "all-sections" / "events").iterdir())
    assert files == ["1-kestrel-summit-2026.ics", "2-community-bug-bash-day.ics"]
    built = (example_build / "events" / files[0]).read_bytes()
    assert (site / "all-sections" / "events" / files[0]).read_bytes() == built
    # the email links to the archive's copy
    page = (site / "all-sections" / "index.html").read_text(encoding="utf-8")
    assert "https://news.example.org/weekly/all-sections/events/1-kestrel-summit-2026.ics" in page
