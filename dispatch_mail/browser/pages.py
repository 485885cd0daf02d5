"""The pages of `dispatch preview`: the shell around the email, and a failed build's problems.

Dark mode: a page cannot choose what ``prefers-color-scheme`` matches inside an
iframe. In Chromium (checked with 156) neither ``color-scheme: dark`` on the
``<iframe>`` element nor ``<meta name="color-scheme" content="dark">`` or
``:root {color-scheme: dark}`` inside the framed document changes the media
query; only the operating system's setting or DevTools emulation do. So the
frame loads ``/email.html?scheme=dark``, a copy of the email whose
``(prefers-color-scheme: dark)`` conditions are rewritten to one that always
matches (and ``light`` ones to one that never does), plus ``:root{color-scheme:
dark !important}`` so the browser's own defaults (canvas, unstyled text) turn
dark as a mail client's would. ``?scheme=light`` does the opposite, so both
switches show the same thing whatever the viewer's own system setting is.
``/email.html`` without a query is the email byte for byte.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from urllib.parse import quote

from dispatch_mail.browser.builds import Build
from dispatch_mail.browser.static import asset_text
from dispatch_mail.project.wording import plural

SCHEMES = ("light", "dark")
# (group, its label, its buttons as (value, label)); the page's script keeps them in the URL
SWITCHES = (
    ("width", "Width", (("desktop", "Desktop"), ("phone", "Phone 375"), ("narrow", "320"))),
    ("scheme", "Color scheme", (("light", "Light"), ("dark", "Dark"))),
    ("view", "Part", (("html", "HTML"), ("text", "Plaintext"))),
)


def _switches() -> str:
    groups = []
    for group, label, buttons in SWITCHES:
        inner = "".join(
            f'<button type="button" data-set="{group}" data-value="{value}" '
            f'aria-pressed="false">{text}</button>'
            for value, text in buttons
        )
        groups.append(f'<span class="group" role="group" aria-label="{label}">{inner}</span>')
    return "\n    ".join(groups)


def issue_href(slug: str) -> str:
    """Where an issue's page is when several are previewed: ``/<slug>/``."""
    return f"/{quote(slug)}/"


def _label(build: Build) -> str:
    state = "" if build.ok else f" (failed: {plural(len(build.errors), 'problem')})"
    return f"{build.slug} · {build.subject}{state}" if build.subject else f"{build.slug}{state}"


def _issue_switcher(current: Build, issues: Sequence[Build]) -> str:
    """A menu of the other issues (the page's script follows it) and the way to the index."""
    e = html.escape
    options = "".join(
        f'<option value="{e(issue_href(b.slug))}"'
        f"{' selected' if b.slug == current.slug else ''}>{e(_label(b))}</option>"
        for b in issues
    )
    return (
        '<label class="issues">Issue <select id="issue" aria-label="Issue">'
        f'{options}</select></label> <a href="/">All issues</a>'
    )


def index_page(builds: Sequence[Build], nonce: str) -> str:
    """The list of every issue previewed, each a link to its page (several issues only)."""
    e = html.escape
    items = "".join(
        f'<li><a href="{e(issue_href(b.slug))}">{e(b.slug)}</a> '
        f"<span>{e(b.subject)}</span> "
        + (
            '<span class="good">built</span>'
            if b.ok
            else f'<span class="bad">failed: {plural(len(b.errors), "problem")}</span>'
        )
        + "</li>"
        for b in builds
    )
    css = asset_text("preview.css")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{plural(len(builds), "issue")} · dispatch preview</title>
