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

from dispatch_mail.errors import UsageError
from dispatch_mail.project.files import atomic_write
from dispatch_mail.project.loader import find_project_root, issue_dirs, load, load_project
from dispatch_mail.project.paths import MANIFEST_FILE, shown_path

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
    folder: Path, name: str = "Example Newsletter", today: date | None = None
) -> Created:
    """Create dispatch.yaml (commented), templates/, a first issue, .gitignore and a CI workflow."""
    today = today or date.today()
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
        folder / ".github" / "workflows" / "newsletter.yml": (
            SKELETON / "newsletter-ci.yml"
        ).read_text(encoding="utf-8"),
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


def issue_name_for(slug: str) -> str | None:
    """A readable name from common slug shapes: 2026-q2 → 'Q2 2026', 2026-05 → 'May 2026'."""
    m = re.fullmatch(r"(\d{4})-q([1-4])", slug)
    if m:
        return f"Q{m.group(2)} {m.group(1)}"
    m = re.fullmatch(r"(\d{4})-(\d{2})", slug)
    if m and 1 <= int(m.group(2)) <= 12:
        return date(int(m.group(1)), int(m.group(2)), 1).strftime("%B %Y")
    return None


def new_issue(
    slug: str, start: Path, previous: Path | None = None, today: date | None = None
) -> Path:
    """Start ``issues/<slug>/issue.yaml`` from the previous issue's structure, items emptied."""
    from ruamel.yaml import YAML

    if not SLUG.match(slug):
        raise UsageError(
            f"{slug!r} is not a usable issue name: lower-case letters, digits, '-', '_' and '.'"
        )
    project = load_project(find_project_root(start))
    target = project.root / project.issues / slug
    if (target / MANIFEST_FILE).exists():
        raise UsageError(
            f"{shown_path(target / MANIFEST_FILE)} exists already (nothing was written)"
        )
    if previous is None:
        candidates = [d for d in issue_dirs(project) if d.name != slug]
        if not candidates:
            raise UsageError("no previous issue to start from", hint="previous")
        # the newest by date, not by name
        previous = max(candidates, key=lambda d: (load(d)[1].date, d.name))
    _, old = load(previous)  # validates the previous issue: we start from a good one
    today = today or date.today()
    yaml = YAML()  # round trip: comments, order and quoting survive
    yaml.preserve_quotes = True
    yaml.width = 4096
    data = yaml.load(
        (Path(previous) / MANIFEST_FILE if Path(previous).is_dir() else Path(previous)).read_text(
            encoding="utf-8"
        )
    )
    new_name = issue_name_for(slug) or slug
    data["name"] = new_name
    data["date"] = today
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
        kind = section.get("kind")
        if kind == "cta":
            continue  # the call to action usually carries over as it is
        if kind == "stories":
            # keep one empty card per kicker used last time, in order
            kickers: list[str] = []
            for item in section.get("items") or []:
                kicker = item.get("kicker")
                if kicker not in kickers:
                    kickers.append(kicker)
            section["items"] = [
                {**({"kicker": k} if k else {}), "title": "", "url": "", "summary": ""}
                for k in kickers
            ]
            continue
        if "items" in section:
            section["items"] = []
        if "groups" in section:
            section["groups"] = [
                {"heading": g.get("heading"), "items": []} for g in section.get("groups") or []
            ]
        for key in ("title", "summary", "body", "meta", "url"):
            if key in section and kind == "featured":
                section[key] = ""
        if kind == "featured":
            section.pop("quote", None)
        if kind == "markdown":
            section["body"] = ""
    buffer = io.StringIO()
    buffer.write(
        f"# Started from {Path(previous).name} by `dispatch new`: fill in the empty fields;\n"
    )
    buffer.write(
        "# `dispatch build` lists every one still missing. `dispatch add ISSUE URL` adds links.\n"
    )
    yaml.dump(data, buffer)
    atomic_write(target / MANIFEST_FILE, buffer.getvalue())
    return target
