"""`dispatch init` and `dispatch new`: a new newsletter project, a new issue from the last one.

Neither ever overwrites a file: every conflict is reported and nothing is
written. `new` edits the previous manifest with a round-trip YAML parser so the
owner's comments and layout carry over.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from dispatch_mail.authoring.install_spec import (
    InstallSpec,
    running_install_spec,
    workflow_install_step,
)
from dispatch_mail.authoring.periods import Guess, next_period, parse_period
from dispatch_mail.errors import ContentError, UsageError
from dispatch_mail.project.files import atomic_write
from dispatch_mail.project.loader import find_project_root, issue_dirs, load, load_project
from dispatch_mail.project.paths import MANIFEST_FILE, shown_path
from dispatch_mail.project.placeholders import PLACEHOLDER_BASE, is_placeholder, placeholder

SKELETON = Path(__file__).resolve().parent / "skeleton"
SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass
class Created:
    root: Path
    files: list[Path]


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def init_project(
    folder: Path,
    name: str = "Example Newsletter",
    today: date | None = None,
    install: InstallSpec | None = None,
) -> Created:
    """Create dispatch.yaml (commented), templates/, a first issue, .gitignore and a CI workflow.

    The workflow installs ``install``, by default the running copy's own source.
    """
    today = today or date.today()
    install = install or running_install_spec()
    slug = today.strftime("%Y-%m")
    issue_name = today.strftime("%B %Y")
    if any(c in name for c in "\r\n") or not name.strip():
        raise UsageError("the newsletter's name must be one non-empty line", hint="name")
    q = json.dumps  # a JSON string is a valid YAML double-quoted scalar: any name is safe
    values = {
        "name": q(name),
        "footer_text": q(f"You receive {name} because you subscribed at example.org."),
        "issue_name": q(issue_name),
        "date": today.isoformat(),
        "subject": q(f"{name}: {issue_name}"),
        "preheader": q(
            f"The first issue of {name}, with what we are working on and how to join in."
        ),
        "eyebrow": q(f"{name} · {issue_name}"),
        "headline": q(f"Welcome to {name}"),
    }
    plan = {
        folder / "dispatch.yaml": _fill(
            (SKELETON / "dispatch.yaml").read_text(encoding="utf-8"), values
        ),
        folder / "templates" / "README.md": (SKELETON / "templates-README.md").read_text(
            encoding="utf-8"
        ),
        folder / "issues" / slug / MANIFEST_FILE: _fill(
            (SKELETON / "issue.yaml").read_text(encoding="utf-8"), values
        ),
        folder / ".gitignore": (SKELETON / "gitignore").read_text(encoding="utf-8"),
        # the list's suppression file must exist: a send refuses a configured one that is missing
        folder / "lists" / "suppressed.csv": "email\n",
        folder / ".github" / "workflows" / "newsletter.yml": _fill(
            (SKELETON / "newsletter-ci.yml").read_text(encoding="utf-8"),
            {"install_step": workflow_install_step(install)},
        ),
    }
    existing = [p for p in plan if p.exists()]
    if existing:
        raise UsageError(
            "refusing to overwrite: "
            + ", ".join(shown_path(p) for p in existing)
            + " (nothing was written)"
        )
    for path, text in plan.items():
        atomic_write(path, text)
    return Created(folder, list(plan))


@dataclass(frozen=True)
class Started:
    """A new issue: its folder, its date, and how its slug was guessed (None: it was given)."""

    folder: Path
    date: date
    guess: Guess | None


def _written_date(issue_dir: Path) -> date | None:
    """The ``date:`` a manifest holds, read leniently: a draft with empty fields still counts."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load((issue_dir / MANIFEST_FILE).read_text(encoding="utf-8"), Loader=loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    value = data.get("date") if isinstance(data, dict) else None
    return value if isinstance(value, date) else None


def _issue_dated(issue_dir: Path) -> date:
    period = parse_period(issue_dir.name)
    return _written_date(issue_dir) or (period.start if period else date.min)


# the documentation domains (RFC 2606): a link there was never meant to be sent
_EXAMPLE_HOST = re.compile(
    r"^https?://(?:[^/?#]*\.)?(?:example\.(?:org|com|net)|[^/?#]*\.(?:example|test|invalid))"
    r"(?=[:/?#]|$)",
    re.IGNORECASE,
)


def _placeholder_for(url: object, name: str) -> str | None:
    """The placeholder that replaces a copied link the owner must change, or None to keep it."""
    if isinstance(url, str) and _EXAMPLE_HOST.match(url.strip()):
        return url if is_placeholder(url) else placeholder(name)
    return None


