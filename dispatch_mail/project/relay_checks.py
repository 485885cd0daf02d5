"""What dispatch.yaml's relay settings must be beyond their types: extra headers, EHLO names.

The schema checks that a header value is one line of text; these rules say
which header fields an owner may add at all (never one dispatch writes itself,
so List-Unsubscribe or From cannot be overridden) and what an EHLO name may be.
The loader reports each broken rule where it is written; the mail and delivery
layers check again, for a Project or SmtpSettings built in Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from dispatch_mail.project.settings import Project

# RFC 5322 3.6.8: ftext is printable US-ASCII but ':'; 76 leaves room for ": " in 78 columns
_FIELD_NAME = re.compile(r"[!-9;-~]{1,76}")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")  # C0 (CR and LF too) and C1, but tab
# the fields dispatch writes (or a relay adds): one of them twice would confuse every reader
RESERVED = frozenset(
    name.casefold()
    for name in (
        "From",
        "To",
        "Cc",
        "Bcc",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "DKIM-Signature",
        "Return-Path",
        "Received",
        "Reply-To",
        "Sender",
        "Feedback-ID",
        "Precedence",
    )
)
RESERVED_PREFIXES = ("content-", "list-", "x-dispatch-")
# RFC 1123 host names: labels of letters, digits and '-', or an address literal
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_ADDRESS_LITERAL = re.compile(r"\[(?:\d{1,3}(?:\.\d{1,3}){3}|IPv6:[0-9A-Fa-f:.]+)\]")


def header_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an extra header field of ours, or None."""
    if not _FIELD_NAME.fullmatch(name):
        return "is not a header field name (1 to 76 printable ASCII characters, no spaces or ':')"
    folded = name.casefold()
    if folded in RESERVED or folded.startswith(RESERVED_PREFIXES):
        return "is a header dispatch writes itself; it cannot be set or overridden"
    return None


def header_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be a header value, or None: CR, LF and controls could forge fields."""
    if "\r" in value or "\n" in value:
        return "must be one line: CR and LF are not allowed in a mail header"
    if _CONTROL.search(value):
        return "contains control characters"
    if not value.strip():
        return "must not be empty"
    return None


def ehlo_name_problem(name: str) -> str | None:
    """Why ``name`` is no plausible EHLO name (RFC 5321 4.1.4: a FQDN or an address literal)."""
    if any(c in name for c in "\r\n") or any(c.isspace() for c in name):
        return "must be one host name: no spaces, CR or LF"
    if _ADDRESS_LITERAL.fullmatch(name):
        return None
    labels = name.removesuffix(".").split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(x) for x in labels):
        return (
            f"{name!r} is not a fully qualified host name (such as 'mail.example.org'); "
            "relays refuse such an EHLO"
        )
    if labels[-1].isdigit():
        return f"{name!r} is not a host name; write an address as '[192.0.2.1]'"
    return None


def header_problems(headers: Mapping[str, str]) -> Iterator[tuple[str, bool, str]]:
    """(name, whether the value is at fault, problem) for each bad extra header."""
    seen: dict[str, str] = {}
    for name, value in headers.items():
        problem = header_name_problem(name)
        if problem is None and name.casefold() in seen:
            problem = f"is set twice (also as {seen[name.casefold()]!r})"
        seen.setdefault(name.casefold(), name)
        if problem is not None:
            yield name, False, problem
            continue
        problem = header_value_problem(value)
        if problem is not None:
            yield name, True, problem


def relay_problems(project: Project) -> Iterator[tuple[tuple[str, ...], bool, str]]:
    """(key path, whether the value is at fault, problem) for every bad relay setting."""
    for name, value_at_fault, problem in header_problems(project.headers):
        yield ("headers", name), value_at_fault, problem
    for profile_name, profile in project.smtp.items():
        where = ("smtp", profile_name)
        for name, value_at_fault, problem in header_problems(profile.headers):
            yield (*where, "headers", name), value_at_fault, problem
        ehlo_problem = ehlo_name_problem(profile.ehlo_name) if profile.ehlo_name else None
        if ehlo_problem is not None:
            yield (*where, "ehlo_name"), True, ehlo_problem
