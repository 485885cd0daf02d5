"""Hostile recipient lists: each bad row reported with its line, never sent; each good one once.

The list goes through the real `dispatch send` to a real SMTP server (tests/helpers/smtp_server.py),
which records every RCPT: an address the list refused must never appear there,
and neither may anyone a forged header tried to add (``Bcc: x@y``). A list of
200,000 rows is streamed in bounded memory.
"""

from __future__ import annotations

import re
import sys
import tracemalloc
from pathlib import Path

import pytest

from dispatch_mail.delivery.audience import Recipient, scan_audience
from dispatch_mail.project.paths import shown_path
from tests.helpers.project import Project
from tests.helpers.send import dispatch_env, invoke, send_args

# (raw bytes of one record, what must become of it). Its line is counted as the file is written.
HOSTILE: list[tuple[bytes, str]] = [
    (b"ann@example.com,Ann,Paris", "sent ann@example.com"),
    (b"not-an-address,Bad,X", "invalid: 'not-an-address' is not a valid email address"),
    (b'eve@example.com,"Eve\r\nBcc: x@y",X', "invalid: header injection: column 'name'"),
    (
        b"nul@example.com,Nul\x00Name,X",
        "invalid: header injection: column 'name' contains a line break or NUL",
    ),
    (b"zoe@example.com,Zo\xeb,X", "not valid UTF-8"),  # latin-1, not UTF-8
    (b"ann@EXAMPLE.COM,Ann again,X", "duplicate: same address as line 2"),
    (b"bob@example.com,Bob,X", "sent bob@example.com"),
    (b'"mallory@example.com, victim@example.net",M,X', "invalid: "),
    (b'"Mallory <mallory2@example.com>",M,X', "invalid: "),
    (b'"bob2@example.com\r\nBcc: victim2@example.net",B,X', "invalid: contains a line break"),
    (
        b"carl@example.com," + b"C" * 600 + b",X",
        "invalid: column 'name' is longer than 500 characters",
    ),
    (b",Nobody,X", "invalid: no address"),
    (b"\x1b[31mred@example.com,Red,X", "invalid: "),
    (b"sup@example.com,Suppressed,X", "suppressed: unsubscribed or bounced"),
    (b'dan@example.com,"Dan (a quote never closed),X', "invalid: header injection: column 'name'"),
    (b"erin@example.com,Erin,X", "not read: inside the quoted 'name' field that starts on line"),
    (b'fay@example.com,Fay,X"', "not read: inside the quoted 'name' field that starts on line"),
    (b"gus@example.com,Gus,X", "sent gus@example.com"),
    (b'" hal@Example.COM ",Hal,X', "sent hal@example.com"),
    (b"ivy@example.com,Ivy", "sent ivy@example.com"),  # short row
    (b"jon@example.com,Jon,X,extra,cells", "sent jon@example.com"),  # long row
    (b"kim@example.com,Kim,X\r", "sent kim@example.com"),  # a CRLF line among LF lines
    (
        b"Zo\xc3\xab@example.com,Zo\xc3\xab,X",
        "invalid: ",
    ),  # UTF-8, but not an ASCII address (no SMTPUTF8)
]
NEVER = {
    "eve@example.com",
    "x@y",
    "nul@example.com",
    "zoe@example.com",
    "mallory@example.com",
    "victim@example.net",
    "mallory2@example.com",
    "bob2@example.com",
    "victim2@example.net",
    "carl@example.com",
    "red@example.com",
    "sup@example.com",
    "dan@example.com",
    "erin@example.com",
    "fay@example.com",
}
SENT = {
    "ann@example.com",
    "bob@example.com",
    "gus@example.com",
    "hal@example.com",
    "ivy@example.com",
    "jon@example.com",
    "kim@example.com",
}


