"""Full CommonMark in Markdown fields (markdown-it-py): code, tables, images, autolinks, nesting.

Each construct is checked in all three places it lands: the tree (with the
problems a field may not hold), the escaped HTML, and the plaintext part.
"""

from __future__ import annotations

import pytest

from dispatch_mail.project.markup import (
    CodeBlock,
    ImageSpan,
    LinkSpan,
    ListBlock,
    ParagraphBlock,
    RuleBlock,
    StrikeSpan,
    TableBlock,
    TextSpan,
    parse_inline,
    parse_markdown,
)
from dispatch_mail.render.linebreak import display_width, wrap
from dispatch_mail.render.markup import References, inline_text, markdown_html, markdown_text

RUST_FENCE = """\
Before the code.

```rust
fn main() {
    let x = 1; // a comment
}
```

After.
"""


def md(source: str):
    tree, problems = parse_markdown(source)
    assert problems == []
    return tree


def plaintext(source: str) -> str:
    return markdown_text(md(source), References())


# ------------------------------------------------------------------ code
def test_a_fenced_block_is_code_with_its_language_kept_verbatim():
    tree = md(RUST_FENCE)
    code = tree.blocks[1]
    assert code == CodeBlock("fn main() {\n    let x = 1; // a comment\n}", "rust")


def test_code_is_highlighted_with_inline_styles_and_wraps_rather_than_widening():
    html = markdown_html(md(RUST_FENCE))
    pre = html[html.index("<pre") : html.index("</pre>")]
    assert "white-space:pre-wrap" in pre and "overflow-wrap:anywhere" in pre
    assert '<span style="color:' in pre  # Pygments' colours, inline: no class survives every client
    assert "class=" not in pre.replace('class="code"', "")
    assert "// a comment" in pre


def test_code_text_is_escaped_in_html():
    html = markdown_html(md("```html\n<script>alert(1)</script>\n```\n"))
    assert "<script>" not in html and "&lt;" in html


def test_an_indented_snippet_stays_code_and_does_not_merge_into_the_prose():
    tree = md("Some prose.\n\n    let y = 2;\n    let z = 3;\n\nMore prose.\n")
    assert [type(b) for b in tree.blocks] == [ParagraphBlock, CodeBlock, ParagraphBlock]
    assert tree.blocks[1] == CodeBlock("let y = 2;\nlet z = 3;", None)


def test_plaintext_code_is_verbatim_and_indented_never_wrapped():
    long_line = "let a_really_long_name = some_function(with_many, arguments, that_go, past_72);"
    text = plaintext(f"```rust\n{long_line}\n    nested();\n```\n")
    assert text.splitlines() == [f"    {long_line}", "        nested();"]


def test_an_unknown_language_is_plain_escaped_code():
    html = markdown_html(md("```no-such-language\na < b\n```\n"))
    assert "<code>a &lt; b</code>" in html


# ------------------------------------------------------------------ tables
TABLE = """\
| crate | downloads | note |
|:------|----------:|:----:|
| serde | 10,000 | *fast* |
| tokio | 900 | [docs](https://docs.rs/tokio) |
"""


def test_a_table_is_parsed_with_its_alignment():
    table = md(TABLE).blocks[0]
    assert isinstance(table, TableBlock)
    assert [c.plain for c in table.header] == ["crate", "downloads", "note"]
    assert table.align == ("left", "right", "center")
    assert [[c.plain for c in row] for row in table.rows] == [
        ["serde", "10,000", "fast"],
        ["tokio", "900", "docs"],
    ]


def test_a_table_is_an_email_safe_table_in_a_box_that_scrolls_on_phones():
    html = markdown_html(md(TABLE), lambda url: url + "?utm_source=news")
    assert html.startswith('<div class="md-table-box"><table class="md-table"><thead>')
    assert '<th style="text-align:right">downloads</th>' in html
    assert "<td><em>fast</em></td>" not in html  # centred, so it has its style
    assert 'href="https://docs.rs/tokio?utm_source=news"' in html  # links in cells are tracked


