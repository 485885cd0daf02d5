"""The endpoint's pages: small, accessible, self-contained HTML, every value escaped.

No page loads anything (no script, font, image or stylesheet from elsewhere), so
the Content-Security-Policy forbids everything but the inline style and forms
posted back to us. Pages are readable from 320 px wide; the button is a real
<button> in a POST form, which keyboard and screen-reader users can reach.
"""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse, PlainTextResponse, Response

from dispatch_mail.project.settings import Project

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

_STYLE = """
*{box-sizing:border-box}
body{margin:0;padding:1rem;background:#f3f4f6;color:#1f2328;
font:1rem/1.5 -apple-system,'Segoe UI',Helvetica,Arial,sans-serif}
main{max-width:32rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:.5rem;
overflow-wrap:anywhere}
h1{font-size:1.4rem;line-height:1.25;margin:0 0 1rem}
p{margin:0 0 1rem}
button{font:inherit;font-weight:600;padding:.7rem 1.4rem;border:0;border-radius:.35rem;
background:#1a5fb4;color:#fff;cursor:pointer;min-height:44px}
button:focus-visible{outline:3px solid #0b2a4a;outline-offset:2px}
button.quiet{background:#fff;color:#1a5fb4;border:2px solid #1a5fb4}
.muted{color:#57606a;font-size:.9rem}
"""


def mask_address(email: str) -> str:
    """``a***@example.com``: enough for its owner to recognise, little for anyone looking on."""
    local, at, domain = email.rpartition("@")
    if not at:
        local, domain = email, ""
    shown = local[:1] + "*" * min(max(len(local) - 1, 3), 8)
    return f"{shown}@{domain}" if at else shown


def page(project: Project, title: str, body: str, *, status: int = 200) -> Response:
    """A whole page; ``body`` is HTML made by this module's callers from escaped values."""
    html = (
        "<!doctype html>\n"
        f'<html lang="{escape(project.lang)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{escape(title)} · {escape(project.name)}</title>\n"
        f"<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def text(body: str, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A plain-text answer (one-click, health, errors of methods and sizes)."""
    return PlainTextResponse(
        body + "\n", status_code=status, headers=SECURITY_HEADERS | (headers or {})
    )


def _button(action: str, label: str, *, quiet: bool = False) -> str:
    kind = ' class="quiet"' if quiet else ""
    return (
        '<form method="post">'
        f'<input type="hidden" name="action" value="{escape(action)}">'
        f'<button type="submit"{kind}>{escape(label)}</button></form>'
    )


def _about_list(project: Project, list_name: str) -> str:
    entry = project.lists.get(list_name)
    if entry is not None and entry.description:
        return f'<p class="muted">{escape(entry.description)}</p>'
    return ""


def confirm(project: Project, list_name: str, email: str) -> Response:
    """The GET page: it asks, and changes nothing (link scanners fetch every URL)."""
    name = escape(project.name)
    body = (
        f"<h1>Unsubscribe from {name}?</h1>\n"
        f"<p>No more emails from <strong>{name}</strong> will be sent to "
        f"<strong>{escape(mask_address(email))}</strong>.</p>\n"
        f"{_about_list(project, list_name)}\n"
        f"{_button('unsubscribe', 'Unsubscribe')}"
    )
    return page(project, "Unsubscribe", body)


def unsubscribed(project: Project, list_name: str, email: str) -> Response:
    name = escape(project.name)
    body = (
        f"<h1>You are unsubscribed</h1>\n"
        f"<p><strong>{escape(mask_address(email))}</strong> will get no more emails from "
        f"<strong>{name}</strong>.</p>\n"
        f"{_about_list(project, list_name)}\n"
        "<p>Unsubscribed by mistake?</p>\n"
        f"{_button('resubscribe', 'Resubscribe', quiet=True)}"
    )
    return page(project, "Unsubscribed", body)


def resubscribed(project: Project, list_name: str, email: str) -> Response:
    name = escape(project.name)
    body = (
        f"<h1>You are subscribed again</h1>\n"
        f"<p><strong>{escape(mask_address(email))}</strong> will get <strong>{name}</strong> "
        "again, from the next issue on.</p>\n"
        f"{_about_list(project, list_name)}\n"
        f"{_button('unsubscribe', 'Unsubscribe', quiet=True)}"
    )
    return page(project, "Subscribed again", body)


def invalid_link(project: Project) -> Response:
    body = (
        "<h1>This unsubscribe link does not work</h1>\n"
        "<p>It may have been cut short or changed on its way here. Nothing was changed.</p>\n"
        f"{_other_ways(project)}"
    )
    return page(project, "Link not valid", body, status=400)


def expired_link(project: Project) -> Response:
    body = (
        "<h1>This unsubscribe link has expired</h1>\n"
        "<p>It is older than its newsletter lets a link work. Nothing was changed.</p>\n"
        f"{_other_ways(project)}"
    )
    return page(project, "Link expired", body, status=400)


def bad_request(project: Project) -> Response:
    body = (
        "<h1>This request was not understood</h1>\n"
        "<p>Nothing was changed. Open the link from the email again to unsubscribe.</p>"
    )
    return page(project, "Not understood", body, status=400)


def unavailable(project: Project) -> Response:
    body = (
        "<h1>Please try again in a few minutes</h1>\n"
        "<p>We could not record your request just now, and nothing was changed.</p>\n"
        f"{_other_ways(project)}"
    )
    return page(project, "Try again", body, status=503)


def _other_ways(project: Project) -> str:
    footer = project.footer
    if footer.unsubscribe_mailto:
        address = escape(footer.unsubscribe_mailto)
        return (
            "<p>To leave the list, use the unsubscribe link of a recent issue, or write to "
            f'<a href="mailto:{address}?subject=unsubscribe">{address}</a>.</p>'
        )
    sender = escape(project.sender.reply_to or project.sender.address)
    return (
        "<p>To leave the list, use the unsubscribe link of a recent issue, or write to "
        f'<a href="mailto:{sender}">{sender}</a>.</p>'
    )
