"""MJML → responsive HTML with mjml-python (MRML), which validates nothing: our model does."""

from __future__ import annotations

import re

from dispatch_mail.errors import RenderError

_STYLE_BLOCK = re.compile(r"(<mj-style[^>]*>.*?</mj-style>)", re.DOTALL)


def protect_text(source: str) -> str:
    """Non-ASCII characters and backslashes as character references, outside style blocks.

    mjml-python writes attribute values with Rust's debug escapes ("I ❤️" becomes
    'I ❤\\u{fe0f}', a backslash doubles); character references pass through it
    untouched and the HTML serializer after it turns them back into UTF-8.
    """
    parts = _STYLE_BLOCK.split(source)
    for i in range(0, len(parts), 2):  # even parts lie outside <mj-style>
        parts[i] = (
            parts[i].encode("ascii", "xmlcharrefreplace").decode("ascii").replace("\\", "&#92;")
        )
    return "".join(parts)


def mjml_to_html(source: str) -> str:
    """Render MJML; MRML's bare "unable to parse" is given the context we know."""
    import mjml  # ~1 ms, but only build needs it

    try:
        return mjml.mjml2html(protect_text(source), disable_comments=True)
    except Exception as exc:  # MRML raises a bare Exception subclass with no position
        raise RenderError(
            f"email.mjml: the MJML engine rejected the rendered template ({exc}); "
            "a theme override probably produced invalid MJML (see the intermediate email.mjml)"
        ) from None


_BETWEEN_TAGS = re.compile(r">\s*\n\s*<")
_NEWLINE_RUNS = re.compile(r"[ \t]*\n[ \t\n]*")
# a plain comment: not Outlook's <!--[if …]>, <!--[endif]-->, <!--<![endif]-->
# nor the <!--> of <!--[if !mso]><!-->
_PLAIN_COMMENT = re.compile(r"<!--(?!\s*\[if|\s*\[endif|<!\[endif|>)(?:(?!-->).)*?-->", re.DOTALL)


_PRE = re.compile(r"(<pre\b.*?</pre>)", re.S | re.I)


def minify(html: str) -> str:
    """Drop indentation and plain comments, keep Outlook's conditional comments intact.

    Whitespace that holds a newline is layout from the templates, never content
    (manifest text is rendered on one line), so it can go between tags and
    shrink to one newline elsewhere (which keeps lines short for MIME).
    """
    html = _PLAIN_COMMENT.sub("", html)
    if "<pre" not in html:
        return _NEWLINE_RUNS.sub("\n", _BETWEEN_TAGS.sub("><", html))
    # a code block's whitespace is its content: only the layout between blocks is squeezed
    parts = _PRE.split(html)
    for n in range(0, len(parts), 2):
        parts[n] = _NEWLINE_RUNS.sub("\n", _BETWEEN_TAGS.sub("><", parts[n]))
    return "".join(parts)
