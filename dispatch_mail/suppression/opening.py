"""Which store a newsletter uses: DISPATCH_DATABASE_URL's PostgreSQL, else its SQLite file."""

from __future__ import annotations

import os

from dispatch_mail.errors import StoreError
from dispatch_mail.project.settings import Project
from dispatch_mail.suppression.base import SuppressionStore

DATABASE_URL_VARIABLE = "DISPATCH_DATABASE_URL"
POSTGRES_SCHEMES = ("postgresql", "postgres")


def open_store(project: Project, *, url: str | None = None) -> SuppressionStore:
    """The project's suppression store, opened and migrated forward (the caller closes it).

    ``url`` (else DISPATCH_DATABASE_URL) names a shared PostgreSQL database; without
    one, the SQLite file ``project.suppressions`` beside dispatch.yaml is used.
    """
    url = url or os.environ.get(DATABASE_URL_VARIABLE) or None
    if url is None:
        from dispatch_mail.suppression.sqlite import SqliteStore

        return SqliteStore(project.root / project.suppressions)
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in POSTGRES_SCHEMES:
        shown = f"'{scheme}:'" if scheme else "no scheme"
        raise StoreError(
            f"the suppression store's URL has {shown}; only postgresql:// (or postgres://) "
            "URLs are supported",
            hint=None,
        )
    from dispatch_mail.suppression.postgres import PostgresStore

    return PostgresStore(url)
