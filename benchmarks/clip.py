#!/usr/bin/env python3
"""Room under Gmail's clip: the HTML a link-heavy weekly costs, per link item.

    python benchmarks/clip.py                        # 200 links, the built-in theme
    python benchmarks/clip.py --before 4503814       # and a peer: the theme of that commit
    python benchmarks/clip.py --before DIR --json    # a peer theme folder; one JSON document

It generates an issue of This Week in Rust's shape (tests/helpers/weekly.py: link sections
with titled notes and title-only groups, titles with inline code, code blocks, a table)
with N/2 and N links in a temporary project, builds each with `dispatch build`, and reports
the raw HTML, the quoted-printable HTML part of the .eml as sent (what Gmail's 102 KB clip
and `dispatch check` count, against a 100 KB budget) and the marginal bytes per link item:
(size(N) − size(N/2)) / (N/2).

`--before` builds the same issues with a peer theme, given as a folder of templates or as
a git commit whose `dispatch_mail/render/theme/` is copied out with `git show`; the copy
goes into the project's `templates:` override folder, so both builds run the same code in
the same run. Nothing is written inside the repository.
"""

from __future__ import annotations

import argparse
import email
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from email.message import Message
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dispatch_mail.quality.budget import GMAIL_CLIP_BYTES, SIZE_WARNING_BYTES  # noqa: E402
from tests.helpers.weekly import write_weekly_project  # noqa: E402

THEME = "dispatch_mail/render/theme"


def export_theme(ref: str, into: Path) -> Path:
    """The theme folder of git commit ``ref``, written into ``into``."""
    names = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", ref, "--", THEME],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    for name in names:
        blob = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{ref}:{name}"], check=True, capture_output=True
        ).stdout
        target = into / Path(name).relative_to(THEME)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
    return into


def _html_part(eml: bytes) -> Message:
    for part in email.message_from_bytes(eml).walk():
        if part.get_content_type() == "text/html":
            return part
    raise SystemExit("the built .eml has no text/html part")


def build(links: int, workdir: Path, templates: Path | None) -> dict[str, Any]:
    """Build the weekly with ``links`` links; its HTML bytes and encoded HTML part bytes."""
    project = workdir / f"{'before' if templates else 'after'}-{links}"
    folder = write_weekly_project(project, links, templates)
    out = project / "out"
    env = dict(os.environ, DISPATCH_CACHE_DIR=str(workdir / "cache"))
    done = subprocess.run(
        [sys.executable, "-m", "dispatch_mail", "build", str(folder), "--out", str(out), "-q"],
        cwd=project, env=env, capture_output=True, text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"dispatch build failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    part = _html_part((out / "email.eml").read_bytes())
    payload = part.get_payload()
    assert isinstance(payload, str)
    return {
        "html_bytes": len((out / "email.html").read_bytes()),
        "encoded_html_bytes": len(payload.encode("ascii")),
        "transfer_encoding": str(part.get("Content-Transfer-Encoding", "")),
    }


def measure(links: int, workdir: Path, templates: Path | None) -> dict[str, Any]:
    small, large = build(links // 2, workdir, templates), build(links, workdir, templates)
    half = links // 2
    return {
        "links": links,
        "html_bytes": large["html_bytes"],
        "encoded_html_bytes": large["encoded_html_bytes"],
        "transfer_encoding": large["transfer_encoding"],
        "bytes_per_link": (large["html_bytes"] - small["html_bytes"]) / (links - half),
        "fixed_bytes": 2 * small["html_bytes"] - large["html_bytes"],
        "under_clip": large["encoded_html_bytes"] <= GMAIL_CLIP_BYTES,
        "under_budget": large["encoded_html_bytes"] <= SIZE_WARNING_BYTES,
    }


def table(rows: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| theme | bytes per link item | fixed part | HTML, {n} links "
        "| as sent ({enc}) | of the clip ({clip:,} B, as sent) |",
        "|---|---|---|---|---|---|",
    ]
    first = next(iter(rows.values()))
    lines[0] = lines[0].format(
        n=first["links"], clip=GMAIL_CLIP_BYTES, enc=first["transfer_encoding"]
    )
    for name, row in rows.items():
        html, sent = row["html_bytes"], row["encoded_html_bytes"]
        verdict = (
            "under the 100 KB budget" if row["under_budget"]
            else "under" if row["under_clip"] else "**clipped**"
        )
        lines.append(
            f"| {name} | {row['bytes_per_link']:.0f} | {row['fixed_bytes']:,} B "
            f"| {html:,} B ({html / 1024:.1f} KB) | {sent:,} B ({sent / 1024:.1f} KB) "
            f"| {100 * sent / GMAIL_CLIP_BYTES:.0f}%, {verdict} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--links", type=int, default=200, help="N (even); also built with N/2")
    parser.add_argument("--before", help="a peer theme: a templates folder or a git commit")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    args = parser.parse_args()
    if args.links < 2 or args.links % 2:
        parser.error("--links must be an even number ≥ 2")
    with tempfile.TemporaryDirectory(prefix="dispatch-clip-") as tmp:
        workdir = Path(tmp)
        rows: dict[str, dict[str, Any]] = {}
        if args.before:
            peer = Path(args.before)
            if peer.is_dir():
                peer = Path(shutil.copytree(peer, workdir / "peer-theme"))
            else:
                peer = export_theme(args.before, workdir / "peer-theme")
            rows[f"before ({args.before})"] = measure(args.links, workdir, peer)
        rows["built-in (this checkout)"] = measure(args.links, workdir, None)
    if args.json:
        print(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                          "rows": rows}, indent=2))
        return
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; `{' '.join(['python', *sys.argv])}`\n")
    print(table(rows))


if __name__ == "__main__":
    main()
