"""What the webhooks need from the environment: each relay's secret, and the certificate cache.

A relay with no secret configured is not enabled: its route answers 404, so an
unconfigured provider is never an open door. Read once when the server starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

PROVIDERS = ("ses", "postmark", "mailgun", "sendgrid")


def _cache_dir(environ: Mapping[str, str]) -> str | None:
    """DISPATCH_CACHE_DIR (``off``: none), else $XDG_CACHE_HOME/dispatch, as the template cache."""
    base = environ.get("DISPATCH_CACHE_DIR") or os.path.join(
        environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "dispatch",
    )
    return None if base == "off" else base


@dataclass(frozen=True)
class WebhookSecrets:
    """Each relay's verification secret; ``repr`` never shows them."""

    ses_topic_arns: tuple[str, ...] = ()
    postmark_user: str | None = field(default=None, repr=False)
    postmark_password: str | None = field(default=None, repr=False)
    mailgun_signing_key: str | None = field(default=None, repr=False)
    sendgrid_public_key: str | None = field(default=None, repr=False)  # SPKI DER, base64
    cache_dir: str | None = None  # where SNS signing certificates are kept; None: memory only

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> WebhookSecrets:
        def value(name: str) -> str | None:
            return (environ.get(name) or "").strip() or None

        arns = tuple(a.strip() for a in (environ.get("DISPATCH_SES_TOPIC_ARNS") or "").split(","))
        return cls(
            ses_topic_arns=tuple(a for a in arns if a),
            postmark_user=value("DISPATCH_POSTMARK_WEBHOOK_USER"),
            postmark_password=value("DISPATCH_POSTMARK_WEBHOOK_PASSWORD"),
            mailgun_signing_key=value("DISPATCH_MAILGUN_SIGNING_KEY"),
            sendgrid_public_key=value("DISPATCH_SENDGRID_WEBHOOK_PUBLIC_KEY"),
            cache_dir=_cache_dir(environ),
        )

    def enabled(self, provider: str) -> bool:
        """Whether ``provider``'s events can be verified, so its route is open."""
        if provider == "ses":
            return bool(self.ses_topic_arns)
        if provider == "postmark":
            return bool(self.postmark_user and self.postmark_password)
        if provider == "mailgun":
            return bool(self.mailgun_signing_key)
        if provider == "sendgrid":
            return bool(self.sendgrid_public_key)
        return False
