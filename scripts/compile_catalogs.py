#!/usr/bin/env python3
"""Compile the theme's message catalogs (dispatch_mail/render/catalogs/*.po → .mo) with Babel.

The .mo files are committed, so that a build reads them with the standard library's
gettext and never imports Babel's catalog code; tests/test_strings.py fails when a
.mo is out of date with its .po.

    python3 scripts/compile_catalogs.py
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

CATALOGS = Path(__file__).resolve().parent.parent / "dispatch_mail" / "render" / "catalogs"


def compiled(po: Path) -> bytes:
    """The .mo bytes of one .po file: deterministic, so a committed copy can be compared."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as source:
        catalog = read_po(source, locale=po.stem)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def main() -> int:
    for po in sorted(CATALOGS.glob("*.po")):
        target = po.with_suffix(".mo")
        data = compiled(po)
        if not target.exists() or target.read_bytes() != data:
            temporary = target.with_suffix(".mo.tmp")
            temporary.write_bytes(data)
            temporary.replace(target)
            print(f"wrote {target.relative_to(CATALOGS.parent.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
