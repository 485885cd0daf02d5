"""The built email.eml and every sent copy say the same things in their headers.

Both come from mail/headers.py, but through two encoders (the stdlib's for the
.eml, our fast one per recipient); read back by the stdlib parser, they must
agree field by field, apart from the fields that belong to one recipient.
"""

from __future__ import annotations

import email.policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from dispatch_mail.errors import ContentError
from dispatch_mail.mail.headers import Mailbox, check_header, make_message_id, recipient_fields
from dispatch_mail.project.loader import load
from dispatch_mail.project.settings import Project as Settings
from dispatch_mail.publish.build import build_issue
from tests.helpers.project import Project
from tests.helpers.send import invoke

STRICT = email.policy.default.clone(raise_on_defect=True)
PER_RECIPIENT = {"to", "date", "message-id", "list-unsubscribe"}
# present only in sent copies: a signature, the test mark, and one-click (the .eml's
# unsubscribe link is the web one, which names nobody, so a one-click POST could not work)
SENT_ONLY = {"dkim-signature", "x-dispatch-test", "list-unsubscribe-post"}
PEOPLE = [("ann@example.com", "Ann Smith"), ("dana@example.com", "Dana Ünal-Øberg")]


def parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=STRICT).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    assert message.defects == []
    return message


def fields(message: EmailMessage) -> list[tuple[str, str]]:
    """(name, decoded value) in order; Content-Type without its random boundary."""
    out = []
    for name, value in message.items():
        if name.lower() == "content-type":
            params = {k: v for k, v in message.get_params(header=name)[1:] if k != "boundary"}
            value = f"{message.get_content_type()} {sorted(params.items())}"
        out.append((name, str(value)))
    return out


def differences(built: EmailMessage, sent: EmailMessage, *, test: bool = False) -> list[str]:
    """Where a sent copy's headers say something else than the built .eml's; [] when they agree."""
    names = [n.lower() for n, _ in fields(built)]
    sent_names = [n.lower() for n, _ in fields(sent) if n.lower() not in SENT_ONLY]
    problems = [] if names == sent_names else [f"names: {names} != {sent_names}"]
    shared = [(n, v) for n, v in fields(built) if n.lower() not in PER_RECIPIENT]
    expected = [(n, f"[TEST] {v}" if test and n == "Subject" else v) for n, v in shared]
    got = [(n, v) for n, v in fields(sent) if n.lower() not in PER_RECIPIENT | SENT_ONLY]
    problems += [f"{a} != {b}" for a, b in zip(expected, got, strict=False) if a != b]
    return problems


def dry_run(project: Project, *args: str) -> list[EmailMessage]:
    out = project.root / f"dry-{len(list(project.root.glob('dry-*')))}"
    result = invoke("send", str(project.issue_dir), *args, "--dry-run", str(out))
    assert result.exit_code == 0, result.output
    return [parse(path.read_bytes()) for path in sorted(out.iterdir())]


@pytest.fixture(params=["ascii", "non-ascii"])
def variant(request: pytest.FixtureRequest, project: Project) -> Project:
    """The send tests' project, with an archive (List-Archive); non-ASCII names and subject."""
    if request.param == "non-ascii":
        project.subject = "Ça va? Ünïcode news — “issue 1” " + "Überraschung ☕ " * 5
    project.extra = "base_url: https://news.example.org/archive/\n"
    project.write()
    if request.param == "non-ascii":
        config = project.root / "dispatch.yaml"
        text = config.read_text(encoding="utf-8")
        text = text.replace(
            "name: Example Weekly\nsender:\n  name: Example Weekly",
            ("name: Zoë’s Weekly\nsender:\n  name: Zoë Ångström-Łukasiewicz"),
        )
        config.write_text(text, encoding="utf-8")
    return project


def built(project: Project) -> EmailMessage:
    return parse(build_issue(Path(project.issue_dir), write=False).eml)


def settings(project: Project) -> Settings:
    return load(Path(project.issue_dir))[0]


def test_a_list_send_says_what_the_built_eml_says(variant: Project):
    eml = built(variant)
    sent = dry_run(variant, "--list", str(variant.csv(PEOPLE)))
    assert len(sent) == 2
    for message in sent:
        assert differences(eml, message) == []
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["X-Dispatch-Test"] is None
    # the fields the comparison relies on are there in the first place
    names = {n for n, _ in fields(eml)}
    assert {"From", "Subject", "Reply-To", "List-Id", "List-Archive", "MIME-Version"} <= names
    assert eml["List-Unsubscribe-Post"] is None


