"""`dispatch check --dns`: will the owner's DNS pass Gmail's and Yahoo's bulk-sender rules?

For the From domain and each envelope domain (MAIL FROM) it looks up SPF, each DKIM selector's
key (compared with the configured private key) and DMARC (dns_checks.py), judges alignment as
DMARC does (RFC 7489 3.1), and ends with one verdict, ``dns.bulk-rules``. What DNS cannot show
(which addresses the relay sends from, whether a relay signs for you) is never claimed.
"""

from __future__ import annotations

from pathlib import Path

from dispatch_mail.errors import ContentError
from dispatch_mail.mail.dkim_keys import KeyFile, key_files
from dispatch_mail.project.loader import find_project_root, load_project
from dispatch_mail.project.paths import shown_path
from dispatch_mail.project.settings import PROJECT_FILE, Project
from dispatch_mail.quality.dns_checks import (
    Outcome,
    check_dkim_key,
    check_spf,
    envelope_domains,
    find_dmarc,
)
from dispatch_mail.quality.dns_lookup import TxtLookup, organizational_domain
from dispatch_mail.quality.dns_records import DmarcRecord
from dispatch_mail.quality.findings import CheckReport, Finding, Level

VERDICT = "Gmail/Yahoo bulk-sender rules"


def aligned(domain: str, from_domain: str, mode: str) -> bool:
    """RFC 7489 3.1: strict is the same name; relaxed, the same organizational domain."""
    domain, from_domain = domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    if mode == "s":
        return domain == from_domain
    return organizational_domain(domain) == organizational_domain(from_domain)


def check_dns(project: Project, lookup: TxtLookup) -> list[Finding]:
    """Every DNS finding for the project's From and envelope domains, then the verdict."""
    out = Outcome()
    from_domain = project.sender.domain.lower().rstrip(".")
    envelopes = envelope_domains(project)
    spf = {domain: check_spf(lookup, domain, fields, out) for domain, fields in envelopes.items()}
    keys = key_files(project)
    if not keys:
        out.add(
            "warning",
            "dns.dkim-not-configured",
            "dispatch does not sign (no dkim: in dispatch.yaml), so no DKIM key is checked; "
            "if your relay signs, check its selector with your provider",
            PROJECT_FILE,
        )
        out.unsure.append("DKIM is left to the relay")
    dkim = {key: check_dkim_key(lookup, key, out) for key in keys}
    dmarc = find_dmarc(lookup, from_domain, out)
    check_alignment(out, from_domain, envelopes, spf, dkim, dmarc)
    _verdict(out, from_domain, envelopes, [key for key, ok in dkim.items() if ok], dmarc)
    return out.findings


