"""`dispatch export`: the built issue for other tools.

An .eml, an mbox of test messages, one HTML file, or a zip of them.

For an ESP's "import HTML", the unsubscribe link can carry the ESP's own merge
tag (e.g. Mailchimp's ``*|UNSUB|*``) instead of dispatch's URL.
"""

from __future__ import annotations

import io
import mailbox
import os
import secrets
import zipfile
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from dispatch_mail.errors import UsageError, WriteError
from dispatch_mail.mail.headers import make_message_id
from dispatch_mail.project.files import atomic_write
from dispatch_mail.project.paths import build_dir, shown_path
from dispatch_mail.publish.build import build_issue
from dispatch_mail.publish.outputs import check_folder_path
from dispatch_mail.render.context import web_unsubscribe_url

FORMATS = ("eml", "mbox", "html", "zip")


def export_issue(
    issue_dir: Path, fmt: str, out: Path | None = None, *, unsubscribe_tag: str | None = None
) -> Path:
    """Write the issue as ``fmt`` (one of FORMATS) to ``out``, else to build/<slug>/export.<fmt>."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
    result = build_issue(Path(issue_dir), write=False)
    project, issue, rendered = result.project, result.issue, result.rendered
    target = out or build_dir(project, issue.slug) / f"export.{fmt}"
    check_folder_path(target.parent, target)
    html = rendered.html
    if unsubscribe_tag:
        if any(c in unsubscribe_tag for c in '<>"\r\n'):
            raise UsageError(
                "the unsubscribe tag may not contain <, >, quotes or line breaks",
                hint="unsubscribe_tag",
            )
        html = html.replace(f'href="{web_unsubscribe_url(project)}"', f'href="{unsubscribe_tag}"')
    if fmt == "eml":
        atomic_write(target, result.eml)
    elif fmt == "html":
        atomic_write(target, html)
    elif fmt == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("index.html", html)
            archive.writestr("email.txt", rendered.text)
            archive.writestr("email.eml", result.eml)
            archive.writestr(
                "README.txt",
                f"{project.name}: {issue.subject}\n\n"
                "index.html  the email's HTML, CSS inlined (import this into your email service)\n"
                "email.txt   the plaintext part\n"
                "email.eml   the complete message (multipart/alternative)\n\n"
                "Images are linked by their https URLs, as in the email itself.\n",
            )
        atomic_write(target, buffer.getvalue())
    else:  # mbox of test messages, one per reviewer
        from dispatch_mail.delivery.audience import Recipient
        from dispatch_mail.delivery.campaign import prepare, test_recipients

        prepared = prepare(Path(issue_dir), test=True, secret_required=False)
        recipients = (
            test_recipients(project, [], True)
            if project.reviewers
            else [Recipient(project.sender.address, {})]
        )
        date = format_datetime(datetime.now(UTC))
        domain = project.sender.domain
        tmp = target.with_name(f".{target.name[:64]}.{secrets.token_hex(4)}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            box = mailbox.mbox(str(tmp), create=True)
            try:
                for n, recipient in enumerate(recipients):
                    message_id = make_message_id(issue.slug, "export", n, domain)
                    box.add(
                        mailbox.mboxMessage(
                            prepared.messages.render(
                                recipient.email, recipient.fields, message_id, date
                            )
                        )
                    )
                box.flush()
            finally:
                box.close()
            os.replace(tmp, target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            message = f"cannot write {shown_path(target)}: {exc.strerror or exc}"
            raise WriteError(message, target) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return target
