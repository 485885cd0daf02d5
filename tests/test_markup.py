"""The Markdown dialect of manifest text: parsed once, rendered to escaped HTML and to plaintext."""

from __future__ import annotations

import pytest

from dispatch_mail.project.markup import (
    CodeSpan,
    EmSpan,
    HeadingBlock,
    LinkSpan,
    ListBlock,
    ParagraphBlock,
    QuoteBlock,
    StrongSpan,
    TextSpan,
    parse_inline,
    parse_markdown,
)
from dispatch_mail.render.markup import (
    References,
    inline_html,
    inline_text,
    markdown_html,
    markdown_text,
)


def html(source: str) -> str:
    inline, problems = parse_inline(source)
    assert problems == []
    return inline_html(inline)


def text(source: str) -> tuple[str, list[str]]:
    """The plaintext of ``source`` and the URLs it refers to, numbered from 1."""
    inline, problems = parse_inline(source)
    assert problems == []
    refs = References()
    return inline_text(inline, refs), [url for _, url in refs.take()]


# ------------------------------------------------------------------ inline → HTML
@pytest.mark.parametrize(
    "source, expected",
    [
        ("**strong** words", "<strong>strong</strong> words"),
        ("*em* and _em_", "<em>em</em> and <em>em</em>"),
        ("`code` here", "<code>code</code> here"),
        ("*a **b** c*", "<em>a <strong>b</strong> c</em>"),
        (
            "**[a link](https://example.org/)**",
            '<strong><a href="https://example.org/">a link</a></strong>',
        ),
        (
            "[**bold** link](https://example.org/)",
            '<a href="https://example.org/"><strong>bold</strong> link</a>',
        ),
        ("a**b**c", "a<strong>b</strong>c"),
    ],
)
def test_inline_markup_to_html(source, expected):
    assert html(source) == expected


@pytest.mark.parametrize(
    "source",
    [
        "rte_flow and snake_case_name",
        "foo__bar and foo__bar__baz",
        "DPDK_LOG_LEVEL=debug",
        "x_1 y_2",
        "a_b_ c _d_e",
    ],
)
def test_underscores_inside_words_are_not_emphasis(source):
    assert html(source) == source


@pytest.mark.parametrize(
    "source",
    [
        "**unclosed",
        "*unclosed",
        "closing only*",
        "a * b ** c _ d",
        "**",
        "_",
        "`unclosed code",
        "[text] (no link)",
        "[text](https://example.org/",
        "[unclosed](",
        "5 * 3 = 15",
    ],
)
def test_unmatched_markers_stay_literal(source):
    inline, problems = parse_inline(source)
    assert problems == []
    assert inline.spans == (TextSpan(source),)


@pytest.mark.parametrize(
    "source, literal",
    [
        (r"\*not em\*", "*not em*"),
        (r"\_not em\_", "_not em_"),
        (r"\[not a link\](https://x.org)", "[not a link](https://x.org)"),
        (r"\`no code\`", "`no code`"),
        (r"back\\slash", "back\\slash"),
        (r"5\* rating", "5* rating"),
    ],
)
def test_backslash_escapes(source, literal):
    inline, _ = parse_inline(source)
    assert inline.spans == (TextSpan(literal),)


def test_a_backslash_before_an_ordinary_character_is_kept():
    assert parse_inline(r"C:\path\to")[0].spans == (TextSpan("C:\\path\\to"),)


def test_the_tree_of_a_mixed_run():
    inline, _ = parse_inline("Use `rte_flow` for **fast** [offloads](https://doc.dpdk.org/).")
    assert inline.spans == (
        TextSpan("Use "),
        CodeSpan("rte_flow"),
        TextSpan(" for "),
        StrongSpan((TextSpan("fast"),)),
        TextSpan(" "),
        LinkSpan("https://doc.dpdk.org/", (TextSpan("offloads"),)),
        TextSpan("."),
    )
    assert inline.plain == "Use rte_flow for fast offloads."
    assert [link.url for link in inline.links()] == ["https://doc.dpdk.org/"]


def test_text_is_escaped_in_html():
    assert html("""<script>alert("x")</script> & 'quotes'""") == (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;quotes&#x27;"
    )


