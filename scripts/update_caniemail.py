"""Refresh dispatch_mail/quality/data/caniemail.json from the caniemail npm package
(data from caniemail.com).

Usage: python scripts/update_caniemail.py [path/to/caniemail.json]
Without a path it runs `npm pack caniemail` in a temporary folder. The shipped
file keeps only what `dispatch check` uses: for each CSS/HTML feature, the
latest tested support in the major clients' families, so the check runs offline.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

OUT = (
    Path(__file__).resolve().parent.parent / "dispatch_mail" / "quality" / "data" / "caniemail.json"
)
CLIENTS = {"gmail": "Gmail", "outlook": "Outlook", "apple-mail": "Apple Mail", "yahoo": "Yahoo"}


def latest(versions: dict[str, str]) -> str:
    """Support at the most recently tested version ('y', 'n', 'a' partial, 'u' unknown)."""
    if not versions:
        return "u"
    value = list(versions.values())[-1]  # caniemail lists versions oldest first
    return value.split()[0][0] if value else "u"


def main() -> int:
    if len(sys.argv) > 1:
        raw = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
        version = "local file"
    else:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                ["npm", "pack", "caniemail@2", "--silent"], cwd=tmp, check=True, capture_output=True
            )
            archive = next(Path(tmp).glob("caniemail-*.tgz"))
            version = archive.stem.removeprefix("caniemail-")
            with tarfile.open(archive) as tar:
                raw = json.load(tar.extractfile("package/data/caniemail.json"))  # type: ignore[arg-type]
    features = {}
    for item in raw["data"]:
        support = {}
        for family in CLIENTS:
            platforms = item["stats"].get(family, {})
            support[family] = {
                platform: latest(versions) for platform, versions in platforms.items()
            }
        features[item["slug"]] = {"title": item["title"], "url": item["url"], "support": support}
    data = {
        "source": "https://www.caniemail.com/ via the npm package caniemail " + version,
        "last_update_date": raw["last_update_date"],
        "clients": CLIENTS,
        "platform_names": raw["nicenames"]["platform"],
        "features": features,
    }
    OUT.write_text(
        json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True),
        encoding="utf-8",
    )
    print(f"wrote {OUT} ({len(features)} features, data of {raw['last_update_date']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
