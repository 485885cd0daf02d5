"""`dispatch check`: what will go wrong in inboxes, found offline before anyone sees the issue.

Each check is a function of the built issue that returns findings; `check_issue`
runs them all in a fixed order (the report lists findings in that order). Only
``links=True`` goes out to the network, on purpose.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from dispatch_mail.errors import ContentError
from dispatch_mail.project.issue import Issue
from dispatch_mail.project.loader import load
from dispatch_mail.project.placeholders import placeholder_problems
from dispatch_mail.project.settings import Project
from dispatch_mail.quality.budget import size_finding
from dispatch_mail.quality.clients import client_data_source, client_findings
from dispatch_mail.quality.content_checks import (
    check_footer,
    check_plaintext,
    check_subject_and_preheader,
)
from dispatch_mail.quality.direction_checks import check_direction
from dispatch_mail.quality.facts import Context, html_facts
from dispatch_mail.quality.findings import CheckReport, CheckStats, Finding, SectionWeight
from dispatch_mail.quality.html_checks import (
    check_accessibility,
    check_contrast,
    check_dark_mode,
    check_images,
    check_link_urls_and_text,
)
from dispatch_mail.quality.links import probe_urls
from dispatch_mail.render import render_issue


def check_size(ctx: Context) -> list[Finding]:
    finding = size_finding(ctx.rendered.html)
    return [finding] if finding else []


def check_client_support(ctx: Context) -> list[Finding]:
    return client_findings(ctx.facts)


def check_placeholders(ctx: Context) -> list[Finding]:
    """Links `dispatch init`/`new` left for the owner to replace (a list send refuses them)."""
    if not ctx.issue.path:
        return []
    problems = placeholder_problems(Path(ctx.issue.path))
    return [Finding("warning", "manifest.placeholder", str(p)) for p in problems]


CHECKS: tuple[Callable[[Context], list[Finding]], ...] = (
    check_placeholders,
    check_size,
    check_images,
    check_link_urls_and_text,
    check_subject_and_preheader,
    check_plaintext,
    check_direction,
    check_accessibility,
    check_dark_mode,
    check_contrast,
    check_footer,
    check_client_support,
)


def section_weights(project: Project, issue: Issue, full_size: int) -> list[SectionWeight]:
    """Bytes of HTML each section adds: the issue rendered without it, subtracted from the whole."""
    weights: list[SectionWeight] = []
    for i, section in enumerate(issue.sections):
        rest = issue.sections[:i] + issue.sections[i + 1 :]
        if not rest:
            weights.append({"section": section.heading or section.kind, "bytes": full_size})
            continue
        without = render_issue(project, dataclasses.replace(issue, sections=rest))
        label = f"sections[{i}] {section.kind}" + (
            f" '{section.heading}'" if section.heading else ""
        )
        weights.append({"section": label, "bytes": full_size - len(without.html.encode("utf-8"))})
    return weights


def check_issue(
    issue_dir: Path, *, links: bool = False, link_timeout: float = 10.0, link_concurrency: int = 8
) -> CheckReport:
    """Every offline check (and, with ``links``, that every link answers) of one issue."""
    issue_dir = Path(issue_dir)
    try:
        project, issue = load(issue_dir)
    except ContentError as exc:
        report = CheckReport(issue_dir.name, str(issue_dir))
        report.findings = [Finding("error", "manifest.invalid", str(p)) for p in exc.problems]
        return report
    rendered = render_issue(project, issue)
    ctx = Context(project, issue, rendered, html_facts(rendered.html))
    report = CheckReport(issue.slug, issue.path)
    for check in CHECKS:
        report.findings.extend(check(ctx))
    size = len(rendered.html.encode("utf-8"))
    report.stats = CheckStats(
        html_bytes=size,
        text_bytes=len(rendered.text.encode("utf-8")),
        links=len(ctx.facts.links),
        images=len(ctx.facts.images),
        sections=section_weights(project, issue, size),
        client_data=client_data_source(),
    )
    if links:
        urls = sorted(
            {link.href for link in ctx.facts.links if link.href.startswith(("http://", "https://"))}
        )
        report.findings.extend(probe_urls(urls, timeout=link_timeout, concurrency=link_concurrency))
    return report
