"""The CSS and JavaScript the browser modules inline, kept as files in ``assets/``.

As files they can be read, linted and diffed as what they are; the pages still
inline them, so nothing a page shows is fetched from anywhere.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def asset_text(name: str) -> str:
    """The text of ``assets/<name>``, read once per process."""
    return files("dispatch_mail.browser").joinpath("assets", name).read_text(encoding="utf-8")
