"""The newsletter's project file, ``dispatch.yaml``: who sends, how it looks, where it goes.

Validated exactly like manifests (same loader, same error format). Secrets
never live here: SMTP credentials and the unsubscribe-token secret come from
the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from dispatch_mail.project.issue import (
    Action,
    Color,
    EmailAddress,
    HeaderText,
    ImageUrl,
    Text,
    Url,
    Utm,
    doc,
)
from dispatch_mail.project.relays import Dkim as Dkim
from dispatch_mail.project.relays import DkimKey as DkimKey
from dispatch_mail.project.relays import FeedbackId as FeedbackId
from dispatch_mail.project.relays import SmtpProfile as SmtpProfile

PROJECT_FILE = "dispatch.yaml"
# CLDR date fields (era, year, quarter, month, week, day, weekday): a pattern of other letters
# (hours, fractions of a second) cannot be written for a date
_DATE_PATTERN_LETTERS = set("GyYuUrQqMLlwWdDFgEec")


def date_format_problem(text: str) -> str | None:
    """Why ``text`` is neither a named date format nor a CLDR date pattern, or None."""
    if text in ("month", "day", "weekday"):
        return None
    unquoted = "".join(part for n, part in enumerate(text.split("'")) if n % 2 == 0)
    letters = {ch for ch in unquoted if ch.isascii() and ch.isalpha()}
    wrong = sorted(letters - _DATE_PATTERN_LETTERS)
    if not letters or wrong:
        return (
            f"{text!r} is not a date format: use month, day, weekday, or a CLDR date pattern "
            "such as 'd MMMM y' (letters in quotes are text)"
        )
    return None


class DateFormat(str):
    """'month', 'day', 'weekday' or a CLDR date pattern."""

    KIND_NAME = "date format"
    problem_in = staticmethod(date_format_problem)


@dataclass(frozen=True, kw_only=True)
class Sender:
    """Who the newsletter is from."""

    name: HeaderText = doc("The From display name.", max_length=100)
    address: EmailAddress = doc("The From address; its domain must pass SPF/DKIM/DMARC.")
    reply_to: EmailAddress | None = doc("Where replies go.", None)

    @property
    def domain(self) -> str:
        """The From domain: List-Id, Message-IDs and DMARC alignment all derive from it."""
        return self.address.rsplit("@", 1)[1]


@dataclass(frozen=True, kw_only=True)
class Logo:
    """The newsletter's logo, at the top of the masthead."""

    url: ImageUrl = doc("https URL of the logo.")
    alt: Text = doc("The logo's alt text (usually the newsletter's name).", max_length=200)
    width: int = doc("Display width in CSS pixels.", 160, min=16, max=600)


@dataclass(frozen=True, kw_only=True)
class Colors:
    """The theme's colours; each pair of text and background must reach WCAG AA contrast."""

    primary: Color = doc("Buttons, links and kicker labels.", "#1a5fb4")
    text: Color = doc("Body text.", "#1f2328")
    muted: Color = doc("Secondary text (meta lines, attributions).", "#57606a")
    background: Color = doc("Behind the email.", "#f3f4f6")
    surface: Color = doc("The email's cards.", "#ffffff")
    accent: Color = doc("The masthead's band.", "#0b2a4a")
    on_accent: Color = doc("Text on the masthead's band.", "#ffffff")
    button_text: Color = doc("Text on buttons.", "#ffffff")
    dark_background: Color = doc("Behind the email in dark mode.", "#0d1117")
    dark_surface: Color = doc("Cards in dark mode.", "#161b22")
    dark_text: Color = doc("Body text in dark mode.", "#e6edf3")
    dark_muted: Color = doc("Secondary text in dark mode.", "#9da7b3")
    dark_primary: Color = doc("Links in dark mode.", "#79b8ff")


@dataclass(frozen=True, kw_only=True)
class Fonts:
    """CSS font stacks; nothing is downloaded, so each should end in a generic family."""

    heading: Text = doc(
        "CSS font stack for headings.", "Georgia, 'Times New Roman', serif", max_length=200
    )
    body: Text = doc(
        "CSS font stack for body text.",
        "-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif",
        max_length=200,
    )


