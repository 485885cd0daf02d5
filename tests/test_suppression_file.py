"""Suppression files as people save them: every usual shape read, anything else an error first.

A suppression file read the wrong way suppressed nobody, without a word: the
unsubscribed were mailed. Each file here is written as a spreadsheet or a mail
tool writes it and goes through the real `dispatch send` of the list that names
it (dispatch.yaml: lists.subscribers.suppression), as a dry run or to a real
SMTP server: the suppressed address is never among the messages, and the plan
says it was excluded. A file that cannot be read stops the send before any
connection, with the file and line of each problem.
"""

from __future__ import annotations

import codecs
import email
import email.policy
from pathlib import Path

import pytest

from dispatch_mail.project.paths import shown_path
from tests.helpers.project import Project
from tests.helpers.send import invoke, send_args

LIST = "email,name\nann@example.com,Ann\nbob@example.com,Bob\ncarl@example.com,Carl\n"
EVERYONE = {"ann@example.com", "bob@example.com", "carl@example.com"}
GONE = "bob@example.com"  # line 3 of LIST; every suppression file below names him

# (suppression file bytes, what it is)
READABLE: list[tuple[bytes, str]] = [
    (b"First Name,Email Address\nBob,bob@example.com\n", "Email Address header"),
    (b"name,e-mail\nBob,BOB@Example.com\n", "e-mail header, another spelling"),
    (b"reason,E_MAIL_ADDRESS\nbounced,bob@example.com\n", "underscores, odd case"),
    (b"name,Mail\nBob,bob@example.com\n", "mail header"),
    (b"name,address,email\nBob,1 Main Street,bob@example.com\n", "email wins over address"),
    (b"when,Address\r\n2026-01-02,bob@example.com\r\n", "address header, CRLF"),
    (b"email\nBob <bob@example.com>\n", "Name <addr> under a header"),
    (b'"Smith, Bob" <bob@example.com>\n', "a quoted display name, headerless"),
    (b"Bob <bob@example.com>\n\n", "Name <addr>, headerless"),
    (b"bob@example.com\n", "one address, headerless"),
    (codecs.BOM_UTF16_LE + "email\nbob@example.com\n".encode("utf-16-le"), "UTF-16-LE"),
    ("Email Address\r\nbob@example.com\r\n".encode("utf-16"), "UTF-16 with its mark"),
    (codecs.BOM_UTF16_BE + "Email,Name\nbob@example.com,Bob\n".encode("utf-16-be"), "UTF-16-BE"),
    (codecs.BOM_UTF8 + b"Name,E-Mail\nBob,bob@example.com\n", "UTF-8 with its mark"),
    ("email\nbob@example.com\n".encode("utf-32"), "UTF-32 with its mark"),
]


def write_lists(project: Project, suppression: bytes | None, recipients: str = LIST) -> Path:
    """lists/subscribers.csv and (unless None) lists/suppressed.csv; the recipients' path."""
    path = project.root / "lists" / "subscribers.csv"
    path.write_text(recipients, encoding="utf-8")
    suppressed = project.root / "lists" / "suppressed.csv"
    if suppression is None:
        suppressed.unlink(missing_ok=True)
    else:
        suppressed.write_bytes(suppression)
    return path


def dry_run_recipients(folder: Path) -> set[str]:
    """Who the dry run's .eml files are addressed to."""
    found = set()
    for path in folder.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        found.update(address.addr_spec for address in message["To"].addresses)
    return found


@pytest.mark.parametrize("content", [c for c, _ in READABLE], ids=[i for _, i in READABLE])
def test_every_usual_suppression_file_excludes_its_address_from_a_dry_run(
    project, tmp_path, content
):
    path = write_lists(project, content)
    out = tmp_path / "dry"
    result = invoke(*send_args(project, None, Path("subscribers"), "--dry-run", str(out)))
    assert result.exit_code == 0, result.output
    assert dry_run_recipients(out) == EVERYONE - {GONE}
    assert "dry run: 2 messages written" in result.output
    excluded = [line for line in result.stderr.splitlines() if line.startswith("excluded: ")]
    assert excluded == [
        f"excluded: {shown_path(path)}:3: {GONE}: suppressed: unsubscribed or bounced"
    ]


@pytest.mark.parametrize(
    "content",
    [READABLE[0][0], READABLE[8][0], READABLE[11][0]],
    ids=["Email Address", "Name <addr>", "UTF-16"],
)
def test_a_real_send_never_tries_the_suppressed_address_and_the_plan_says_so(
    project, server, content
):
    write_lists(project, content)
    result = invoke(*send_args(project, server, Path("subscribers")))
    assert result.exit_code == 0, result.output
    assert "to send now:  2" in result.output
    assert "excluded:     1 (1 suppressed)" in result.output
    assert server.handler.per_recipient() == dict.fromkeys(EVERYONE - {GONE}, 1)
    assert GONE not in server.handler.tries["RCPT"]


def test_a_recipients_list_with_an_email_address_header_is_read(project, server):
    recipients = "First Name,E-mail Address\nAnn,ann@example.com\nBob,bob@example.com\n"
    write_lists(project, b"Email Address\nbob@example.com\n", recipients)
    result = invoke(*send_args(project, server, Path("subscribers")))
    assert result.exit_code == 0, result.output
    assert server.handler.per_recipient() == {"ann@example.com": 1}