def test_a_test_send_differs_only_in_its_marks(variant: Project):
    eml = built(variant)
    (sent,) = dry_run(variant, "--to", "me@example.com", "--test")[:1]
    assert differences(eml, sent, test=True) == []
    assert sent["X-Dispatch-Test"] == "yes"
    assert sent["Subject"] == f"[TEST] {eml['Subject']}"


def test_the_per_recipient_fields_are_there_in_both(variant: Project):
    eml = built(variant)
    (sent,) = dry_run(variant, "--list", str(variant.csv(PEOPLE[1:])))
    for message in (eml, sent):
        assert message["Message-ID"].startswith("<one.")
        assert "<mailto:unsubscribe@example.org?subject=unsubscribe" in message["List-Unsubscribe"]
    assert sent["To"].addresses[0].display_name == "Dana Ünal-Øberg"
    assert eml["List-Unsubscribe"].startswith("<https://news.example.org/unsubscribe?t=>")


def test_the_comparison_sees_a_field_missing_on_one_side(project: Project):
    eml = built(project)
    (sent,) = dry_run(project, "--list", str(project.csv(PEOPLE[:1])))
    assert differences(eml, sent) == []
    del sent["Reply-To"]
    assert differences(eml, sent) != []
    sent["Reply-To"] = "someone-else@example.org"
    assert differences(eml, sent) != []


# ------------------------------------------------------------------ the builder itself
def test_no_field_may_carry_a_line_break(project: Project):
    with pytest.raises(ContentError, match="CR or LF"):
        check_header("Subject", "Hello\r\nBcc: x@example.org")
    with pytest.raises(ContentError, match="To"):
        recipient_fields(
            settings(project),
            Mailbox("Ann", "ann@example.com\r\nBcc: x@example.org"),
            date="Thu, 08 Jan 2026 10:00:00 +0000",
            message_id="<x@example.org>",
            unsubscribe_url="https://news.example.org/unsubscribe?t=x",
        )


def test_a_display_name_becomes_one_line(project: Project):
    to = recipient_fields(
        settings(project),
        Mailbox("Ann\r\n  Smith", "ann@example.com"),
        date="Thu, 08 Jan 2026 10:00:00 +0000",
        message_id="<x@example.org>",
        unsubscribe_url="https://news.example.org/unsubscribe?t=x",
    )[0]
    assert to == ("To", Mailbox("Ann Smith", "ann@example.com"))


@pytest.mark.parametrize(
    ("slug", "part"), [("2026-q1", "2026-q1"), ("été 2026", "t-2026"), ("☕", "issue")]
)
def test_message_ids_are_ascii_and_name_the_issue_and_the_run(slug: str, part: str):
    ids = {make_message_id(slug, "dry", n % 2, "example.org") for n in range(50)}
    assert len(ids) == 50
    for message_id in ids:
        assert message_id.isascii()
        head, dot, rest = message_id[1:-1].partition(".dry.")
        assert (message_id[0], head, dot, message_id[-1]) == ("<", part, ".dry.", ">")
        assert rest.split(".", 1)[0] in ("0", "1") and rest.endswith("@example.org")


def test_the_owners_fields_are_in_the_built_eml_and_every_copy(project: Project):
    """Feedback-ID, Precedence and the project's own fields: the same in both, but the list."""
    project.extra = (
        "feedback_id:\n  sender_id: example.corp\n  campaign: false\n"
        "precedence_bulk: true\nheaders:\n  X-Campaign: spring\n  X-Mailer-Group: news\n"
    )
    project.write()
    eml = built(project)
    (sent,) = dry_run(project, "--list", str(project.csv(PEOPLE[:1])))
    (test_copy,) = dry_run(project, "--to", "me@example.com")
    # the .eml is sent to no list: its Feedback-ID has the parts it knows, no empty one
    assert eml["Feedback-ID"] == "newsletter:example.corp"
    assert sent["Feedback-ID"] == "list:newsletter:example.corp"
    assert test_copy["Feedback-ID"] == "test:newsletter:example.corp"
    for message in (eml, sent, test_copy):
        assert message.get_all("Precedence") == ["bulk"]
        assert message["X-Campaign"] == "spring" and message["X-Mailer-Group"] == "news"
    sent_without_it = [(n, v) for n, v in fields(sent) if n != "Feedback-ID"]
    eml_without_it = [(n, v) for n, v in fields(eml) if n != "Feedback-ID"]
    assert [n for n, _ in eml_without_it] == [
        n for n, _ in sent_without_it if n.lower() not in SENT_ONLY
    ]
