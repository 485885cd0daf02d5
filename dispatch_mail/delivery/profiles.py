"""The SMTP profile a send goes through, and the command line's overrides of it, field by field.

A profile of dispatch.yaml carries everything about the relay: where it is, how
the connection is secured, whose credentials (the names of the variables or the
file they come from), our EHLO name, the timeouts and the pace. A command-line
value overrides one field of the chosen profile and leaves the rest as it is:
``--smtp-host`` alone still uses the profile's port and TLS mode.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dispatch_mail.delivery.smtp import SmtpSettings
from dispatch_mail.errors import UsageError
from dispatch_mail.project.loader import shown_path
from dispatch_mail.project.settings import Project, SmtpProfile

USER_ENV, PASSWORD_ENV = "DISPATCH_SMTP_USER", "DISPATCH_SMTP_PASSWORD"
DEFAULT_PORTS = {"implicit": 465, "starttls": 587, "none": 25}
DEFAULT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT = 30.0, 15.0


@dataclass(frozen=True)
class ProfileDefaults:
    """What an SMTP profile says about the send itself; the command line may override it."""

    concurrency: int | None = None
    rate: float | None = None


def choose_profile(project: Project, name: str | None) -> SmtpProfile | None:
    """The profile called ``name``, or 'default' when none is named (None if there is none).

    A named profile that does not exist is an error; a missing 'default' is not,
    as long as the command line says where the relay is.
    """
    if name is None:
        return project.smtp.get("default")
    if name not in project.smtp:
        known = ", ".join(project.smtp) or "none"
        raise UsageError(
            f"no SMTP profile {name!r} in dispatch.yaml (profiles: {known})", hint="smtp_host"
        )
    return project.smtp[name]


def smtp_settings(
    project: Project,
    profile: str | None = None,
    host: str | None = None,
    port: int | None = None,
    tls: str | None = None,
    insecure: bool = False,
    cafile: str | None = None,
    timeout: float | None = None,
    connect_timeout: float | None = None,
) -> tuple[SmtpSettings, ProfileDefaults]:
    """The relay from a profile of dispatch.yaml, each given value overriding its field.

    ``profile`` names the profile; without it, 'default' is the base when there
    is one. Returns the settings and the profile's own send defaults (concurrency, rate).
    """
    chosen = choose_profile(project, profile)
    if chosen is None and host is None:
        known = ", ".join(project.smtp) or "none"
        raise UsageError(
            f"no SMTP profile 'default' in dispatch.yaml (profiles: {known})", hint="smtp_host"
        )
    name = profile or "default"
    final_tls = tls or (chosen.tls if chosen else None) or "starttls"
    final_port = port or (chosen.port if chosen else None) or DEFAULT_PORTS[final_tls]
    username, password = credentials(project, name, chosen)
    if cafile is None and chosen is not None and chosen.cafile:
        cafile = str(_profile_file(project, name, "cafile", chosen.cafile))
    settings = SmtpSettings(
        host=host or (chosen.host if chosen else "localhost"),
        port=final_port,
        tls=final_tls,
        username=username,
        password=password,
        insecure=insecure,
        timeout=timeout or (chosen.timeout if chosen else DEFAULT_TIMEOUT),
        cafile=cafile,
        connect_timeout=connect_timeout
        or (chosen.connect_timeout if chosen else DEFAULT_CONNECT_TIMEOUT),
        ehlo_name=chosen.ehlo_name if chosen else None,
        pipelining=chosen.pipelining if chosen else True,
    )
    defaults = ProfileDefaults(chosen.concurrency, chosen.rate) if chosen else ProfileDefaults()
    return settings, defaults


def credentials(
    project: Project, name: str, profile: SmtpProfile | None
) -> tuple[str | None, str | None]:
    """(user, password) from the variables the profile names, the password else from its file.

    With no user name there is no login, and the password is not read.
    """
    user_env = profile.username_env if profile else USER_ENV
    password_env = profile.password_env if profile else PASSWORD_ENV
    username = os.environ.get(user_env) or None
    if username is None:
        return None, None
    password = os.environ.get(password_env) or None
    if password is None and profile is not None and profile.password_file:
        path = _profile_file(project, name, "password_file", profile.password_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
            raise UsageError(
                f"smtp.{name}.password_file: cannot read {shown_path(path)}: {why}"
            ) from None
        password = lines[0] if lines else ""
        if not password:
            raise UsageError(
                f"smtp.{name}.password_file: the first line of {shown_path(path)} is empty"
            )
    return username, password


def _profile_file(project: Project, name: str, key: str, value: str) -> Path:
    """A path of the profile, relative to dispatch.yaml; it must be a file (not its content)."""
    path = Path(value).expanduser()
    path = path if path.is_absolute() else project.root / path
    if not path.is_file():
        raise UsageError(f"smtp.{name}.{key}: {shown_path(path)} is not a file")
    return path
