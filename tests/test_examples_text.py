"""The three example newsletters: they build and check clean, and their plaintext reads well.

The plaintext rule (tests/helpers/plaintext.py): no line over 72 display columns
(wide CJK characters count two, Arabic vowel signs none), except a line that is
one URL alone (URLs are never broken) and a line of a code block (code is kept
verbatim: indented, never re-wrapped, so a long code line stays long).

Each example's whole plaintext is compared with tests/golden/<example>.txt. Every
date in it comes from the manifests (the issues' and events' dates), so the
goldens do not change with the day the tests run. To accept a change on
purpose: DISPATCH_UPDATE_GOLDEN=1 pytest tests/test_examples_text.py
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dispatch_mail.cli import main
from dispatch_mail.publish.build import BuildResult, build_issue
from dispatch_mail.render.linebreak import display_width
from tests.helpers.plaintext import (
    CODE_INDENT,
    URL_LINE,
    WIDTH,
    code_blocks,
    code_lines,
    is_code_line,
    long_lines,
)

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
EXAMPLES = {
    "weekly-links": ROOT / "examples/weekly-links/issues/issue-212",
    "campus-bulletin": ROOT / "examples/campus-bulletin/issues/2027-01-11",
    "bilingual-rtl": ROOT / "examples/bilingual-rtl/issues/2027-05-issue-14",
}


@pytest.fixture(scope="module")
def results() -> dict[str, BuildResult]:
    # Rendered in memory: nothing is written into the repository.
    return {name: build_issue(path, write=False) for name, path in EXAMPLES.items()}


# --------------------------------------------------------------------------- they build and check
@pytest.mark.parametrize("name", list(EXAMPLES))
def test_the_example_passes_dispatch_check(name):
    result = CliRunner().invoke(main, ["check", str(EXAMPLES[name]), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)[0]
    assert report["errors"] == 0, [f for f in report["findings"] if f["level"] == "error"]


def test_a_markdown_data_table_is_not_taken_for_a_layout_table():
    """Regression: the weekly's benchmark table (thead, th) is data; check warned it lacks
    role="presentation", which would hide its headers from screen readers if obeyed."""
    result = CliRunner().invoke(main, ["check", str(EXAMPLES["weekly-links"]), "--format", "json"])
    findings = json.loads(result.stdout)[0]["findings"]
    assert [f for f in findings if f["code"] == "a11y.table-role"] == []


def test_the_weekly_has_150_links_and_every_title_link_is_on_a_line_of_its_own(results):
    weekly = results["weekly-links"]
    assert weekly.link_count >= 150, weekly.link_count
    lines = {line.strip() for line in weekly.rendered.text.splitlines()}
    groups = [
        group for section in weekly.issue.sections for group in getattr(section, "groups", [])
    ]
    urls = [item.url for group in groups for item in group.items]
    assert len(urls) >= 130
    missing = [url for url in urls if url not in lines]
    assert missing == [], f"not on a line of its own in the plaintext: {missing[:5]}"


# --------------------------------------------------------------------------- the plaintext
@pytest.mark.parametrize("name", list(EXAMPLES))
def test_no_plaintext_line_is_over_72_columns_but_urls_and_code(results, name):
    long = long_lines(results[name].rendered.text, results[name].issue)
    assert long == [], f"{name}: lines over {WIDTH} columns: {long[:5]}"


def test_the_rule_has_something_to_exempt(results):
    """Not vacuous: the weekly has a code line and URL lines over 72 columns, and the
    Japanese text is wide enough to wrap (it fills lines by display width, not characters)."""
    weekly = results["weekly-links"].rendered.text.splitlines()
    code = code_lines(results["weekly-links"].issue)
    assert any(display_width(line) > WIDTH and is_code_line(line, code) for line in weekly)
    bilingual = results["bilingual-rtl"].rendered.text.splitlines()
    assert any(display_width(line) > WIDTH and URL_LINE.fullmatch(line) for line in bilingual)
    japanese = [line for line in bilingual if re.search(r"[\u3040-\u30ff]{8}", line)]
    assert any(display_width(line) > 60 and len(line) <= 40 for line in japanese), japanese


@pytest.mark.parametrize("name", ["weekly-links"])
def test_code_is_verbatim_in_the_plaintext(results, name):
    result = results[name]
    blocks = code_blocks(result.issue)
    assert len(blocks) >= 5
    text = result.rendered.text
    for block in blocks:
        indented = "\n".join(
            (CODE_INDENT + line) if line else "" for line in block.text.rstrip("\n").splitlines()
        )
        assert indented in text, f"a code block was changed in the plaintext:\n{block.text}"


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_the_plaintext_matches_its_golden_file(results, name):
    golden = GOLDEN / f"{name}.txt"
    text = results[name].rendered.text
    if os.environ.get("DISPATCH_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8", newline="\n")
    assert golden.is_file(), f"no golden file yet: DISPATCH_UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == golden.read_text(encoding="utf-8"), (
        f"the plaintext of {name} changed; if on purpose: "
        "DISPATCH_UPDATE_GOLDEN=1 pytest tests/test_examples_text.py"
    )