def test_code_and_link_text_are_escaped_too():
    assert (
        html("`<b>` [<i>&](https://example.org/)")
        == '<code>&lt;b&gt;</code> <a href="https://example.org/">&lt;i&gt;&amp;</a>'
    )


def test_link_urls_are_escaped_in_the_href():
    assert (
        html('[q](https://example.org/?a=1&b="2")')
        == '<a href="https://example.org/?a=1&amp;b=%222%22">q</a>'
    )


def test_the_link_rewriter_and_style_are_applied():
    inline, _ = parse_inline("[a](https://example.org/) [b](mailto:x@example.org)")
    out = inline_html(inline, link_url=lambda url: url + "#tagged", link_style="color:red;")
    assert out == (
        '<a href="https://example.org/#tagged" style="color:red;">a</a> '
        '<a href="mailto:x@example.org#tagged" style="color:red;">b</a>'
    )


def test_template_syntax_in_text_is_only_text():
    assert html("{{ 7*7 }} {% if x %}") == "{{ 7*7 }} {% if x %}"


def test_line_breaks_in_inline_text_become_spaces():
    assert parse_inline("one\ntwo")[0].plain == "one two"


# ------------------------------------------------------------------ inline → plaintext
def test_plaintext_keeps_emphasis_as_marks_and_drops_code_ticks():
    assert text("**bold**, *em* and `code`") == ("*bold*, _em_ and code", [])


def test_plaintext_links_become_numbered_references():
    assert text(
        "See [the docs](https://doc.example.org/) and [the list](https://list.example.org/), "
        "then [the docs](https://doc.example.org/) again."
    ) == (
        "See the docs [1] and the list [2], then the docs [1] again.",
        ["https://doc.example.org/", "https://list.example.org/"],
    )


def test_a_link_whose_text_is_its_url_is_written_once():
    assert text("[https://example.org/](https://example.org/)") == ("https://example.org/", [])


def test_a_mailto_link_whose_text_is_the_address_shows_the_address():
    assert text("[news@example.org](mailto:news@example.org)") == ("news@example.org", [])


def test_plaintext_is_not_escaped():
    assert text('<b> & "q"') == ('<b> & "q"', [])


def test_references_use_the_link_rewriter_and_are_taken_once():
    refs = References(lambda url: url + "?utm_source=x")
    inline, _ = parse_inline("[a](https://example.org/)")
    assert inline_text(inline, refs) == "a [1]"
    assert refs.take() == [(1, "https://example.org/?utm_source=x")]
    assert refs.take() == []


# ------------------------------------------------------------ links are validated at parse time
@pytest.mark.parametrize(
    "source, problem",
    [
        (
            "[x](javascript:alert(1))",
            "link [x]: 'javascript:' links are not allowed (only http, https and mailto)",
        ),
        (
            "[x](data:text/html,hi)",
            "link [x]: 'data:' links are not allowed (only http, https and mailto)",
        ),
        (
            "[x](ftp://example.org/)",
            "link [x]: 'ftp:' links are not allowed (only http, https and mailto)",
        ),
        ("[x](/relative)", "link [x]: '/relative' is not an absolute URL (use https://…)"),
        ("[](https://example.org/)", "link to 'https://example.org/' has no text"),
        (
            "*[x](javascript:y)*",
            "link [x]: 'javascript:' links are not allowed (only http, https and mailto)",
        ),
    ],
)
def test_bad_links_are_problems(source, problem):
    assert problem in parse_inline(source)[1]


# ------------------------------------------------------------------ blocks
SOURCE = """\
Intro line one
continues here.

### A heading

- one
- two
  continued
- three

1. first
2. second

> quoted
> more

Final **para**.
"""


def test_blocks_are_parsed():
    md, problems = parse_markdown(SOURCE)
    assert problems == []
    kinds = [type(b) for b in md.blocks]
    assert kinds == [ParagraphBlock, HeadingBlock, ListBlock, ListBlock, QuoteBlock, ParagraphBlock]
    para, heading, bullets, numbered, quote, last = md.blocks
    assert para.inline.plain == "Intro line one continues here."
    assert heading.inline.plain == "A heading"
    assert not bullets.ordered and [i.inline.plain for i in bullets.items] == [
        "one",
        "two continued",
        "three",
    ]
    assert numbered.ordered and [i.inline.plain for i in numbered.items] == ["first", "second"]
    assert quote.inline.plain == "quoted more"
    assert last.inline.spans == (TextSpan("Final "), StrongSpan((TextSpan("para"),)), TextSpan("."))


