"""`dispatch build --all --previews`: every issue built, checked and photographed, one index.html.

This is the folder CI uploads so a reviewer sees each issue as readers will,
without installing anything: per issue the built files, the check report,
desktop/mobile/dark screenshots and what the browser found about the layout.
One broken issue never stops the others; it shows its errors in the gallery.

Screenshots need Chromium. On a laptop without it the gallery says why they
are missing and the build still succeeds; in CI (``CI=true``) a missing browser
fails the build, because a preview without pictures there is a broken pipeline,
not a choice.
"""

from __future__ import annotations

import html
import json
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from dispatch_mail.browser.chromium import ChromiumSession, browser_unavailable_reason
from dispatch_mail.browser.screenshot import SHOTS, format_layout, layout_report, take_screenshots
from dispatch_mail.browser.static import asset_text
from dispatch_mail.errors import BrowserUnavailable, ContentError, DispatchError, ScreenshotError
from dispatch_mail.project.files import atomic_write
from dispatch_mail.project.loader import find_project_root, issue_dirs, load_project
from dispatch_mail.project.paths import previews_dir, shown_path
from dispatch_mail.project.wording import plural
from dispatch_mail.publish.build import OUTPUT_NAMES, build_issue
from dispatch_mail.quality.checks import check_issue
from dispatch_mail.quality.report import format_json, format_text
from dispatch_mail.version import __version__

Log = Callable[[str], None]
CHECK_NAMES = ("check.txt", "check.json")
LAYOUT_NAME = "layout.json"
# Everything this module writes into an issue's folder; cleared first, so that nothing stale
# is linked or uploaded.
GENERATED = (*OUTPUT_NAMES, *CHECK_NAMES, LAYOUT_NAME, *(f"{name}.png" for name in SHOTS))
LINKS = (
    ("email.html", "HTML"),
    ("email.txt", "text"),
    ("email.eml", ".eml"),
    ("email.mjml", "MJML"),
    ("check.txt", "check report"),
    ("check.json", "check JSON"),
    (LAYOUT_NAME, "layout JSON"),
)
SHOT_LABELS = {"desktop": "Desktop", "mobile": "Phone", "dark": "Dark mode"}


@dataclass
class IssuePreview:
    """What the gallery shows of one issue."""

    slug: str
    folder: Path
    out_dir: Path
    subject: str = ""
    date: str = ""
    built: bool = False
    errors: list[str] = field(default_factory=list)  # why the build (or its screenshots) failed
    findings: list[str] = field(default_factory=list)  # check errors and warnings, as printed
    check_counts: dict[str, int] = field(default_factory=dict)
    screenshots: dict[str, str] = field(default_factory=dict)  # name -> file name in out_dir
    layout: list[str] = field(default_factory=list)
    layout_ok: bool = True
    files: list[str] = field(default_factory=list)  # file names in out_dir, for links

    @property
    def failed(self) -> bool:
        return bool(self.errors)


@dataclass
class Gallery:
    index: Path
    failed: bool
    issues: list[IssuePreview]
    screenshots_skipped: str | None = None  # why, when no screenshots were taken
    browser: str = ""


def build_previews(
    project_dir: Path,
    out_dir: Path | None = None,
    chromium: str | None = None,
    log: Log | None = None,
) -> Gallery:
    """Build, check and screenshot every issue into OUT/<slug>/ and write OUT/index.html.

    OUT defaults to ``build/previews`` beside dispatch.yaml. ``failed`` is true
    when an issue did not build or Chromium failed on it, or when Chromium is
    missing and ``CI=true``; check findings are shown, not failed on (that is
    ``dispatch check``'s job).
    """
    say = log or (lambda _line: None)
    root = find_project_root(Path(project_dir))
    project = load_project(root)
    out = Path(out_dir) if out_dir else previews_dir(project)
    folders = sorted(issue_dirs(project), key=lambda p: p.name, reverse=True)  # newest first
    in_ci = os.environ.get("CI", "").lower() == "true"

    with ExitStack() as stack:
        session: ChromiumSession | None = None
        skipped = browser_unavailable_reason(chromium)
        if skipped is None:
            try:
                session = stack.enter_context(ChromiumSession(chromium))
            except BrowserUnavailable as exc:
                skipped = str(exc)
        if skipped:
            say(f"{'error' if in_ci else 'note'}: screenshots skipped: {skipped}")
        issues = [_preview_issue(folder, out / folder.name, session, say) for folder in folders]
        browser = f"Chromium {session.version}" if session else ""

    failed = any(p.failed for p in issues) or bool(skipped and in_ci)
    gallery = Gallery(out / "index.html", failed, issues, skipped, browser)
    atomic_write(
        gallery.index, render_gallery(project.name, gallery, ci_failure=bool(skipped and in_ci))
    )
    built = sum(p.built for p in issues)
    say(f"{built} of {plural(len(issues), 'issue')} built; gallery {shown_path(gallery.index)}")
    return gallery