def check_alignment(
    out: Outcome,
    from_domain: str,
    envelopes: dict[str, list[str]],
    spf: dict[str, bool | None],
    dkim: dict[KeyFile, bool | None],
    dmarc: DmarcRecord | None,
) -> None:
    """DMARC passes when SPF or DKIM passes for a domain aligned with From (RFC 7489 4.2).

    Checked for each envelope domain a send may use; a domain that is not aligned is a note
    while the other mechanism covers it, and ``dns.not-aligned`` is an error when neither does.
    """
    spf_mode, dkim_mode = (dmarc.spf_mode, dmarc.dkim_mode) if dmarc else ("r", "r")
    dkim_aligned = {key: aligned(key.domain, from_domain, dkim_mode) for key in dkim}
    dkim_covers = any(ok and dkim_aligned[key] for key, ok in dkim.items())
    dkim_maybe = not dkim or any(ok is None and dkim_aligned[key] for key, ok in dkim.items())
    explained = set()
    for domain, fields in envelopes.items():
        spf_aligned = aligned(domain, from_domain, spf_mode)
        if (spf[domain] and spf_aligned) or dkim_covers:
            continue
        if (spf[domain] is None and spf_aligned) or dkim_maybe:
            if not dkim and not spf_aligned:
                out.unsure.append(f"DMARC for MAIL FROM @{domain} rests on the relay's DKIM")
            continue
        why = [
            f"{domain} has no usable SPF record"
            if spf_aligned
            else f"the envelope domain {domain} ({', '.join(fields)}) is not aligned",
            *(
                f"DKIM d={key.domain} ({key.field}.domain) is not aligned"
                if not dkim_aligned[key]
                else f"the DKIM key at {key.record_name} does not verify"
                for key in dkim
            ),
        ]
        out.add(
            "error",
            "dns.not-aligned",
            f"DMARC fails for mail sent with MAIL FROM @{domain}: " + "; ".join(why),
            f"sender.address: {from_domain}",
        )
        out.fails.append(
            f"neither SPF nor DKIM is aligned with {from_domain} (MAIL FROM @{domain})"
        )
        explained.add(domain)
        explained.update(key.field for key in dkim)
    how = (
        "strict: the same domain" if spf_mode == "s" else "relaxed: the same organizational domain"
    )
    for domain, fields in envelopes.items():
        if domain not in explained and not aligned(domain, from_domain, spf_mode):
            _note_unaligned(
                out, f"the envelope domain {domain} ({', '.join(fields)})", from_domain, how
            )
    how = (
        "strict: the same domain" if dkim_mode == "s" else "relaxed: the same organizational domain"
    )
    for key in dkim:
        if key.field not in explained and not dkim_aligned[key]:
            _note_unaligned(out, f"DKIM d={key.domain} ({key.field}.domain)", from_domain, how)


def _note_unaligned(out: Outcome, what: str, from_domain: str, how: str) -> None:
    out.add(
        "note",
        "dns.not-aligned",
        f"{what} is not aligned with the From domain {from_domain} ({how}); "
        "DMARC rests on the other mechanism",
        f"sender.address: {from_domain}",
    )


def _verdict(
    out: Outcome,
    from_domain: str,
    envelopes: dict[str, list[str]],
    good_keys: list[KeyFile],
    dmarc: DmarcRecord | None,
) -> None:
    """Gmail and Yahoo (2024): SPF and DKIM, DMARC with any p=, and From aligned with one."""
    level: Level
    if out.fails:
        level, message = "error", "fail: " + "; ".join(dict.fromkeys(out.fails))
    elif out.unsure or dmarc is None:
        level, message = "warning", "not confirmed: " + "; ".join(dict.fromkeys(out.unsure))
    else:
        level = "note"
        message = (
            f"pass (SPF at {', '.join(envelopes)}; DKIM at "
            f"{', '.join(key.record_name for key in good_keys)}; DMARC p={dmarc.policy} at "
            f"{dmarc.at}, aspf={dmarc.spf_mode}, adkim={dmarc.dkim_mode})"
        )
    out.add(level, "dns.bulk-rules", f"{VERDICT}: {message}", f"From domain {from_domain}")


def dns_reports(
    folders: list[Path], *, server: str | None = None, timeout: float = 5.0
) -> list[CheckReport]:
    """One DNS report per project (the projects of ``folders``, or of the current folder)."""
    roots = list(dict.fromkeys(find_project_root(folder) for folder in folders or [Path.cwd()]))
    lookup = TxtLookup(server, timeout)
    reports = []
    for root in roots:
        report = CheckReport("dns", shown_path(root / PROJECT_FILE))
        try:
            project = load_project(root)
        except ContentError as exc:
            report.findings = [Finding("error", "manifest.invalid", str(p)) for p in exc.problems]
        else:
            report.findings = check_dns(project, lookup)
        reports.append(report)
    return reports


def verdict_lines(reports: list[CheckReport], verbose: bool = False) -> str:
    """Each DNS verdict the text report hid (a pass is a note), a line each, for its end."""
    return "".join(
        f"\n{report.path}: {finding.message}"
        for report in reports
        for finding in report.findings
        if finding.code == "dns.bulk-rules" and finding.level == "note" and not verbose
    )
