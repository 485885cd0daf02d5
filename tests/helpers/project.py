"""Newsletter projects in temp folders: the one factory every test builds its project with.

A project is ``dispatch.yaml``, ``issues/<slug>/issue.yaml`` and, optionally, the
project's own ``templates/``. Each part is given as text, as bytes (written as
they are, hostile input included) or as a path to copy (a file or a whole
folder), so the same factory writes a minimal project inline, copies the
repository's own newsletter, or mixes the two.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REPO_CONFIG = REPO / "dispatch.yaml"  # the repository's own newsletter settings
REPO_TEMPLATES = REPO / "templates"

Content = str | bytes | Path

# The smallest valid project and issue; tests replace parts of them.
PROJECT_YAML = """\
name: Test News
sender:
  name: Test Sender
  address: news@example.org
footer:
  organisation: Test Org
  postal_address: 1 Test Street, Testville
  unsubscribe_url: https://example.org/unsubscribe?t={token}
"""

ISSUE_YAML = """\
subject: Test issue
name: Issue 1
date: 2026-01-08
masthead:
  headline: Hello
sections:
  - kind: announcements
    items:
      - Something happened.
"""


def repository_issues() -> dict[str, Path]:
    """Every issue folder of the repository's newsletter, by slug (for ``issues=``)."""
    folders = sorted((REPO / "issues").iterdir())
    return {folder.name: folder for folder in folders if folder.is_dir()}


def create_project(
    root: Path,
    *,
    config: Content = PROJECT_YAML,
    config_edits: Mapping[str, str] | None = None,
    issues: Mapping[str, Content] | None = None,
    templates: Mapping[str, Content] | Path | None = None,
) -> Path:
    """Write a project into ``root`` (created if need be) and return ``root``.

    ``issues`` maps slugs to issue.yaml content, or to an issue folder to copy
    whole; without it the project has one issue, ``test``, of ISSUE_YAML.
    ``config_edits`` replaces text in dispatch.yaml, and each old text must be
    there, so a test cannot go on with an edit that silently missed.
    ``templates`` maps file names to overrides, or is a templates folder to copy.
    """
    root.mkdir(parents=True, exist_ok=True)
    _put(root / "dispatch.yaml", config)
    if config_edits:
        text = (root / "dispatch.yaml").read_text(encoding="utf-8")
        for old, new in config_edits.items():
            assert old in text, f"dispatch.yaml has no {old!r} to replace"
            text = text.replace(old, new)
        (root / "dispatch.yaml").write_text(text, encoding="utf-8")
    for slug, issue in (issues if issues is not None else {"test": ISSUE_YAML}).items():
        folder = root / "issues" / slug
        if isinstance(issue, Path) and issue.is_dir():
            shutil.copytree(issue, folder, dirs_exist_ok=True)
        else:
            _put(folder / "issue.yaml", issue)
    if isinstance(templates, Path):
        shutil.copytree(templates, root / "templates", dirs_exist_ok=True)
    else:
        for name, template in (templates or {}).items():
            _put(root / "templates" / name, template)
    return root


def _put(path: Path, content: Content) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, Path):
        shutil.copyfile(content, path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


# ------------------------------------------------------------------ the send tests' project
SEND_PROJECT_YAML = """\
name: Example Weekly
sender:
  name: Example Weekly
  address: weekly@example.org
  reply_to: editors@example.org
footer:
  organisation: Example Project
  postal_address: Example Foundation, 123 Example Street, Springfield, EX 00000, USA
  unsubscribe_url: https://news.example.org/unsubscribe?t={{token}}
{mailto}subject_prefix: "[TEST]"
reviewers:
  - editors@example.org
lists:
  subscribers:
    csv: lists/subscribers.csv
    suppression: lists/suppressed.csv
{extra}"""
SEND_ISSUE_YAML = """\
subject: {subject}
name: Issue 1
date: 2026-01-08
greeting: "Hi {{name}},"
masthead:
  eyebrow: Example Weekly · Issue 1
  headline: Hello, readers
sections:
  - kind: announcements
    heading: News
    items:
      - {item}
"""


@dataclass
class Project:
    """A project ready to send: dispatch.yaml with lists and reviewers, issue ``one``, lists/."""

    root: Path
    mailto: bool = True
    extra: str = ""
    subject: str = "Example Weekly, issue 1"
    item: str = "Example 2.0 is out, with **faster** start-up."
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.write()

    def write(self) -> None:
        mailto = "  unsubscribe_mailto: unsubscribe@example.org\n" if self.mailto else ""
        create_project(
            self.root,
            config=SEND_PROJECT_YAML.format(mailto=mailto, extra=self.extra),
            issues={"one": SEND_ISSUE_YAML.format(subject=self.subject, item=self.item)},
        )
        (self.root / "lists").mkdir(exist_ok=True)
        suppression = self.root / "lists" / "suppressed.csv"  # dispatch.yaml names it
        if not suppression.exists():
            suppression.write_text("email\n", encoding="utf-8")

    def change_content(self, item: str) -> None:
        self.item = item
        self.write()

    @property
    def issue_dir(self) -> Path:
        return self.root / "issues" / "one"

    @property
    def journal(self) -> Path:
        return self.root / "send.journal"

    def csv(
        self,
        rows: list[tuple[str, ...]] | list[str],
        name: str = "list.csv",
        header: str = "email,name",
    ) -> Path:
        """Write a recipients CSV; rows are (email, name) tuples or bare addresses."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        buffer.write(header + "\n")
        for row in rows:
            writer.writerow([row] if isinstance(row, str) else list(row))
        path = self.root / name
        path.write_text(buffer.getvalue(), encoding="utf-8")
        return path
