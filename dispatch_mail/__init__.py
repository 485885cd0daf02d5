"""dispatch: assemble, check and send an email newsletter from files kept in git.

The pipeline reads from the file layout: manifest.py/schema.py (YAML → model),
render/ (model → MJML → HTML, and → plaintext), message.py (→ MIME), and the
commands on top (build.py, …). ``from dispatch_mail import build_issue``.
"""

from __future__ import annotations

__version__ = "0.1.0"

_API = ("build_issue", "build_all", "build_archive", "check_issue", "export_issue")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    # Lazy: `dispatch --version` must not pay for Jinja2 and mjml.
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(name)
