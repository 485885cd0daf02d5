"""Room under Gmail's clip: a 200-link weekly of This Week in Rust's shape is not clipped.

The issue is the one `benchmarks/clip.py` measures (tests/helpers/weekly.py), built and
checked through the CLI as an owner would.
"""

from __future__ import annotations

import email
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatch_mail.cli import main
from dispatch_mail.quality.budget import (
    GMAIL_CLIP_BYTES,
    SIZE_WARNING_BYTES,
    sent_html_bytes,
    size_finding,
)
from tests.helpers.weekly import write_weekly_project


def _built(tmp_path: Path, links: int) -> tuple[str, str, bytes]:
    """The weekly with ``links`` links, built through the CLI: its HTML, build output, .eml."""
    folder = write_weekly_project(tmp_path / f"weekly-{links}", links)
    out = tmp_path / f"out-{links}"
    built = CliRunner().invoke(main, ["build", str(folder), "--out", str(out)])
    assert built.exit_code == 0, built.output
    html = (out / "email.html").read_text(encoding="utf-8")
    return html, built.output, (out / "email.eml").read_bytes()


def _eml_html_part(eml: bytes) -> bytes:
    """The text/html part's body exactly as the .eml carries it (quoted-printable, CRLF)."""
    parts = email.message_from_bytes(eml).walk()
    (part,) = [p for p in parts if p.get_content_type() == "text/html"]
    assert part["Content-Transfer-Encoding"] == "quoted-printable"
    payload = part.get_payload()
    assert isinstance(payload, str)
    return payload.encode("ascii")


def test_a_200_link_weekly_builds_under_gmails_clip(tmp_path):
    folder = write_weekly_project(tmp_path / "weekly", 200)
    out = tmp_path / "out"
    built = CliRunner().invoke(main, ["build", str(folder), "--out", str(out)])
    assert built.exit_code == 0, built.output
    html = (out / "email.html").read_bytes()
    assert html.count(b"<li>") + html.count(b'class="dm-title"') >= 200, "the links are all there"
    assert len(html) < GMAIL_CLIP_BYTES, f"{len(html):,} bytes"
    checked = CliRunner().invoke(main, ["check", str(folder), "--format", "json"])
    (report,) = json.loads(checked.output)
    codes = [finding["code"] for finding in report["findings"]]
    assert report["stats"]["html_bytes"] == len(html)
    assert "size.gmail-clip" not in codes, checked.output
    assert "size.near-clip" not in codes, checked.output
    eml = (out / "email.eml").read_bytes()
    assert sent_html_bytes(html.decode("utf-8")) < SIZE_WARNING_BYTES, "the 100 KB budget, as sent"
    assert "Gmail" not in built.output, "the build warns about nothing near the clip"
    assert len(_eml_html_part(eml)) == sent_html_bytes(html.decode("utf-8"))


def test_the_budget_counts_the_html_part_as_sent(tmp_path):
    """250 links: the raw HTML is under the clip, its quoted-printable part is not."""
    html, output, eml = _built(tmp_path, 250)
    raw, sent = len(html.encode("utf-8")), len(_eml_html_part(eml))
    assert raw < GMAIL_CLIP_BYTES < sent, (raw, sent)
    assert sent_html_bytes(html) == sent
    finding = size_finding(html)
    assert finding is not None and (finding.level, finding.code) == ("error", "size.gmail-clip")
    both = f"HTML {raw / 1024:.1f} KB, {sent / 1024:.1f} KB as sent (quoted-printable)"
    assert finding.message.startswith(both), finding.message
    assert f"warning: {both}; past Gmail's 102 KB clip" in output, output


@pytest.mark.parametrize(
    "html",
    [
        "<p>plain ascii</p>\n" * 3000,
        '<a href="x" style="a=b">=</a>\n' * 2000,
        "<p>日本語の文章、アラビア語 العربية</p>\n" * 1500,
        "<td> \t</td> \n" * 5000,
    ],
    ids=["ascii", "equals", "cjk", "trailing-space"],
)
def test_the_quick_bound_is_never_below_the_part_as_sent(html):
    from dispatch_mail.quality.budget import (
        SIZE_WARNING_BYTES,
        sent_html_bytes,
        surely_under_budget,
    )

    sent = sent_html_bytes(html)
    if surely_under_budget(html.encode("utf-8")):
        assert sent <= SIZE_WARNING_BYTES
    # and the bound is tight enough to spare the DPDK issue its encoding
    assert surely_under_budget(("<p>x</p>\n" * 1000).encode())
