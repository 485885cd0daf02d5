"""A link-heavy weekly of This Week in Rust's shape, generated with any number of links.

Shared by `benchmarks/clip.py` (bytes per link item, room under Gmail's clip) and
`tests/test_clip.py` (a 200-link issue stays under the clip), so the test checks the
issue the benchmark measures. Every name and URL is made up; the text is plain YAML
written as a manifest owner would write it.
"""

from __future__ import annotations

import json
from pathlib import Path

PROJECT_YAML = """\
name: This Week in Example
lang: en
sender:
  name: This Week in Example
  address: twie@example.org
footer:
  organisation: The Example Project
  postal_address: Example Foundation, 123 Example Street, Springfield, EX 00000, USA
  unsubscribe_url: https://this-week.example.org/unsubscribe?t={token}
  preferences_url: https://this-week.example.org/preferences
"""

# 40 links make one "block", the shape of This Week in Rust: a links section (6 items with a
# note and a "read" link, then three title-only groups of 8, like its "Project/Tooling
# Updates" or "Observations/Thoughts") and a reading list of 10 titled notes. Blocks repeat,
# so the section headings are part of what each link costs, as in a real weekly.
BLOCK = 40
_TOPICS = (
    "Official",
    "Project and tooling updates",
    "Observations and thoughts",
    "Walkthroughs",
    "Research",
    "Miscellaneous",
    "Crate of the week",
    "Updates from the core",
)
_CRATES = ("serde", "tokio", "rayon", "axum", "clap", "bevy", "sqlx", "wgpu", "nom", "hyper")

_MARKDOWN = """\
This week's `unsafe` review found one soundness bug. The fix, in short:

```rust
pub fn split_at(&self, mid: usize) -> (&[T], &[T]) {
    assert!(mid <= self.len(), "mid > len");
    // SAFETY: `mid` was checked against the length above.
    unsafe { (self.get_unchecked(..mid), self.get_unchecked(mid..)) }
}
```

And the benchmark that caught it:

```
$ cargo bench --bench split -- --save-baseline main
split_at/1024           time:   [12.113 ns 12.140 ns 12.171 ns]
```

| crate | downloads this week | change |
|---|---|---|
| `serde` | 9,812,004 | +2.1% |
| `tokio` | 5,120,775 | +0.4% |
| `rayon` | 2,004,310 | −1.3% |
"""


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON is a subset of YAML's flow style)."""
    return json.dumps(text, ensure_ascii=False)


def _title(n: int) -> str:
    crate = _CRATES[n % len(_CRATES)]
    return f"Faster builds with `{crate}` {n // 10}.{n % 10}: what changed in `{crate}::core`"


def _url(n: int) -> str:
    if n % 3 == 0:
        return f"https://github.com/example-lang/example/pull/{120000 + n}"
    return f"https://blog.example.org/2026/04/{n:04d}-faster-builds-with-{_CRATES[n % 10]}/"


def _note(n: int) -> str:
    return f"A short note on item {n}: why `{_CRATES[n % 10]}` matters and who should read it."


def _block(first: int, count: int, block_number: int) -> list[str]:
    """The sections of one block of ``count`` (≤ BLOCK) links numbered from ``first``."""
    numbers = list(range(first, first + count))
    items, grouped, reading = numbers[:6], numbers[6:30], numbers[30:]
    topic = _TOPICS[block_number % len(_TOPICS)]
    out = [f"  - kind: links\n    heading: {_q(f'{topic} ({block_number + 1})')}\n"]
    out.append("    items:\n" if items else "    items: []\n")
    for n in items:
        out.append(
            f"      - title: {_q(_title(n))}\n        text: {_q(_note(n))}\n"
            f"        url: {_q(_url(n))}\n"
        )
    if grouped:
        out.append("    groups:\n")
        for start in range(0, len(grouped), 8):
            out.append(f"      - heading: {_q(f'Group {block_number + 1}.{start // 8 + 1}')}\n")
            out.append("        items:\n")
            for n in grouped[start : start + 8]:
                out.append(f"          - title: {_q(_title(n))}\n            url: {_q(_url(n))}\n")
    if reading:
        out.append(
            f"  - kind: reading_list\n    heading: {_q(f'Reading ({block_number + 1})')}\n"
            "    items:\n"
        )
        for n in reading:
            out.append(
                f"      - title: {_q(_title(n))}\n        url: {_q(_url(n))}\n"
                f"        note: {_q(_note(n))}\n"
            )
    return out


def weekly_issue_yaml(links: int) -> str:
    """An issue.yaml with ``links`` link items, a few code blocks and a table."""
    parts = [
        f'subject: "This Week in Example: {links} links"\n',
        f'preheader: "{links} links, a soundness fix and the crates of the week."\n',
        'name: "Issue 640"\n',
        "date: 2026-04-15\n",
        "masthead:\n",
        '  eyebrow: "This Week in Example · Issue 640"\n',
        '  headline: "This Week in Example"\n',
        "intro: |\n",
        "  Hello and welcome to another issue! Want something mentioned? "
        "[Tell us](https://github.com/example-lang/this-week/pulls).\n",
        "sections:\n",
        "  - kind: markdown\n",
        '    heading: "Soundness fix of the week"\n',
        "    body: |\n",
        *("      " + line + "\n" if line else "\n" for line in _MARKDOWN.splitlines()),
    ]
    for block_number, first in enumerate(range(0, links, BLOCK)):
        parts += _block(first, min(BLOCK, links - first), block_number)
    parts.append(
        "  - kind: cta\n    heading: \"Get involved\"\n"
        "    text: \"Every issue is put together by volunteers: send us your links.\"\n"
        "    button:\n      label: \"Submit a link\"\n"
        "      url: \"https://github.com/example-lang/this-week/pulls\"\n"
    )
    return "".join(parts)


def write_weekly_project(root: Path, links: int, templates: Path | None = None) -> Path:
    """A project in ``root`` with the weekly as ``issues/weekly``; returns the issue folder.

    ``templates`` names a folder of theme overrides (the benchmark's "before" theme).
    """
    root.mkdir(parents=True, exist_ok=True)
    config = PROJECT_YAML
    if templates is not None:
        config += f"templates: {_q(str(templates))}\n"
    (root / "dispatch.yaml").write_text(config, encoding="utf-8")
    folder = root / "issues" / "weekly"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "issue.yaml").write_text(weekly_issue_yaml(links), encoding="utf-8")
    return folder