def test_a_table_in_plaintext_is_aligned_text():
    lines = plaintext(TABLE).splitlines()
    assert lines[0].split() == ["crate", "downloads", "note"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    # the right-aligned column ends in the same column on every line
    ends = {line.index("downloads") + len("downloads") for line in lines[:1]}
    ends |= {line.index("10,000") + 6 for line in lines if "10,000" in line}
    ends |= {line.index(" 900") + 4 for line in lines if " 900" in line}
    assert len(ends) == 1
    assert "docs [1]" in lines[3]


def test_a_table_too_wide_for_72_columns_becomes_one_record_per_row():
    wide = "| a | b |\n|---|---|\n| " + "word " * 12 + "| " + "more " * 12 + "|\n"
    text = plaintext(wide)
    assert all(display_width(line) <= 72 for line in text.splitlines())
    assert text.startswith("a: word word")


# ------------------------------------------------------------------ images
def test_an_image_needs_alt_text():
    _, problems = parse_markdown("![](https://example.org/diagram.png)\n")
    assert problems == [
        "image 'https://example.org/diagram.png' has no alt text: "
        "write ![what it shows](https://example.org/diagram.png)"
    ]


def test_an_image_is_an_img_with_its_alt_and_its_url_never_tagged():
    tree = md("![The pipeline](https://example.org/diagram.png)\n")
    assert tree.images() == [ImageSpan("https://example.org/diagram.png", "The pipeline")]
    html = markdown_html(tree, lambda url: url + "?utm_source=news")
    assert 'src="https://example.org/diagram.png"' in html and "utm_source" not in html
    assert 'alt="The pipeline"' in html and "max-width:100%" in html
    text = plaintext("![The pipeline](https://example.org/diagram.png)\n")
    assert text == "[Image: The pipeline]"


def test_an_image_must_be_https():
    _, problems = parse_markdown("![x](http://example.org/a.png)\n")
    assert len(problems) == 1 and problems[0].startswith("image ![x]:")


def test_an_image_in_a_title_is_a_problem_not_a_stray_bang():
    _, problems = parse_inline("A title ![logo](https://example.org/logo.png)")
    assert problems and problems[0].startswith("images are not allowed in this field")


# ------------------------------------------------------------------ links
def test_a_url_with_balanced_parentheses_is_one_link():
    url = "https://en.wikipedia.org/wiki/Rust_(programming_language)"
    inline, problems = parse_inline(f"Read [about Rust]({url}) today.")
    assert problems == []
    assert inline.links() == [LinkSpan(url, (TextSpan("about Rust"),))]
    refs = References()
    assert inline_text(inline, refs) == "Read about Rust [1] today."
    assert refs.take() == [(1, url)]


def test_an_autolink_is_a_link_shown_as_its_url():
    inline, _ = parse_inline("See <https://example.org/x>.")
    assert inline.links()[0].url == "https://example.org/x"
    assert inline_text(inline, References()) == "See https://example.org/x."


def test_strikethrough_and_code_in_titles():
    inline, problems = parse_inline("~~old~~ `serde` 1.0")
    assert problems == []
    assert isinstance(inline.spans[0], StrikeSpan)
    assert inline_text(inline, References()) == "~~old~~ serde 1.0"


def test_raw_html_stays_escaped_text():
    html = markdown_html(md("<b>bold?</b> and <img src=x onerror=alert(1)>\n"))
    assert "<b>" not in html and "<img" not in html and "&lt;b&gt;" in html


# ------------------------------------------------------------------ blocks a field may hold
def test_nested_lists_are_kept():
    tree = md("- one\n  - one.a\n  - one.b\n- two\n")
    outer = tree.blocks[0]
    assert isinstance(outer, ListBlock)
    assert [i.inline.plain for i in outer.items[0].lists[0].items] == ["one.a", "one.b"]
    assert markdown_html(tree).startswith("<ul><li>one<ul><li>one.a</li>")
    assert plaintext("- one\n  - one.a\n- two\n").splitlines() == ["- one", "  - one.a", "- two"]


def test_an_ordered_list_keeps_its_start():
    assert markdown_html(md("3. c\n4. d\n")).startswith('<ol start="3">')
    assert plaintext("3. c\n4. d\n").splitlines() == ["3. c", "4. d"]


def test_a_rule_is_a_rule():
    assert md("a\n\n---\n\nb\n").blocks[1] == RuleBlock()


@pytest.mark.parametrize(
    "source, problem",
    [
        ("> ```\n> code\n> ```\n", "line 1: code cannot go inside a quote"),
        ("- a\n\n  b\n", "line 1: a list item may hold one paragraph (it has 2)"),
        ("- a\n\n      code\n", "line 3: code cannot go inside a list item"),
    ],
)
def test_what_a_container_cannot_hold_is_a_located_problem(source, problem):
    assert problem in parse_markdown(source)[1]


# ------------------------------------------------------------------ plaintext in every script
JAPANESE = (
    "日本語の文章はスペースなしで続きます。次の文は長い文章で、七十二桁を超えると"
    "折り返されるべきです。詳しくは公式サイト [3] をご覧ください。五月三日に開講します。"
)


def test_cjk_wraps_at_72_display_columns():
    lines = wrap(JAPANESE).splitlines()
    assert len(lines) > 1
    assert all(display_width(line) <= 72 for line in lines)
    assert "".join(lines).replace(" ", "") == JAPANESE.replace(" ", "")


def test_a_reference_marker_stays_with_its_word():
    for width in range(20, 73):
        for line in wrap("Read more on Facebook [1] and elsewhere [12].", width=width).splitlines():
            assert not line.startswith("[")
        for line in wrap(JAPANESE, width=width).splitlines():
            assert not line.startswith("[")


def test_a_url_is_never_broken_even_in_cjk_text():
    url = "https://example.org/a-very/long/path/that-goes-on-and-on-past-the-line/index.html"
    lines = wrap(f"詳細は {url} を参照。" * 3).splitlines()
    assert all(url in line or "example.org" not in line for line in lines)


def test_latin_text_wraps_as_before():
    import textwrap

    text = "DPDK 25.03 brings new drivers, faster crypto, and support for more NICs. " * 4
    assert wrap(text) == textwrap.fill(
        " ".join(text.split()), 72, break_long_words=False, break_on_hyphens=False
    )


def test_a_heading_underline_is_as_wide_as_the_heading():
    heading = plaintext("## 今週のニュース\n").splitlines()
    assert display_width(heading[1]) == display_width(heading[0]) == 2 * len("今週のニュース")


# ------------------------------------------------------------------ the fast path
@pytest.mark.parametrize(
    "source",
    [
        "DPDK 25.03 is out: rte_flow, eBPF and AI-assisted verification (CERN, Ericsson).",
        "Prices in €, £ and ¥; 50% off — “quoted” — Kenji Ōtani و Chloé Girard",
        "snake_case_names and a-b-c, 1. not a list in a title",
        "日本語のタイトル：五月三日",
        "Huawei & Zhejiang University — R&D at 5 Gbit/s; AT&T",
    ],
)
def test_text_without_markup_reads_as_markdown_it_would_read_it(source):
    from dispatch_mail.project.markdown_reader import read_inline

    fast, problems = parse_inline(source)
    assert problems == []
    assert fast.spans == read_inline(source)[0]


def test_paragraphs_without_markup_read_as_markdown_it_would_read_them():
    from dispatch_mail.project.markdown_reader import read_blocks

    source = "First paragraph,\nwrapped in YAML.\n\nSecond one with rte_flow.\n"
    fast, problems = parse_markdown(source)
    assert problems == []
    assert [b.inline.spans for b in fast.blocks] == [
        b.inline.spans for b in read_blocks(source)[0]
    ]


BLOCKS_IN_INLINE = """\
subject: Blocks where they cannot go
name: Issue 1
date: 2026-04-01
masthead:
  headline: Hello
sections:
  - kind: announcements
    heading: News
    items:
      - |
        | crate | downloads |
        |---|---|
        | serde | 10 |
      - |
        - a bullet
        - another
      - |
        Para one.

        Para two.
      - |
        A line
        that goes on: one paragraph is fine.
"""


def test_blocks_in_an_inline_field_are_located_errors_never_flattened(tmp_path):
    """A table, a list or a second paragraph in an announcement was flattened into one
    line (`- | a | b | |---|---|`, `- - a bullet - another`) with no error at all."""
    from click.testing import CliRunner

    from dispatch_mail.cli import main
    from tests.helpers.project import create_project

    create_project(tmp_path, issues={"one": BLOCKS_IN_INLINE})
    result = CliRunner().invoke(main, ["build", str(tmp_path / "issues" / "one")])
    assert result.exit_code != 0
    import re

    found = re.findall(r"issue\.yaml:(\d+):\d+: (sections\[0\]\.items\[\d\]): (.*)", result.stderr)
    assert [(int(line), key) for line, key, _ in found] == [
        (10, "sections[0].items[0]"),
        (14, "sections[0].items[1]"),
        (17, "sections[0].items[2]"),
    ], result.stderr
    assert "a table cannot go in this field" in found[0][2]
    assert "a list cannot go in this field" in found[1][2]
    assert "holds one paragraph (it has 2)" in found[2][2]
    assert "items[3]" not in result.stderr, "lines of one paragraph are fine"
    assert not (tmp_path / "build").exists(), "nothing half-written"


@pytest.mark.parametrize("title", ["2026. A year in review", "- a dash first", "# 1 priority"])
def test_a_one_line_field_is_never_read_as_a_block(title):
    inline, problems = parse_inline(title)
    assert problems == [] and inline.plain == title


def test_a_markdown_image_passes_the_check_with_the_columns_width(tmp_path):
    """`![diagram](…)` in an intro failed `dispatch check` with image.width: Markdown
    cannot say a width, so the image spans the text column, with the attribute Outlook
    needs."""
    from click.testing import CliRunner

    from dispatch_mail.cli import main
    from tests.helpers.project import create_project

    issue = (
        "subject: Pictures\nname: Issue 1\ndate: 2026-04-01\nmasthead:\n  headline: Hello\n"
        "intro: |\n  The new pipeline:\n\n  ![The pipeline, stage by stage]"
        "(https://static.example.org/pipeline.png)\n"
        "sections:\n  - kind: announcements\n    items:\n      - Something happened.\n"
    )
    create_project(tmp_path, issues={"one": issue})
    result = CliRunner().invoke(main, ["check", str(tmp_path / "issues" / "one")])
    assert "image.width" not in result.output, result.output
    assert result.exit_code == 0, result.output
