"""CSS inlining with css-inline (see docs/performance.md for why not premailer).

Only the theme's ``inline.css`` is inlined; MJML's own style blocks (media
queries, dark mode, resets) are marked to be left alone and kept as they are,
which is what MJML's own ``mj-style inline="inline"`` does.
"""

from __future__ import annotations

import re

_IGNORE = '<style data-css-inline="ignore"'
_TEXT_ATTRIBUTE = re.compile(r'(?<=\s)(alt|title|aria-label)="([^"]*)"')


def _escape_angles(match: re.Match[str]) -> str:
    return f'{match.group(1)}="{match.group(2).replace("<", "&lt;").replace(">", "&gt;")}"'


def inline_css(html: str, css: str) -> str:
    import css_inline

    inliner = css_inline.CSSInliner(
        inline_style_tags=True,
        keep_style_tags=True,
        keep_at_rules=True,
        load_remote_stylesheets=False,  # a build never needs the network
        extra_css=css,
    )
    marked = html.replace("<style", _IGNORE)
    out = inliner.inline(marked).replace(_IGNORE, "<style")
    # The HTML serializer leaves < and > raw inside attribute values (valid HTML); some mail
    # filters still read them as tags, so the text attributes get them escaped again.
    return _TEXT_ATTRIBUTE.sub(_escape_angles, out)