@dataclass(frozen=True, kw_only=True)
class Brand:
    """How every issue looks: logo, colours, fonts."""

    logo: Logo | None = doc("The logo shown in the masthead.", None)
    colors: Colors = doc("The theme's colours.", Colors())
    fonts: Fonts = doc("The theme's fonts (web-safe stacks: no font is downloaded).", Fonts())


@dataclass(frozen=True, kw_only=True)
class Footer:
    """What every issue ends with; CAN-SPAM asks for the postal address and an opt-out."""

    organisation: Text = doc("Who publishes the newsletter.", max_length=200)
    postal_address: Text = doc("A valid postal address (required by CAN-SPAM).", max_length=300)
    unsubscribe_url: Url = doc(
        "Unsubscribe URL template; '{token}' is replaced by each recipient's signed token. "
        "In the web version and built files it is shown without a token.",
    )
    unsubscribe_mailto: EmailAddress | None = doc(
        "An address that unsubscribes whoever writes to it; "
        "offered in List-Unsubscribe after the https URL.",
        None,
    )
    preferences_url: Url | None = doc("Where subscribers manage their preferences.", None)
    text: Text | None = doc(
        "A line such as 'You receive this because you subscribed at dpdk.org'.",
        None,
        max_length=400,
    )
    links: list[Action] = doc(
        "Links shown in the footer (website, social, archive).", [], max_items=12
    )


@dataclass(frozen=True, kw_only=True)
class SubscriberList:
    """One list of recipients: a CSV file the owner keeps (outside git if it holds addresses)."""

    csv: Text = doc(
        "Path of the recipients CSV (an 'email' column, plus merge fields), "
        "relative to dispatch.yaml."
    )
    description: Text | None = doc("What this list is.", None, max_length=200)
    suppression: Text | None = doc(
        "Path of a CSV of addresses never to send to (unsubscribed, bounced).", None
    )


@dataclass(frozen=True, kw_only=True)
class Bounces:
    """How return mail counts: a hard bounce suppresses at once, soft ones only when they repeat."""

    soft_limit: int = doc(
        "Soft bounces (4.x.x, mailbox full, …) that suppress an address when they fall "
        "within soft_window_days.",
        3,
        min=1,
        max=100,
    )
    soft_window_days: int = doc("The window in which soft bounces are counted.", 30, min=1, max=365)


@dataclass(frozen=True, kw_only=True)
class Deferrals:
    """A temporary refusal (4xx) that outlasts a run's attempts is deferred, never lost.

    Like an MTA's queue: it is tried again when due, on the next send of the issue,
    until its lifetime ends; only then is it failed.
    """

    lifetime_hours: float = doc(
        "How long a deferred recipient is tried before it fails (Postfix's default is 5 days).",
        120,
        min=0.1,
        max=24 * 30,
    )
    retry_minutes: float = doc(
        "The wait before a deferred recipient is first due; it doubles with each deferral, "
        "up to 4 hours.",
        15,
        min=0.1,
        max=24 * 60,
    )


@dataclass(frozen=True, kw_only=True)
class Unsubscribe:
    """The unsubscribe links and the endpoint that answers them (`dispatch serve`)."""

    token_days: int = doc(
        "How long an unsubscribe link keeps working, in days, whether it was made with the "
        "current secret or a previous one (CAN-SPAM asks for at least 30).",
        400,
        min=30,
        max=3650,
    )
    webhook_path: Text = doc(
        "Where `dispatch serve` takes the relays' bounce and complaint events: "
        "<webhook_path>/ses, /postmark, /mailgun, /sendgrid.",
        "/webhooks",
        max_length=200,
    )


@dataclass(frozen=True, kw_only=True)
class Reviewer:
    """Someone who reads test sends; a plain address is the same as `{email: ADDRESS}`."""

    SHORTHAND: ClassVar[str] = "email"  # the field a plain value sets (project/schema.py)
    email: EmailAddress = doc("Their address.")
    name: HeaderText | None = doc(
        "Their name: test copies greet them with it, as a list member's copy would.",
        None,
        max_length=100,
    )

    def __str__(self) -> str:
        return self.email