# (suppression file bytes, exit code, the error lines' ends: line and what is wrong)
UNREADABLE: list[tuple[bytes, int, list[str]]] = [
    (
        b"email\nbob@example.com\nnot an address\n",
        1,
        [":3: 'not an address' is not an email address (nor Name <address>)"],
    ),
    (
        b"Name,Contact\nBob,bob@example.com\n",
        1,
        [":1: no email column (found: Name, Contact): name it 'email', or give one address a line"],
    ),
    (
        b"Bob,bob@example.com\n",
        1,
        [
            ":1: no email column (found: Bob, bob@example.com):"
            " name it 'email', or give one address a line"
        ],
    ),
    (
        b"email,E-Mail\nbob@example.com,\n",
        1,
        [":1: more than one email column (email, E-Mail): keep one"],
    ),
    (b"email,reason\n,bounced\nbob@example.com,x\n", 1, [":2: no address in the email column"]),
    (
        b"bob@example.com\nann@example.com,carl@example.com\n",
        1,
        [":2: one address a line expected, found 2 cells"],
    ),
    (
        b"email\nbob@example.com\nzo\xe9@example.com\nbad\nr\xe9n\xe9@example.com\n",
        1,
        [
            ":3: not valid UTF-8 (save the file as UTF-8)",
            ":4: 'bad' is not an email address (nor Name <address>)",
            ":5: not valid UTF-8 (save the file as UTF-8)",
        ],
    ),
    (
        "email\nbob@example.com\n".encode("utf-16-le"),
        2,
        [":1: looks like UTF-16 without a byte order mark (save the file as UTF-8)"],
    ),
    (
        "email\nbob@example.com\n".encode("utf-16") + b"x",
        2,
        [":3: not valid UTF-16: truncated data (save the file as UTF-8)"],
    ),
]


@pytest.mark.parametrize(
    "content,code,errors", UNREADABLE, ids=[str(i) for i in range(len(UNREADABLE))]
)
def test_a_suppression_file_that_cannot_be_read_stops_the_send_before_any_connection(
    project, server, content, code, errors
):
    write_lists(project, content)
    shown = shown_path(project.root / "lists" / "suppressed.csv")
    result = invoke(*send_args(project, server, Path("subscribers")))
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert lines == [f"error: {shown}{error}" for error in errors]
    assert server.handler.connections == 0
    assert "internal error" not in result.stderr


def test_a_dry_run_with_an_unreadable_suppression_file_writes_nothing(project, tmp_path):
    write_lists(project, b"Contact\nbob@example.com\n")
    out = tmp_path / "dry"
    result = invoke(*send_args(project, None, Path("subscribers"), "--dry-run", str(out)))
    assert result.exit_code == 1
    assert "no email column (found: Contact)" in result.stderr
    assert not out.exists() or not any(out.iterdir())


def test_a_missing_suppression_file_stops_the_send_and_the_dry_run(project, server, tmp_path):
    write_lists(project, None)
    shown = shown_path(project.root / "lists" / "suppressed.csv")
    expected = (
        f"error: {shown}: the suppression file does not exist, so nobody would be excluded"
        " (create it, empty if nobody has unsubscribed yet)"
    )
    sent = invoke(*send_args(project, server, Path("subscribers")))
    assert sent.exit_code == 2 and sent.stderr.splitlines() == [expected]
    assert server.handler.connections == 0
    out = tmp_path / "dry"
    dry = invoke(*send_args(project, None, Path("subscribers"), "--dry-run", str(out)))
    assert dry.exit_code == 2 and dry.stderr.splitlines() == [expected]
    assert not out.exists()


def test_a_file_read_all_wrong_shows_the_first_problems_and_counts_the_rest(project, server):
    rows = "".join(f"reader {i}\n" for i in range(30))  # names, no addresses: a wrong column
    write_lists(project, f"email\n{rows}".encode())
    result = invoke(*send_args(project, server, Path("subscribers")))
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 21
    assert lines[0].endswith(":2: 'reader 0' is not an email address (nor Name <address>)")
    assert lines[-1].endswith(":22: and 10 more problems from this line on")
    assert server.handler.connections == 0


@pytest.mark.parametrize(
    "recipients,message",
    [
        ("email,E-mail\nann@example.com,ann@example.com\n", ":1: more than one email column"),
        (
            "Contact,name\nann@example.com,Ann\n",
            ":1: needs an 'email' column (found: Contact, name)",
        ),
    ],
)
def test_a_recipients_list_whose_email_column_is_unclear_stops_the_send(
    project, server, recipients, message
):
    path = write_lists(project, b"email\n", recipients)
    result = invoke(*send_args(project, server, Path("subscribers")))
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {shown_path(path)}{message}")
    assert server.handler.connections == 0


def test_a_utf16_recipients_list_is_refused_loudly_not_misread(project, server):
    path = write_lists(project, b"email\n")
    path.write_bytes(LIST.encode("utf-16"))
    result = invoke(*send_args(project, server, Path("subscribers")))
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line == (
        f"error: {shown_path(path)}:1: the header is not valid UTF-8"
        " (a UTF-16 file: save the file as UTF-8)"
    )
    assert server.handler.connections == 0


def test_a_configured_list_named_by_its_file_keeps_its_suppression_file(project, tmp_path):
    """`--list lists/subscribers.csv` is the configured list `subscribers`, suppression included."""
    path = write_lists(project, READABLE[0][0])
    out = tmp_path / "dry"
    result = invoke(*send_args(project, None, path, "--dry-run", str(out)))
    assert result.exit_code == 0, result.output
    assert dry_run_recipients(out) == EVERYONE - {GONE}