def _mark_example_links(node: object, name: str) -> None:
    """Every copied ``url``/``link`` on a documentation domain becomes a placeholder."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("url", "link") and (marked := _placeholder_for(value, name)):
                node[key] = marked
            else:
                _mark_example_links(value, name)
    elif isinstance(node, list):
        for value in node:
            _mark_example_links(value, name)


def _source_issue(project_issues: list[Path], slug: str) -> Path:
    """The newest issue that loads: a draft still being filled in is no structure to copy."""
    candidates = sorted(
        (d for d in project_issues if d.name != slug),
        key=lambda d: (_issue_dated(d), d.name),
        reverse=True,
    )
    if not candidates:
        raise UsageError("no previous issue to start from", hint="previous")
    for candidate in candidates:
        try:
            load(candidate)
        except ContentError:
            continue
        return candidate
    return candidates[0]  # none loads: the newest one's problems are reported


def new_issue(
    slug: str | None, start: Path, previous: Path | None = None, today: date | None = None
) -> Started:
    """Start ``issues/<slug>/issue.yaml`` from the previous issue's structure, items emptied.

    The issue is dated from its slug when the slug names a period (else today). With
    no slug, it is the period after the newest issue's, at the cadence the issues show.
    """
    from ruamel.yaml import YAML

    project = load_project(find_project_root(start))
    existing = issue_dirs(project)
    guess = None
    if slug is None:
        guess = next_period([(d.name, _issue_dated(d)) for d in existing])
        slug = guess.period.slug
    if not SLUG.match(slug):
        raise UsageError(
            f"{slug!r} is not a usable issue name: lower-case letters, digits, '-', '_' and '.'"
        )
    target = project.root / project.issues / slug
    if (target / MANIFEST_FILE).exists():
        raise UsageError(
            f"{shown_path(target / MANIFEST_FILE)} exists already (nothing was written)"
        )
    if previous is None:
        previous = _source_issue(existing, slug)
    _, old = load(previous)  # validates the previous issue: we start from a good one
    period = parse_period(slug)
    issue_date = period.start if period else (today or date.today())
    yaml = YAML()  # round trip: comments, order and quoting survive
    yaml.preserve_quotes = True
    yaml.width = 4096
    data = yaml.load(
        (Path(previous) / MANIFEST_FILE if Path(previous).is_dir() else Path(previous)).read_text(
            encoding="utf-8"
        )
    )
    new_name = period.name if period else slug
    data["name"] = new_name
    data["date"] = issue_date
    for key in ("subject",):
        if key in data and old.name in str(data[key]):
            data[key] = str(data[key]).replace(old.name, new_name)
    masthead = data.get("masthead") or {}
    if "eyebrow" in masthead and old.name in str(masthead["eyebrow"]):
        masthead["eyebrow"] = str(masthead["eyebrow"]).replace(old.name, new_name)
    for key in ("headline", "dek"):
        if key in masthead:
            masthead[key] = ""
    for key in ("preheader", "intro"):
        if key in data:
            data[key] = ""
    for section in data.get("sections") or []:
        _empty_section(section)
    _mark_example_links(data, "replace-this-link")
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    atomic_write(
        target / MANIFEST_FILE,
        _NEW_HEADER.format(Path(previous).name) + _without_our_header(buffer.getvalue()),
    )
    return Started(target, issue_date, guess)


_NEW_HEADER = (
    "# Started from {} by `dispatch new`: fill in the empty fields;\n"
    "# `dispatch build` lists every one still missing, and every placeholder link\n"
    f"# ({PLACEHOLDER_BASE}…) left to replace. `dispatch add ISSUE URL` adds links.\n"
)


def _without_our_header(text: str) -> str:
    """The manifest without the header an earlier `dispatch new` wrote: it would pile up."""
    ours = [line.split("{}")[0] for line in _NEW_HEADER.splitlines()]
    lines = text.splitlines(keepends=True)
    while lines and any(lines[0].startswith(prefix) for prefix in ours):
        lines.pop(0)
    return "".join(lines)


def _empty_section(section: Any) -> None:
    """One section of the previous issue, its content emptied and its shape kept."""
    kind = section.get("kind")
    if kind == "cta":
        return  # the call to action usually carries over as it is (example links aside)
    if kind == "stories":
        # keep one empty card per kicker used last time, in order
        kickers: list[str] = []
        for item in section.get("items") or []:
            kicker = item.get("kicker")
            if kicker not in kickers:
                kickers.append(kicker)
        section["items"] = [
            {**({"kicker": k} if k else {}), "title": "", "url": "", "summary": ""} for k in kickers
        ]
        return
    if "items" in section:
        section["items"] = []
    if "groups" in section:
        section["groups"] = [
            {"heading": g.get("heading"), "items": []} for g in section.get("groups") or []
        ]
    if kind == "featured":
        for key in ("title", "summary", "body", "meta", "url"):
            if key in section:
                section[key] = ""
        section.pop("quote", None)
        # last time's event: its button and picture are for the owner to replace
        action = section.get("action")
        if isinstance(action, dict) and action.get("url"):
            action["url"] = placeholder("the-featured-link")
        image = section.get("image")
        if isinstance(image, dict):
            if image.get("url"):
                image["url"] = placeholder("the-featured-image.png")
            if image.get("link"):
                image["link"] = placeholder("the-featured-image-link")
    if kind == "markdown":
        section["body"] = ""
