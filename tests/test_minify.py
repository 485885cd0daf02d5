"""Minifying must keep every Outlook conditional comment balanced and intact."""

import re
from pathlib import Path

from dispatch_mail.project.loader import load
from dispatch_mail.render import render_issue
from dispatch_mail.render.mjml import minify, mjml_to_html

ROOT = Path(__file__).resolve().parent.parent


def test_downlevel_revealed_comment_survives():
    html = (
        '<head><!--[if !mso]><!--><meta name="x" content="1"><!--<![endif]-->'
        "<!-- drop me --><style>a{}</style></head>"
    )
    out = minify(html)
    assert '<!--[if !mso]><!--><meta name="x" content="1"><!--<![endif]-->' in out
    assert "drop me" not in out and "<style>a{}</style>" in out


def test_built_issue_keeps_conditionals_and_its_head():
    project, issue = load(ROOT / "issues/2026-q1")
    raw = mjml_to_html(render_issue(project, issue).mjml)
    html = render_issue(project, issue).html
    for marker in ("<!--[if mso | IE]>", "<!--[if !mso]><!-->", "<!--<![endif]-->", "<![endif]-->"):
        assert raw.count(marker) == html.count(marker), marker
    # what a non-Outlook client sees: strip Outlook-only blocks, then no meta or style may be
    # inside a comment
    visible = re.sub(r"<!--\[if (?!!)[^\]]*\]>.*?<!\[endif\]-->", "", html, flags=re.DOTALL)
    visible = visible.replace("<!--[if !mso]><!-->", "").replace("<!--<![endif]-->", "")
    assert "<!--" not in visible
    assert '<meta name="viewport"' in visible and "<style" in visible
    assert len(html) < len(raw)
