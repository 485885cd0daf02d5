"""dispatch: assemble, check and send an email newsletter from files kept in git.

The package reads as its pipeline: ``project/`` (what the owner writes) → ``render/``
(MJML, HTML, plaintext) → ``mail/`` (MIME messages) → ``delivery/``, ``quality/``,
``publish/``, ``authoring/`` and ``browser/`` (what the commands do) → ``cli/``.

``from dispatch_mail import build_issue``: the names below are imported on first use,
so ``dispatch --version`` does not pay for Jinja2 and mjml.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from dispatch_mail.version import __version__

if TYPE_CHECKING:
    from dispatch_mail.publish.archive import build_archive
    from dispatch_mail.publish.build import BuildResult, build_all, build_issue
    from dispatch_mail.publish.export import export_issue
    from dispatch_mail.quality.checks import check_issue

_API = {
    "BuildResult": "dispatch_mail.publish.build",
    "build_issue": "dispatch_mail.publish.build",
    "build_all": "dispatch_mail.publish.build",
    "build_archive": "dispatch_mail.publish.archive",
    "check_issue": "dispatch_mail.quality.checks",
    "export_issue": "dispatch_mail.publish.export",
}
__all__ = [
    "BuildResult",
    "__version__",
    "build_all",
    "build_archive",
    "build_issue",
    "check_issue",
    "export_issue",
]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'dispatch_mail' has no attribute {name!r}")