def write_hostile(project: Project) -> tuple[Path, dict[int, str]]:
    """lists/subscribers.csv from HOSTILE, and suppressions: the path, line → expectation."""
    path = project.root / "lists" / "subscribers.csv"
    data, expected, line = b"email,name,city\n", {}, 2
    for record, outcome in HOSTILE:
        expected[line] = outcome
        data += record + b"\n"
        line += len(re.findall(rb"\r\n|\r|\n", record + b"\n"))
    path.write_bytes(data)
    (project.root / "lists" / "suppressed.csv").write_text(
        "email\nSUP@example.com\n", encoding="utf-8"
    )
    return path, expected


def test_each_bad_row_is_reported_with_its_line_and_never_sent(project, server):
    path, expected = write_hostile(project)
    items = list(scan_audience(path, {"sup@example.com"}))
    reported = {item.line: item for item in items if not isinstance(item, Recipient)}
    for line, outcome in expected.items():
        if outcome.startswith("sent "):
            assert line not in reported, (line, reported.get(line))
        else:
            assert line in reported, f"line {line} ({outcome}) was not reported"
            assert reported[line].reason.startswith(outcome), (line, str(reported[line]))
    assert len(reported) == sum(1 for o in expected.values() if not o.startswith("sent "))

    result = invoke(*send_args(project, server, Path("subscribers")))
    assert result.exit_code == 0, result.output
    assert f"to send now:  {len(SENT)}" in result.output
    received = server.handler.per_recipient()
    assert received == dict.fromkeys(SENT, 1), "every good row once, nothing else"
    rcpts = {rcpt for m in server.messages for rcpt in m.rcpt_tos}
    assert rcpts == SENT and not (NEVER & rcpts)
    assert not (NEVER & set(server.handler.tries["RCPT"])), (
        "an excluded address was never even tried"
    )
    for message in server.messages:
        parsed = message.message
        assert parsed["Bcc"] is None and parsed["Cc"] is None
        assert [a.addr_spec for a in parsed["To"].addresses] == [message.recipient]
        assert b"\nBcc:" not in message.data and b"victim" not in message.data


def test_the_exclusions_are_listed_one_per_line_and_printable(project, server):
    _, expected = write_hostile(project)
    assert invoke(*send_args(project, server, Path("subscribers"))).exit_code == 0
    result = invoke(
        "status", str(project.issue_dir), "--journal", str(project.journal), "--excluded"
    )
    assert result.exit_code == 0
    lines = [line for line in result.output.splitlines() if line.startswith("  excluded: ")]
    listed = shown_path(project.root / "lists" / "subscribers.csv")  # as the list was read
    assert len(lines) == sum(1 for o in expected.values() if not o.startswith("sent "))
    for line in lines:
        assert line.isprintable(), repr(line)
        assert line.startswith(f"  excluded: {listed}:"), line
    assert any("\\x1b[31mred@example.com" in line for line in lines), (
        "the escape sequence is shown, not run"
    )

    dry = invoke(
        *send_args(project, None, Path("subscribers"), "--dry-run", str(project.root / "dry.mbox"))
    )
    assert dry.exit_code == 0 and f"dry run: {len(SENT)} messages written" in dry.output
    excluded = [line for line in dry.stderr.splitlines() if line.startswith("excluded: ")]
    assert len(excluded) == len(lines) and all(
        line.isprintable() for line in dry.stderr.splitlines()
    )


@pytest.mark.parametrize(
    "content,message",
    [
        ("email,name\nann@example.com,Ann\n".encode("utf-16"), "the header is not valid UTF-8"),
        (b"", "needs an 'email' column"),
        (b"name,city\nAnn,Paris\n", "needs an 'email' column (found: name, city)"),
        (b"e\xe9mail,name\nann@example.com,Ann\n", "the header is not valid UTF-8"),
    ],
)
def test_a_list_that_cannot_be_read_stops_before_anything_is_sent(
    project, server, content, message
):
    path = project.root / "bad.csv"
    path.write_bytes(content)
    result = invoke(*send_args(project, server, path))
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and message in line
    assert server.handler.connections == 0


