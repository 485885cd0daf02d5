"""The record checks of `dispatch check --dns`: SPF, each DKIM selector's key, DMARC.

Each check adds its findings to an :class:`Outcome`, with the reasons the bulk-sender verdict
fails or cannot be told; dns_verdict.py judges alignment and gives the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dispatch_mail.mail.dkim_keys import DKIM_KEY_ENV, GOOD_RSA_BITS, MIN_RSA_BITS, KeyFile
from dispatch_mail.project.paths import shown_path
from dispatch_mail.project.settings import Project
from dispatch_mail.quality.dns_lookup import TxtAnswer, TxtLookup, organizational_domain
from dispatch_mail.quality.dns_records import (
    DkimKeyRecord,
    DmarcRecord,
    is_dmarc,
    is_spf,
    read_dkim_key,
    read_dmarc,
    spf_allows_all,
    spf_problems,
)
from dispatch_mail.quality.findings import Finding, Level


@dataclass
class Outcome:
    """The findings so far and what the verdict needs to know."""

    findings: list[Finding] = field(default_factory=list)
    fails: list[str] = field(default_factory=list)  # why the bulk-sender rules fail
    unsure: list[str] = field(default_factory=list)  # what could not be told

    def add(self, level: Level, code: str, message: str, where: str = "") -> None:
        self.findings.append(Finding(level, code, message, where))

    def lookup_failed(self, answer: TxtAnswer) -> None:
        if answer.skipped:  # the first failure said so already
            return
        rest = " (the remaining lookups were skipped)" if "no answer" in answer.failure else ""
        self.add("error", "dns.lookup-failed", f"{answer.failure}{rest}", f"TXT {answer.name}")
        self.unsure.append(f"TXT {answer.name} could not be looked up")


def envelope_domains(project: Project) -> dict[str, list[str]]:
    """Each MAIL FROM domain a send may use → the dispatch.yaml fields that give it.

    VERP local parts (``bounces+{token}@``) do not matter: SPF is looked up at the domain.
    The project's own (or the From address) counts unless every SMTP profile sets its own.
    """
    found: dict[str, list[str]] = {}
    default = project.return_path
    if not project.smtp or not all(profile.return_path for profile in project.smtp.values()):
        found.setdefault(_domain(default or project.sender.address), []).append(
            "return_path" if default else "sender.address"
        )
    for name, profile in project.smtp.items():
        if profile.return_path:
            found.setdefault(_domain(profile.return_path), []).append(f"smtp.{name}.return_path")
    return found


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip().lower().rstrip(".")


# ------------------------------------------------------------------ SPF
def check_spf(lookup: TxtLookup, domain: str, fields: list[str], out: Outcome) -> bool | None:
    """Whether ``domain`` publishes exactly one SPF record that parses (None: no answer)."""
    answer = lookup.txt(domain)
    if answer.failed:
        out.lookup_failed(answer)
        return None
    where = f"TXT {domain} ({', '.join(fields)})"
    records = [r for r in answer.records if is_spf(r)]
    if not records:
        out.add("error", "dns.spf-missing", f"{domain} has no SPF record (v=spf1)", where)
        out.fails.append(f"no SPF record for {domain}")
        return False
    if len(records) > 1:
        out.add(
            "error",
            "dns.spf-multiple",
            f"{domain} has {len(records)} SPF records: receivers treat that as a permerror; "
            "merge them into one",
            where,
        )
        out.fails.append(f"several SPF records for {domain}")
        return False
    problems = spf_problems(records[0])
    for problem in problems:
        out.add("error", "dns.spf-syntax", f"the SPF record of {domain}: {problem}", where)
    if problems:
        out.fails.append(f"the SPF record of {domain} does not parse")
        return False
    if spf_allows_all(records[0]):
        out.add(
            "warning",
            "dns.spf-allow-all",
            f"the SPF record of {domain} has '+all': anyone may send as {domain}; "
            "use '~all' or '-all'",
            where,
        )
    return True


# ------------------------------------------------------------------ DKIM
def public_key_of(path: Path) -> tuple[bytes, int] | str:
    """(SubjectPublicKeyInfo DER, bits) of a PEM RSA private key, or why it cannot be read."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot read {shown_path(path)}: {exc.strerror or exc}"
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        reason = "it is encrypted" if isinstance(exc, TypeError) else "not a PEM private key"
        return f"{shown_path(path)}: {reason}"
    if not isinstance(key, rsa.RSAPrivateKey):
        return f"{shown_path(path)}: not an RSA key (dispatch signs rsa-sha256)"
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der, key.key_size


