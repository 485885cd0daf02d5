"""Reading a list: every row becomes a recipient or is excluded with its file, line and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch_mail.delivery.audience import (
    Exclusion,
    Recipient,
    dedupe_key,
    normalize,
    read_suppressed,
    scan_audience,
    tally_exclusions,
)
from dispatch_mail.errors import UsageError
from dispatch_mail.project.loader import shown_path


def write(tmp_path: Path, content: str | bytes, name: str = "list.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def by_line(excluded: list[Exclusion]) -> dict[int, str]:
    return {e.line: e.reason for e in excluded}


def read(path: Path, suppressed: set[str] | None = None) -> tuple[list[Recipient], list[Exclusion]]:
    """The whole list through scan_audience, as the send reads it: (recipients, exclusions)."""
    items = list(scan_audience(path, suppressed))
    recipients = [item for item in items if isinstance(item, Recipient)]
    return recipients, [item for item in items if isinstance(item, Exclusion)]


def test_rows_become_recipients_with_every_column(tmp_path):
    path = write(tmp_path, "email,name,City\nann@example.com,Ann,Oslo\nbob@example.com,,\n")
    recipients, excluded = read(path)
    assert excluded == []
    assert [r.email for r in recipients] == ["ann@example.com", "bob@example.com"]
    assert recipients[0].fields == {
        "email": "ann@example.com",
        "name": "Ann",
        "city": "Oslo",
    }
    assert recipients[0].name == "Ann"
    assert recipients[1].name == ""


def test_the_header_may_vary_in_case_and_space_and_carry_a_bom(tmp_path):
    path = write(tmp_path, "\ufeff Email , Name\nann@example.com,Ann\n")
    (r,), _ = read(path)
    assert r.email == "ann@example.com" and r.name == "Ann"


def test_each_problem_is_reported_with_file_and_line_and_nothing_else_is_lost(tmp_path):
    content = (
        "email,name\n"  # 1
        "ann@example.com,Ann\n"  # 2
        "not-an-address,Bad\n"  # 3
        "bob@Example.COM,Bob\n"  # 4
        "bob@example.com,Bob again\n"  # 5: same mailbox as line 4 (domain case)
        "gone@example.com,Gone\n"  # 6: suppressed
        '"eve@example.com","Eve\r\nBcc: x@y"\n'  # 7-8: header injection in a quoted field
        ",Nobody\n"  # 9: no address
        "carl@example.com,Carl\n"  # 10
        "dan@example.com\n"  # 11: short row, still fine
    )
    path = write(tmp_path, content)
    recipients, excluded = read(path, suppressed={dedupe_key("GONE@example.com")})
    assert [r.email for r in recipients] == [
        "ann@example.com",
        "bob@example.com",
        "carl@example.com",
        "dan@example.com",
    ]
    reasons = by_line(excluded)
    assert set(reasons) == {3, 5, 6, 7, 9}
    assert reasons[3].startswith("invalid:") and "not-an-address" in reasons[3]
    assert reasons[5] == "duplicate: same address as line 4"
    assert reasons[6].startswith("suppressed")
    assert reasons[7].startswith("invalid: header injection") and "'name'" in reasons[7]
    assert reasons[9] == "invalid: no address"
    for exclusion in excluded:
        assert exclusion.path == shown_path(path)
        assert str(exclusion).startswith(f"{shown_path(path)}:{exclusion.line}: ")
    assert tally_exclusions(excluded) == {"invalid": 3, "duplicate": 1, "suppressed": 1}


def test_the_domain_is_lowercased_and_the_local_part_kept(tmp_path):
    assert normalize("  Ann.Smith@EXAMPLE.Com ") == "Ann.Smith@example.com"
    path = write(tmp_path, "email\nAnn.Smith@EXAMPLE.com\n")
    assert read(path)[0][0].email == "Ann.Smith@example.com"


def test_a_header_injection_never_reaches_a_recipient(tmp_path):
    path = write(
        tmp_path,
        'email,name,company\nann@example.com,Ann,"ACME\nBcc: everyone@example.com"\n'
        "bob@example.com,Bob,x\n",
    )
    recipients, excluded = read(path)
    assert [r.email for r in recipients] == ["bob@example.com"]
    (exclusion,) = excluded
    assert exclusion.email == "ann@example.com" and "header injection" in exclusion.reason
    assert "'company'" in exclusion.reason


def test_nul_and_overlong_fields_are_refused(tmp_path):
    path = write(
        tmp_path,
        "email,name\nann@example.com,A\x00nn\nbob@example.com,"
        + "b" * 501
        + "\ncarl@example.com,Carl\n",
    )
    recipients, excluded = read(path)
    assert [r.email for r in recipients] == ["carl@example.com"]
    reasons = by_line(excluded)
    assert "NUL" in reasons[2] and "longer than 500" in reasons[3]


def test_invalid_utf8_costs_only_its_own_row(tmp_path):
    rows = [f"r{i}@example.com,Reader {i}\n".encode() for i in range(400)]
    rows[250] = (
        b"bad@example.com,Caf\xe9 latin-1\n"  # line 252, far past the first read-ahead chunk
    )
    path = write(tmp_path, b"email,name\n" + b"".join(rows))
    recipients, excluded = read(path)
    assert len(recipients) == 399
    (exclusion,) = excluded
    assert exclusion.line == 252
    assert "UTF-8" in exclusion.reason
    assert "r399@example.com" in {r.email for r in recipients}


def test_invalid_utf8_in_the_header_is_a_usage_error_with_its_line(tmp_path):
    path = write(tmp_path, b"email,n\xffame\nann@example.com,Ann\n")
    with pytest.raises(UsageError, match=r"list\.csv:1: .*UTF-8"):
        read(path)


def test_a_list_without_an_email_column_is_a_usage_error_with_its_line(tmp_path):
    path = write(tmp_path, "mail,name\nann@example.com,Ann\n")
    with pytest.raises(
        UsageError, match=r"list\.csv:1: needs an 'email' column \(found: mail, name\)"
    ):
        read(path)


def test_an_empty_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="needs an 'email' column"):
        read(write(tmp_path, ""))


def test_a_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot read"):
        read(tmp_path / "nope.csv")


def test_scanning_streams(tmp_path):
    path = write(tmp_path, "email\n" + "".join(f"r{i}@example.com\n" for i in range(5000)))
    items = scan_audience(path)
    first = next(items)
    assert isinstance(first, Recipient) and first.email == "r0@example.com"
    assert sum(1 for _ in items) == 4999


def test_suppression_one_address_a_line(tmp_path):
    path = write(tmp_path, "Gone@Example.com\n\n  other@example.com \n", "suppressed.txt")
    assert read_suppressed(path) == {
        dedupe_key("gone@example.com"),
        dedupe_key("other@example.com"),
    }


def test_suppression_csv_finds_its_email_column_wherever_it_is(tmp_path):
    path = write(
        tmp_path,
        'date,email,reason\n2026-01-01,gone@example.com,"unsubscribed, by link"\n'
        "2026-01-02,Bounced@EXAMPLE.com,bounce\n",
        "suppressed.csv",
    )
    assert read_suppressed(path) == {
        dedupe_key("gone@example.com"),
        dedupe_key("Bounced@example.com"),
    }


def test_suppression_applies_to_every_spelling_of_the_address(tmp_path):
    suppressed = read_suppressed(write(tmp_path, "email\ngone@example.com\n", "s.csv"))
    path = write(tmp_path, "email\nGONE@EXAMPLE.COM\nkept@example.com\n")
    recipients, excluded = read(path, suppressed)
    assert [r.email for r in recipients] == ["kept@example.com"]
    assert excluded[0].reason.startswith("suppressed")


def test_no_suppression_file_suppresses_nobody(tmp_path):
    assert read_suppressed(None) == set()
    with pytest.raises(UsageError, match=r"missing\.csv: the suppression file does not exist"):
        read_suppressed(tmp_path / "missing.csv")  # a named file that is missing is no empty list
