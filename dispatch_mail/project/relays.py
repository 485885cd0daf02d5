"""The relay settings of dispatch.yaml: SMTP profiles, Gmail's Feedback-ID, DKIM keys.

Kept apart from ``settings.py`` (which re-exports them) because they are what an
operator configures for a relay, and only sending reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dispatch_mail.project.issue import HeaderText, Text, doc


@dataclass(frozen=True, kw_only=True)
class SmtpProfile:
    """Where the real send goes, and everything the relay expects of us.

    Credentials never live here: ``username_env``/``password_env`` name the environment
    variables they come from (DISPATCH_SMTP_USER / DISPATCH_SMTP_PASSWORD unless a
    profile names others), or ``password_file`` a file the owner keeps outside git.
    """

    host: Text = doc("The relay's host name.", max_length=253)
    port: int | None = doc(
        "The relay's port; default: 587 for starttls, 465 for implicit, 25 for none.",
        None,
        min=1,
        max=65535,
    )
    tls: Literal["starttls", "implicit", "none"] = doc(
        "How the connection is encrypted.", "starttls"
    )
    cafile: Text | None = doc(
        "A PEM bundle of the CAs to trust for this relay's certificate (a private CA), "
        "relative to dispatch.yaml; default: the system's store (or SSL_CERT_FILE).",
        None,
    )
    username_env: Text = doc(
        "The environment variable that holds the SMTP user name.",
        "DISPATCH_SMTP_USER",
        max_length=100,
    )
    password_env: Text = doc(
        "The environment variable that holds the SMTP password.",
        "DISPATCH_SMTP_PASSWORD",
        max_length=100,
    )
    password_file: Text | None = doc(
        "A file holding the SMTP password (its first line), relative to dispatch.yaml; "
        "used when the password variable is not set. Never commit it.",
        None,
    )
    ehlo_name: Text | None = doc(
        "The fully qualified name we give in EHLO; default: this machine's FQDN. "
        "Relays that insist on a resolvable HELO name need it.",
        None,
        max_length=253,
    )
    return_path: Text | None = doc(
        "The envelope sender (MAIL FROM) for sends through this profile; overrides the "
        "project's return_path. '{token}' in it makes it VERP.",
        None,
        max_length=254,
    )
    pipelining: bool = doc(
        "Use ESMTP PIPELINING and CHUNKING when the relay offers them (fewer round trips); "
        "false speaks one command at a time, for a relay whose pipelining is broken.",
        True,
    )
    timeout: float = doc("Seconds each SMTP command may take.", 30, min=1, max=600)
    connect_timeout: float = doc(
        "Seconds to reach the relay and hear its greeting.", 15, min=1, max=600
    )
    concurrency: int = doc("Connections used at once.", 4, min=1, max=64)
    rate: float | None = doc(
        "Messages per second at most (none: unlimited).", None, min=0.001, max=100000
    )
    headers: dict[str, HeaderText] = doc(
        "Extra header fields on every message sent through this profile (an ESP's "
        "configuration-set or tag header); they add to the project's headers.",
        {},
    )


@dataclass(frozen=True, kw_only=True)
class FeedbackId:
    """Gmail's Feedback-ID header, ``campaign:list:kind:sender_id``: its spam reports per part."""

    sender_id: Text = doc(
        "Your sender id, the last part (constant for the newsletter).", max_length=60
    )
    campaign: bool = doc("Include the issue's slug as the campaign part.", True)
    list: bool = doc("Include the list's name.", True)
    kind: Text | None = doc(
        "The mail type part, e.g. 'newsletter'.", "newsletter", max_length=60
    )


@dataclass(frozen=True, kw_only=True)
class DkimKey:
    """One more key that signs every message, e.g. the new selector during a rotation."""

    selector: Text = doc("The selector (s=).", max_length=63)
    key_file: Text = doc("Path of the PEM private key, relative to dispatch.yaml.")
    domain: Text | None = doc(
        "The signing domain (d=); default: the main key's domain.", None, max_length=253
    )


@dataclass(frozen=True, kw_only=True)
class Dkim:
    """DKIM signing by dispatch itself (most relays sign for you; use this when yours does not)."""

    domain: Text = doc(
        "The signing domain (d=); it must align with the From domain for DMARC.", max_length=253
    )
    selector: Text = doc(
        "The selector (s=): the key is published at <selector>._domainkey.<domain>.", max_length=63
    )
    key_file: Text | None = doc(
        "Path of the PEM private key; DISPATCH_DKIM_KEY_FILE overrides it. Never commit the key.",
        None,
    )
    canonicalization: Literal["relaxed/relaxed", "relaxed/simple", "simple/simple"] = doc(
        "Header/body canonicalization (c=); relaxed survives the small rewrites of relays.",
        "relaxed/relaxed",
    )
    oversign: bool = doc(
        "Sign From, Subject, To, Date, Message-ID and the List-Unsubscribe fields once more "
        "than they occur, so that a copy of one prepended in transit breaks the signature.",
        True,
    )
    rotation: list[DkimKey] = doc(
        "Keys that sign beside the main one (several DKIM-Signature fields): publish the new "
        "selector, add it here, make it the main key, then drop the old.",
        [],
        max_items=4,
    )
