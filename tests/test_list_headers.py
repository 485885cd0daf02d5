"""The built and exported .eml carry List-* fields as RFC 2369 says: URIs in angle brackets,
folded between them, never RFC 2047-encoded, with the mailto beside the https form."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from click.testing import CliRunner

from dispatch_mail.cli import main as cli
from tests.helpers.project import PROJECT_YAML

LONG = "https://news.example.org/" + "a-long-path-segment/" * 5
CONFIG = PROJECT_YAML.replace(
    "  unsubscribe_url: https://example.org/unsubscribe?t={token}",
    f"  unsubscribe_url: {LONG}unsubscribe?t={{token}}\n"
    f"  preferences_url: {LONG}preferences\n"
    "  unsubscribe_mailto: leave@news.example.org",
)


def _header_lines(raw: bytes, name: str) -> list[bytes]:
    head = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    at = next(i for i, line in enumerate(lines) if line.lower().startswith(name.lower() + b":"))
    out = [lines[at]]
    for line in lines[at + 1 :]:
        if not line[:1].isspace():
            break
        out.append(line)
    return out


def _check_list_unsubscribe(raw: bytes, https_form: str) -> None:
    lines = _header_lines(raw, b"List-Unsubscribe")
    assert b"=?" not in b"".join(lines), "List-Unsubscribe must never be RFC 2047-encoded"
    assert all(len(line) <= 998 for line in lines)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    value = " ".join(str(message["List-Unsubscribe"]).split())
    uris = [part.strip().strip("<>") for part in value.split(",")]
    assert uris[0].startswith(https_form) and uris[1].startswith("mailto:leave@news.example.org")
    assert all(part.strip().startswith("<") for part in value.split(","))


def test_the_built_eml_folds_a_long_list_unsubscribe_as_a_unit(write_project):
    assert CONFIG != PROJECT_YAML
    folder = write_project(config=CONFIG)
    result = CliRunner().invoke(cli, ["build", str(folder)])
    assert result.exit_code == 0, result.output
    raw = (Path("build") / "test" / "email.eml").read_bytes()
    _check_list_unsubscribe(raw, f"{LONG}preferences")  # the preview's link: no personal token


def test_the_exported_eml_and_mbox_fold_it_too(write_project, monkeypatch):
    monkeypatch.setenv("DISPATCH_UNSUBSCRIBE_SECRET", "a-test-secret-of-enough-length-0123456789")
    folder = write_project(config=CONFIG)
    out = Path("out.eml")
    result = CliRunner().invoke(cli, ["export", str(folder), "--format", "eml", "--out", str(out)])
    assert result.exit_code == 0, result.output
    _check_list_unsubscribe(out.read_bytes(), LONG)
    mbox = Path("out.mbox")
    args = ["export", str(folder), "--format", "mbox", "--out", str(mbox)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    first = mbox.read_bytes().split(b"\nFrom ", 1)[0].split(b"\n", 1)[1]
    _check_list_unsubscribe(first, f"{LONG}unsubscribe?t=")
