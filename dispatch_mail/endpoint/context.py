"""What every request of `dispatch serve` needs: the project, the store, the keys, the rules.

Made once when the server starts (``startup.open_endpoint``); the app, the unsubscribe routes
and the webhook routes all take it, so that none of them reads the environment or the
project file on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dispatch_mail.project.settings import Project
from dispatch_mail.suppression.base import SuppressionStore
from dispatch_mail.suppression.records import SoftBouncePolicy

if TYPE_CHECKING:
    from dispatch_mail.endpoint.webhooks.secrets import WebhookSecrets
    from dispatch_mail.mail.tokens import TokenKeys


@dataclass
class Endpoint:
    project: Project
    store: SuppressionStore
    keys: TokenKeys
    webhooks: WebhookSecrets
    policy: SoftBouncePolicy

    @classmethod
    def policy_of(cls, project: Project) -> SoftBouncePolicy:
        return SoftBouncePolicy(project.bounces.soft_limit, project.bounces.soft_window_days)