@dataclass(frozen=True, kw_only=True)
class Project:
    """The newsletter: the settings every issue shares."""

    name: Text = doc("The newsletter's name.", max_length=120)
    sender: Sender = doc("Who it is from.")
    footer: Footer = doc("The footer of every issue.")
    base_url: Url | None = doc(
        "Where the web archive is published; an issue's web version is '<base_url><slug>/'.", None
    )
    lang: Text = doc(
        "Default language tag (BCP 47): the theme's words, the date's format and the text "
        "direction follow it. Built-in: en, fr, de, es, pt, ja, zh, ar; others fall back to "
        "English words with their own dates.",
        "en",
        max_length=20,
    )
    date_format: DateFormat = doc(
        "The masthead's date: 'month' (April 2026), 'day' (April 1, 2026: for a weekly), "
        "'weekday' (Wednesday, April 1, 2026), or a CLDR pattern such as 'd MMMM y'; "
        "written in the issue's language.",
        "month",
        max_length=60,
    )
    strings: dict[str, Text] = doc(
        "The theme's own words, replaced: e.g. `stories: \"{count} owned stories\"` or "
        "`view_in_browser: \"Read this online\"`. The keys are listed under Theme words in "
        "docs/templates.md.",
        {},
    )
    brand: Brand = doc("Logo, colours and fonts.", Brand())
    utm: Utm = doc("Default UTM parameters for outbound links.", Utm())
    templates: Text = doc(
        "The newsletter's own template folder, searched before the built-in theme.", "templates"
    )
    issues: Text = doc("The folder that holds one sub-folder per issue.", "issues")
    subject_prefix: Text | None = doc(
        "Prefix for test sends' subjects, e.g. '[TEST]'.", None, max_length=40
    )
    reviewers: list[Reviewer] = doc(
        "Who gets test sends (`dispatch send --test`): an address, or `{email, name}` so that "
        "the copy greets them by name.",
        [],
        max_items=100,
    )
    lists: dict[str, SubscriberList] = doc("Subscriber lists by name.", {})
    smtp: dict[str, SmtpProfile] = doc(
        "SMTP profiles by name; 'default' is used unless another is named.", {}
    )
    dkim: Dkim | None = doc(
        "Sign messages with DKIM (List-Unsubscribe and List-Unsubscribe-Post included).", None
    )
    headers: dict[str, HeaderText] = doc(
        "Extra header fields on every message (e.g. X-Campaign); our own fields "
        "(From, List-*, Message-ID, …) cannot be set here.",
        {},
    )
    feedback_id: FeedbackId | None = doc("Add Gmail's Feedback-ID header.", None)
    precedence_bulk: bool = doc(
        "Add 'Precedence: bulk' (some auto-responders stay quiet for it).", False
    )
    return_path: Text | None = doc(
        "The envelope sender (MAIL FROM), where bounces go; default: the From address. "
        "'{token}' in it makes it VERP, e.g. 'bounces+{token}@example.org': "
        "each bounce then names its recipient and issue exactly.",
        None,
        max_length=254,
    )
    suppressions: Text = doc(
        "The suppression store's SQLite file, relative to dispatch.yaml. "
        "DISPATCH_DATABASE_URL=postgresql://… uses a shared PostgreSQL database instead.",
        ".dispatch/suppressions.sqlite",
    )
    bounces: Bounces = doc("How bounces count.", Bounces())
    deferrals: Deferrals = doc("How temporary refusals are retried.", Deferrals())
    unsubscribe: Unsubscribe = doc("Unsubscribe links and their endpoint.", Unsubscribe())
    # filled by the loader
    root: Path = Path(".")

    def web_url(self, slug: str) -> str | None:
        """The issue's page in the web archive; the slug is a folder name, so it is %-encoded."""
        if not self.base_url:
            return None
        from urllib.parse import quote

        return f"{self.base_url.rstrip('/')}/{quote(slug, safe='')}/"

    @property
    def archive_url(self) -> str | None:
        return f"{self.base_url.rstrip('/')}/" if self.base_url else None