def published_key(record: DkimKeyRecord) -> tuple[bytes, int] | None:
    """(SubjectPublicKeyInfo DER, bits) of the key in DNS; None when p= is no RSA key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_der_public_key(record.public_key)
    except ValueError:
        return None
    if not isinstance(key, rsa.RSAPublicKey):
        return None
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der, key.key_size


def check_dkim_key(lookup: TxtLookup, key: KeyFile, out: Outcome) -> bool | None:
    """Whether the selector's record holds a usable RSA key that matches the private key.

    None: we cannot tell (no answer, or the private key could not be read).
    """
    where = f"TXT {key.record_name} ({key.field})"
    ours = public_key_of(key.key_path) if key.key_path else f"{key.field}: no key_file"
    if key.key_path is None and key.field == "dkim":
        ours = f"dkim: has no key_file and {DKIM_KEY_ENV} is not set"
    if isinstance(ours, str):
        out.add("error", "dns.dkim-key-file", f"{ours}: the key in DNS cannot be compared", where)
    answer = lookup.txt(key.record_name)
    if answer.failed:
        out.lookup_failed(answer)
        return None
    if not answer.records:
        out.add(
            "error",
            "dns.dkim-missing",
            f"no DKIM key at {key.record_name}: publish the public key of {key.field}",
            where,
        )
        out.fails.append(f"no DKIM key at {key.record_name}")
        return False
    if len(answer.records) > 1:
        out.add(
            "warning",
            "dns.dkim-multiple",
            f"{len(answer.records)} TXT records at {key.record_name}: receivers may read either; "
            "keep one",
            where,
        )
    readings = [read_dkim_key(r) for r in answer.records]
    records = [r for r in readings if isinstance(r, DkimKeyRecord)]
    if not records:
        out.add("error", "dns.dkim-syntax", f"the record at {key.record_name} {readings[0]}", where)
        out.fails.append(f"the DKIM record at {key.record_name} does not parse")
        return False
    if not isinstance(ours, str):  # of several records, judge the one with our key
        records.sort(key=lambda r: (published_key(r) or (b"", 0))[0] != ours[0])
    record = records[0]
    return _judge_key(key, record, ours, where, out)


def _judge_key(
    key: KeyFile, record: DkimKeyRecord, ours: tuple[bytes, int] | str, where: str, out: Outcome
) -> bool | None:
    name = key.record_name
    if not record.public_key:
        out.add("error", "dns.dkim-revoked", f"the key at {name} is revoked (empty p=)", where)
        out.fails.append(f"the DKIM key at {name} is revoked")
        return False
    if record.key_type != "rsa" or (record.hashes and "sha256" not in record.hashes):
        said = f"k={record.key_type}" + (f", h={':'.join(record.hashes)}" if record.hashes else "")
        out.add(
            "error",
            "dns.dkim-key-type",
            f"the record at {name} says {said}; dispatch signs rsa-sha256",
            where,
        )
        out.fails.append(f"the DKIM key at {name} is not an rsa-sha256 key")
        return False
    published = published_key(record)
    if published is None:
        out.add("error", "dns.dkim-syntax", f"p= at {name} is not an RSA public key", where)
        out.fails.append(f"the DKIM key at {name} does not parse")
        return False
    der, bits = published
    ok: bool | None = True
    if not isinstance(ours, str) and der != ours[0]:
        out.add(
            "error",
            "dns.dkim-key-mismatch",
            f"the key at {name} is not the public half of {key.field}'s private key "
            f"({shown_path(key.key_path) if key.key_path else ''}): every signature will fail",
            where,
        )
        out.fails.append(f"the DKIM key at {name} does not match the private key")
        ok = False
    elif isinstance(ours, str):
        out.unsure.append(f"the DKIM key at {name} could not be compared")
        ok = None
    if bits < MIN_RSA_BITS:
        out.add(
            "error",
            "dns.dkim-key-size",
            f"the key at {name} has {bits} bits: receivers ignore RSA keys under "
            f"{MIN_RSA_BITS} bits (RFC 8301)",
            where,
        )
        out.fails.append(f"the DKIM key at {name} is under {MIN_RSA_BITS} bits")
        ok = False
    elif bits < GOOD_RSA_BITS:
        out.add(
            "warning",
            "dns.dkim-key-size",
            f"the key at {name} has {bits} bits; RFC 8301 asks for {GOOD_RSA_BITS}",
            where,
        )
    if record.testing:
        out.add(
            "warning",
            "dns.dkim-testing",
            f"the record at {name} has t=y: receivers treat its signatures as none",
            where,
        )
        out.fails.append(f"the DKIM key at {name} is in testing mode (t=y)")
        ok = False
    return ok


# ------------------------------------------------------------------ DMARC
def find_dmarc(lookup: TxtLookup, from_domain: str, out: Outcome) -> DmarcRecord | None:
    """The DMARC policy for the From domain, falling back to its organizational domain's."""
    organization = organizational_domain(from_domain)
    names = [from_domain] + ([organization] if organization != from_domain else [])
    for domain in names:
        answer = lookup.txt(f"_dmarc.{domain}")
        if answer.failed:
            out.lookup_failed(answer)
            return None
        where = f"TXT _dmarc.{domain}"
        records = [r for r in answer.records if is_dmarc(r)]
        if len(records) > 1:
            out.add(
                "error",
                "dns.dmarc-multiple",
                f"_dmarc.{domain} has {len(records)} DMARC records: receivers ignore them all",
                where,
            )
            out.fails.append(f"several DMARC records at _dmarc.{domain}")
            return None
        if records:
            found = read_dmarc(records[0], f"_dmarc.{domain}", for_subdomain=domain != from_domain)
            if isinstance(found, str):
                out.add("error", "dns.dmarc-policy", f"the DMARC record {found}", where)
                out.fails.append(f"the DMARC record at _dmarc.{domain} has no valid policy")
                return None
            return found
    tried = " or ".join(f"_dmarc.{domain}" for domain in names)
    out.add(
        "error",
        "dns.dmarc-missing",
        f"no DMARC record at {tried}: publish at least 'v=DMARC1; p=none'",
        f"TXT _dmarc.{from_domain} (sender.address)",
    )
    out.fails.append("no DMARC record")
    return None