def test_blocks_to_html():
    md, _ = parse_markdown(SOURCE)
    assert markdown_html(md) == (
        "<p>Intro line one continues here.</p>"
        '<h3 class="md-heading">A heading</h3>'
        "<ul><li>one</li><li>two continued</li><li>three</li></ul>"
        "<ol><li>first</li><li>second</li></ol>"
        "<blockquote>quoted more</blockquote>"
        "<p>Final <strong>para</strong>.</p>"
    )


def test_blocks_to_plaintext():
    md, _ = parse_markdown(SOURCE + "\nSee [the guide](https://doc.dpdk.org/).\n")
    refs = References()
    assert markdown_text(md, refs) == (
        "Intro line one continues here.\n\n"
        "A heading\n---------\n\n"
        "- one\n- two continued\n- three\n\n"
        "1. first\n2. second\n\n"
        "> quoted more\n\n"
        "Final *para*.\n\n"
        "See the guide [1]."
    )
    assert refs.take() == [(1, "https://doc.dpdk.org/")]


def test_a_bullet_list_after_a_numbered_one_is_a_new_list():
    md, _ = parse_markdown("- a\n1. b\n- c\n")
    assert [(b.ordered, len(b.items)) for b in md.blocks] == [(False, 1), (True, 1), (False, 1)]


def test_a_dash_without_a_space_is_not_a_bullet():
    md, _ = parse_markdown("-not a bullet\n")
    assert md.blocks == (ParagraphBlock(parse_inline("-not a bullet")[0]),)


def test_block_text_is_escaped():
    md, _ = parse_markdown("# <h1> & co\n\n- <li>\n\n> <q>\n\n<p>")
    assert markdown_html(md) == (
        '<h3 class="md-heading">&lt;h1&gt; &amp; co</h3><ul><li>&lt;li&gt;</li></ul>'
        "<blockquote>&lt;q&gt;</blockquote><p>&lt;p&gt;</p>"
    )


def test_links_of_every_block_are_found_and_checked():
    md, problems = parse_markdown(
        "[a](https://a.example.org/)\n\n- [b](javascript:x)\n\n> [c](https://c.example.org/)"
    )
    assert [link.url for link in md.links()] == [
        "https://a.example.org/",
        "javascript:x",
        "https://c.example.org/",
    ]
    assert problems == [
        "link [b]: 'javascript:' links are not allowed (only http, https and mailto)"
    ]


# ------------------------------------------------------------------ no text can stall a build
# markdown-it-py reads CommonMark in work linear in the text (its delimiter runs are matched
# with a stack, not by backtracking); 3,000 characters is the longest inline field. The first
# hand-written parser took seconds for "*a " * 30 and needed a step budget.
@pytest.mark.parametrize(
    "source",
    [
        "*a " * 1000,
        "**a " * 750,
        "_a " * 1000,
        "*a " * 999 + "a*",
        "*a _b " * 500 + "c_ d*",
        "[a " * 1000,
        "[" * 2999 + "]",
    ],
    ids=["em", "strong", "underscore", "em-closed", "mixed", "brackets", "nested"],
)
def test_tangled_markers_are_read_with_every_word_kept(source):
    inline, problems = parse_inline(source)
    assert problems == []
    words = [w for w in source.replace("*", " ").replace("_", " ").split() if w.strip("[!")]
    assert inline.plain.replace("*", " ").replace("_", " ").split() == words


def test_a_few_unmatched_markers_in_ordinary_text_are_no_problem():
    source = ("*Note: prices exclude VAT. " * 10 + "Some *real* emphasis and rte_flow. ") * 5
    inline, problems = parse_inline(source)
    assert problems == []
    assert [span for span in inline.spans if not isinstance(span, TextSpan)] == [
        EmSpan((TextSpan("real"),))
    ] * 5