def test_a_whole_latin1_file_loses_only_the_rows_with_non_ascii_bytes(project, server):
    rows = [
        ("ann@example.com", "Ann"),
        ("zoe@example.com", "Zoë"),
        ("bob@example.com", "Bob"),
        ("rene@example.com", "René"),
        ("carl@example.com", "Carl"),
    ]
    path = project.root / "latin1.csv"
    path.write_bytes(("email,name\n" + "".join(f"{e},{n}\n" for e, n in rows)).encode("latin-1"))
    items = list(scan_audience(path))
    assert [i.email for i in items if isinstance(i, Recipient)] == [
        "ann@example.com",
        "bob@example.com",
        "carl@example.com",
    ]
    assert [(i.line, i.reason) for i in items if not isinstance(i, Recipient)] == [
        (3, "not valid UTF-8 (save the file as UTF-8)"),
        (5, "not valid UTF-8 (save the file as UTF-8)"),
    ]
    assert invoke(*send_args(project, server, path)).exit_code == 0
    assert server.handler.per_recipient() == dict.fromkeys(
        ["ann@example.com", "bob@example.com", "carl@example.com"], 1
    )


# ------------------------------------------------------------------ a huge list, streamed
ROWS = 200_000


@pytest.fixture(scope="module")
def huge(tmp_path_factory) -> tuple[Path, int, int]:
    """200,000 rows (every 1,000th invalid, every 997th a duplicate), written line by line."""
    path = tmp_path_factory.mktemp("huge") / "huge.csv"
    bad = duplicates = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("email,name,city\n")
        for i in range(ROWS):
            if i % 1000 == 7:
                handle.write(f"bad-{i},Bad {i},X\n")
                bad += 1
            elif i % 997 == 3:
                handle.write(f"r{i - 1:06d}@EXAMPLE.com,Dup {i},X\n")
                duplicates += 1
            else:
                handle.write(f"r{i:06d}@example.com,Reader {i},Springfield\n")
    return path, bad, duplicates


def test_a_huge_list_is_scanned_in_bounded_memory(huge):
    path, bad, duplicates = huge
    tracemalloc.start()
    try:
        recipients = excluded = 0
        for item in scan_audience(path):
            if isinstance(item, Recipient):
                recipients += 1
            else:
                excluded += 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (recipients, excluded) == (ROWS - bad - duplicates, bad + duplicates)
    assert peak < 100 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    print(
        f"\n[csv] {ROWS:,} rows scanned: peak {peak / 2**20:.1f} MiB traced"
        " (the de-duplication keys)"
    )


def test_a_huge_list_goes_into_the_journal_in_bounded_memory(project, huge):
    """The real command up to its plan: the list streamed into the journal; peak RSS."""
    import subprocess

    path, bad, duplicates = huge
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent (pytest, large)
    boot = (
        "import atexit, re, sys\n"
        "hwm = lambda: re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
        "atexit.register(lambda: sys.stderr.write(f'maxrss {hwm()}\\n'))\n"
        "from dispatch_mail.cli import main\nsys.argv[0] = 'dispatch'\nmain()\n"
    )
    args = [
        "send",
        str(project.issue_dir),
        "--list",
        str(path),
        "--journal",
        str(project.journal),
        "--smtp-host",
        "127.0.0.1",
        "--tls",
        "none",
    ]  # no --yes and no terminal: the plan, then a refusal
    done = subprocess.run(
        [sys.executable, "-c", boot, *args],
        cwd=project.root,
        env=dispatch_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and "not a terminal: add --yes" in done.stderr, done.stderr
    assert f"to send now:  {ROWS - bad - duplicates:,}" in done.stdout
    assert (
        f"excluded:     {bad + duplicates:,} ({duplicates} duplicate, {bad} invalid)" in done.stdout
    )
    rss = int(done.stderr.rsplit("maxrss ", 1)[1].split()[0]) / 1024
    assert rss < 150, f"peak RSS {rss:.0f} MiB"
    print(f"\n[csv] {ROWS:,} rows into the journal: peak RSS {rss:.0f} MiB for the whole process")