<style nonce="{e(nonce)}">{css}</style>
</head>
<body class="index">
<header><div class="title"><strong>{plural(len(builds), "issue")}</strong>
<span class="meta">dispatch preview</span></div></header>
<main><ul id="issues">{items}</ul></main>
</body>
</html>
"""


def shell_page(build: Build, nonce: str, issues: Sequence[Build] | None = None) -> str:
    """The preview page: switches, then the email in a frame, or the build's problems.

    ``issues``, when several are previewed, adds a switcher to the others.
    """
    e = html.escape
    when = build.finished.strftime("%H:%M:%S")
    if build.ok:
        state = f'<span class="good">built</span> #{build.number} at {when}'
        title = build.subject or build.slug
        content = (
            '<iframe id="frame" title="The email" '
            'sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"></iframe>'
            f'<pre id="text" aria-label="The plaintext part">{e(build.text)}</pre>'
        )
    else:
        failed = plural(len(build.errors), "problem")
        state = f'<span class="bad">failed: {failed}</span> #{build.number} at {when}'
        title = f"{build.slug}: build failed"
        content = error_panel(build)
    warnings = ""
    if build.warnings:
        items = "".join(f"<li>{e(w)}</li>" for w in build.warnings)
        summary = plural(len(build.warnings), "warning")
        warnings = (
            f'<details class="warnings"><summary>{summary}</summary><ul>{items}</ul></details>'
        )
    css = asset_text("preview.css") + asset_text("errors.css")
    meta = f'<span class="meta">{e(build.slug)} · {state}</span>'
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · dispatch preview</title>
<style nonce="{e(nonce)}">{css}</style>
</head>
<body data-version="{e(build.version)}" data-width="desktop" data-scheme="light" data-view="html">
<header>
  <div class="title"><strong>{e(title)}</strong>{meta}</div>
  <nav aria-label="Preview switches">
    {_switches()}
    {_issue_switcher(build, issues) if issues is not None else ""}
    <a href="email.eml">Raw .eml</a>
    <span id="live">connecting…</span>
  </nav>
</header>
{warnings}
<main id="main">{content}</main>
<script nonce="{e(nonce)}">{asset_text("preview.js")}</script>
</body>
</html>
"""


def error_panel(build: Build) -> str:
    """The build's problems, escaped, and what to do about them."""
    items = "".join(f"<li><code>{html.escape(problem)}</code></li>" for problem in build.errors)
    return (
        '<section class="errors" role="alert">'
        f"<h1>The build failed: {plural(len(build.errors), 'problem')}</h1><ul>{items}</ul>"
        "<p>Fix the file and save: the preview rebuilds and this page reloads by itself.</p>"
        "</section>"
    )


def error_page(build: Build) -> str:
    """What /email.html answers while the build is broken."""
    css = asset_text("error-page.css") + asset_text("errors.css")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(build.slug)}: build failed</title><style>{css}</style>"
        f"</head><body>{error_panel(build)}</body></html>"
    )


def error_text(build: Build) -> str:
    """What /email.txt and /email.eml answer while the build is broken."""
    return "build failed:\n" + "".join(f"  {problem}\n" for problem in build.errors)


# ------------------------------------------------------------------------ dark mode

_SCHEME_FEATURE = re.compile(r"\(\s*prefers-color-scheme\s*:\s*(light|dark)\s*\)", re.IGNORECASE)
_STYLE_ELEMENT = re.compile(r"<style\b[^>]*>.*?</style\s*>", re.IGNORECASE | re.DOTALL)
_MEDIA_TAG = re.compile(r"<(?:link|source|img)\b[^>]*\bmedia\s*=[^>]*>", re.IGNORECASE)  # <picture>
_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)
_ALWAYS = "(min-width: 0px)"
_NEVER = "(max-width: 0px)"  # valid, so `not (…)` still negates it; false in any visible frame


def force_color_scheme(email_html: str, scheme: str) -> str:
    """The email as a client set to ``scheme`` shows it, whatever the viewer's system prefers.

    Only ``<style>`` elements and ``media`` attributes are rewritten, so text that
    mentions ``prefers-color-scheme`` is left alone.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, not {scheme!r}")

    def feature(match: re.Match[str]) -> str:
        return _ALWAYS if match.group(1).lower() == scheme else _NEVER

    def rewrite(match: re.Match[str]) -> str:
        return _SCHEME_FEATURE.sub(feature, match.group(0))

    email_html = _MEDIA_TAG.sub(rewrite, _STYLE_ELEMENT.sub(rewrite, email_html))
    # Last in <head> and !important, so it beats the email's own `color-scheme: light dark`.
    # <base target> opens the email's links in a new tab instead of inside the frame.
    extra = f'<style>:root{{color-scheme:{scheme} !important}}</style><base target="_blank">'
    head_end = _HEAD_END.search(email_html)
    if head_end is None:
        return extra + email_html
    return email_html[: head_end.start()] + extra + email_html[head_end.start() :]
