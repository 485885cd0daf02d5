"""The check reports as people and CI read them: text, JSON, and JUnit XML."""

from __future__ import annotations

import json
from xml.sax.saxutils import escape, quoteattr

from dispatch_mail.project.paths import shown_path
from dispatch_mail.project.wording import plural
from dispatch_mail.quality.budget import GMAIL_CLIP_BYTES
from dispatch_mail.quality.findings import LEVELS, CheckReport


def format_text(reports: list[CheckReport], verbose: bool = False, *, quiet: bool = False) -> str:
    """Figures (not when ``quiet``), errors and warnings (notes too with ``verbose``), counts."""
    lines = []
    for report in reports:
        lines.append(f"{shown_path(report.path)}:")  # as `dispatch build` shows paths
        if report.stats and not quiet:
            s = report.stats
            lines.append(
                f"  HTML {s['html_bytes'] / 1024:.1f} KB of Gmail's {GMAIL_CLIP_BYTES // 1024} KB"
                f" · text {s['text_bytes'] / 1024:.1f} KB · {plural(s['links'], 'link')}"
                f" · {plural(s['images'], 'image')}"
            )
            heaviest = sorted(s["sections"], key=lambda x: -x["bytes"])[:5]
            lines.append(
                "  heaviest sections: "
                + ", ".join(f"{h['section']} {h['bytes'] / 1024:.1f} KB" for h in heaviest)
            )
        for level in LEVELS if verbose else LEVELS[:2]:
            lines += [f"  {f}" for f in report.findings if f.level == level]
        hidden = "" if verbose or not report.count("note") else " (notes shown with --verbose)"
        lines.append(
            f"  {plural(report.count('error'), 'error')},"
            f" {plural(report.count('warning'), 'warning')},"
            f" {plural(report.count('note'), 'note')}{hidden}"
        )
    return "\n".join(lines)


def format_json(reports: list[CheckReport]) -> str:
    return json.dumps([r.to_dict() for r in reports], indent=2, ensure_ascii=False)


def format_junit(reports: list[CheckReport], strict: bool = False) -> str:
    """JUnit XML: one test suite per issue, one test case per check code; notes are not failures."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>', "<testsuites>"]
    for report in reports:
        codes = sorted({f.code for f in report.findings} | {"manifest.valid"})
        failing = [
            f for f in report.findings if f.level == "error" or (strict and f.level == "warning")
        ]
        name = quoteattr("dispatch check " + report.slug)
        out.append(
            f'  <testsuite name={name} tests="{len(codes)}"'
            f' failures="{len({f.code for f in failing})}">'
        )
        for code in codes:
            found = [f for f in report.findings if f.code == code]
            bad = [f for f in found if f in failing]
            out.append(f"    <testcase classname={quoteattr(report.slug)} name={quoteattr(code)}>")
            if bad:
                body = escape("\n".join(str(f) for f in bad))
                out.append(
                    f"      <failure message={quoteattr(bad[0].message[:200])}>{body}</failure>"
                )
            elif found:
                out.append(
                    f"      <system-out>{escape(chr(10).join(map(str, found)))}</system-out>"
                )
            out.append("    </testcase>")
        out.append("  </testsuite>")
    out.append("</testsuites>")
    return "\n".join(out) + "\n"
