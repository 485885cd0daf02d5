"""Which links a newsletter may carry, and how outbound links get their UTM tags."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

ALLOWED_SCHEMES = ("http", "https", "mailto")
MAX_URL_LENGTH = 2048


def url_problem(url: str, *, https_only: bool = False) -> str | None:
    """Return why ``url`` may not appear in an email, or None when it may."""
    if not url:
        return "empty URL"
    if len(url) > MAX_URL_LENGTH:
        return f"URL is {len(url)} characters long (at most {MAX_URL_LENGTH})"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "URL contains spaces or control characters"
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if not scheme or not scheme.isascii() or not scheme.replace("+", "").isalnum():
        return f"{url!r} is not an absolute URL (use https://…)"
    allowed = ("https",) if https_only else ALLOWED_SCHEMES
    if scheme not in allowed:
        kinds = "https" if https_only else "http, https and mailto"
        return f"'{scheme}:' links are not allowed (only {kinds})"
    if scheme == "mailto":
        return None if "@" in url else f"{url!r} has no address"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises for a port that is not a number from 0 to 65535)
    except ValueError as exc:  # e.g. "Invalid IPv6 URL" for an unclosed '['
        return f"{url!r} is not a valid URL ({exc})"
    if not parts.netloc or not parts.hostname:
        return f"{url!r} has no host"
    return None


def add_utm(url: str, params: dict[str, str]) -> str:
    """Append UTM parameters, keeping the query and fragment; never doubled, never on mailto.

    Parameters the link already sets win: an owner who hand-tagged a link meant it.
    """
    if not params or not url.lower().startswith(("http://", "https://")):
        return url
    parts = urlsplit(url)
    existing = parse_qsl(parts.query, keep_blank_values=True)
    present = {k.lower() for k, _ in existing}
    extra = [(k, v) for k, v in params.items() if k.lower() not in present]
    if not extra:
        return url
    query = parts.query + ("&" if parts.query else "") + urlencode(extra)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