def _preview_issue(
    folder: Path, dest: Path, session: ChromiumSession | None, say: Log
) -> IssuePreview:
    preview = IssuePreview(folder.name, folder, dest)
    for name in GENERATED:
        (dest / name).unlink(missing_ok=True)
    html_text = ""
    try:
        result = build_issue(folder, dest)
    except DispatchError as exc:
        preview.errors = (
            [str(p) for p in exc.problems] if isinstance(exc, ContentError) else [str(exc)]
        )
        for problem in preview.errors:
            say(f"error: {problem}")
    else:
        preview.built = True
        preview.subject, preview.date = result.issue.subject, result.issue.date.isoformat()
        preview.files += list(result.files)
        html_text = result.rendered.html
        say(f"built {folder.name} → {shown_path(dest)}/")

    try:
        report = check_issue(folder)
    except DispatchError as exc:  # the build already said why; keep the gallery going
        preview.findings = [f"error: check: {exc}"]
    else:
        atomic_write(dest / "check.txt", format_text([report], verbose=True) + "\n")
        atomic_write(dest / "check.json", format_json([report]) + "\n")
        preview.files += list(CHECK_NAMES)
        preview.check_counts = {
            level: report.count(level) for level in ("error", "warning", "note")
        }
        preview.findings = [str(f) for f in report.findings if f.level in ("error", "warning")]

    if preview.built and session is not None:
        try:
            shots = take_screenshots(html_text, dest, browser=session)
            layout = layout_report(html_text, browser=session)
        except ScreenshotError as exc:
            preview.errors.append(f"screenshots: {exc}")
            say(f"error: {folder.name}: screenshots: {exc}")
        else:
            preview.screenshots = {name: path.name for name, path in shots.items()}
            atomic_write(
                dest / LAYOUT_NAME, json.dumps(layout, indent=2, ensure_ascii=False) + "\n"
            )
            preview.files.append(LAYOUT_NAME)
            preview.layout, preview.layout_ok = format_layout(layout), bool(layout["ok"])
            for line in preview.layout:
                say(f"  {'layout' if preview.layout_ok else 'warning'}: {line}")
    return preview


# --------------------------------------------------------------------------- the page
def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _href(slug: str, name: str) -> str:
    return _e(f"{quote(slug)}/{quote(name)}")




def render_gallery(name: str, gallery: Gallery, *, ci_failure: bool = False) -> str:
    """The gallery page: self-contained (inline CSS, no script, nothing fetched), all escaped."""
    issues = gallery.issues
    built = sum(p.built for p in issues)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(name)}: issue previews</title>",
        f"<style>{asset_text('gallery.css')}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{_e(name)}: issue previews</h1>",
        f'<p class="meta">{built} of {plural(len(issues), "issue")} built · '
        f"generated {_e(stamp)} by dispatch {_e(__version__)}"
        + (f" · screenshots by {_e(gallery.browser)}" if gallery.browser else "")
        + "</p>",
        "</header>",
    ]
    if gallery.screenshots_skipped:
        cls = "notice bad" if ci_failure else "notice"
        why = "This fails the build in CI." if ci_failure else "Everything else was built."
        parts.append(
            f'<p class="{cls}" id="screenshots-skipped"><strong>Screenshots skipped:</strong> '
            f"{_e(gallery.screenshots_skipped)}. {why}</p>"
        )
    if not issues:
        parts.append('<p class="notice">No issues found in this project.</p>')
    for preview in issues:
        parts.append(_issue_card(preview))
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _issue_card(p: IssuePreview) -> str:
    title = p.subject or p.slug
    out = [
        f'<article id="{_e(p.slug)}" class="{"failed" if p.failed else "built"}">',
        f"<h2>{_e(title)}</h2>",
        f'<p class="meta">{_e(p.slug)}' + (f" · {_e(p.date)}" if p.date else "") + "</p>",
    ]
    counts = p.check_counts
    if p.failed:
        status = '<span class="status bad">failed</span>'
    elif counts.get("error"):
        status = '<span class="status bad">built, check found errors</span>'
    else:
        status = '<span class="status ok">built</span>'
    if counts:
        status += " · check: " + ", ".join(
            _count(counts[level], level) for level in ("error", "warning", "note")
        )
    out.append(f"<p>{status}</p>")
    if p.errors:
        out.append('<ul class="errors">' + "".join(f"<li>{_e(e)}</li>" for e in p.errors) + "</ul>")
    if p.screenshots:
        out.append('<div class="shots">')
        for shot, filename in p.screenshots.items():
            width = SHOTS[shot][0]
            label = f"{SHOT_LABELS.get(shot, shot)}, {width} px"
            href = _href(p.slug, filename)
            out.append(
                f'<figure><a href="{href}"><img src="{href}" alt="{_e(label)}: {_e(title)}" '
                f'loading="lazy"></a><figcaption>{_e(label)}</figcaption></figure>'
            )
        out.append("</div>")
    if p.layout:
        cls = "muted" if p.layout_ok else "status warn"
        out.append("".join(f'<p class="{cls}">Browser: {_e(line)}</p>' for line in p.layout))
    links = [f'<a href="{_href(p.slug, f)}">{_e(label)}</a>' for f, label in LINKS if f in p.files]
    if links:
        out.append('<p class="links">' + "".join(links) + "</p>")
    if p.findings and p.built:  # an unbuilt issue's check repeats the errors above
        shown = p.findings[:50]
        more = (
            f"<li>… {len(p.findings) - 50} more in the check report</li>"
            if len(p.findings) > 50
            else ""
        )
        out.append(
            f"<details{' open' if counts.get('error') and not p.failed else ''}>"
            f"<summary>Check errors and warnings ({len(p.findings)})</summary>"
            '<ul class="findings">'
            + "".join(f"<li>{_e(f)}</li>" for f in shown)
            + more
            + "</ul></details>"
        )
    out.append("</article>")
    return "\n".join(out)
