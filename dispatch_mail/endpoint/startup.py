"""Making the ``Endpoint`` once, when the server starts: project, keys, store, webhook secrets.

The keys are read first and the store opened last, so that a missing secret is
reported without touching the database, and nothing is left open on an error.
"""

from __future__ import annotations

import os
from pathlib import Path

from dispatch_mail.endpoint.context import Endpoint
from dispatch_mail.project.loader import find_project_root, load_project
from dispatch_mail.project.settings import Project

PROJECT_ENV = "DISPATCH_PROJECT"


def project_from_environment(start: Path | None = None) -> Project:
    """The project of DISPATCH_PROJECT (a folder in it), else of ``start`` or the working folder."""
    folder = os.environ.get(PROJECT_ENV) or start or Path.cwd()
    return load_project(find_project_root(Path(folder)))


def open_endpoint(
    project: Project,
    *,
    secret_file: Path | None = None,
    previous_file: Path | None = None,
    database: str | None = None,
) -> Endpoint:
    """Everything a request needs; the secret is required (UsageError with its hint)."""
    from dispatch_mail.endpoint.webhooks.secrets import WebhookSecrets
    from dispatch_mail.mail.tokens import TokenKeys
    from dispatch_mail.suppression import open_store

    keys = TokenKeys.load(secret_file, previous_file=previous_file, required=True)
    assert keys is not None  # required=True raises instead
    webhooks = WebhookSecrets.from_environ()
    store = open_store(project, url=database)
    return Endpoint(project, store, keys, webhooks, Endpoint.policy_of(project))
