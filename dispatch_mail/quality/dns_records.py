"""Reading SPF, DKIM key and DMARC records (RFC 7208, 6376, 7489) as receivers read them.

Pure functions of the record text, so the rules are testable without a server. SPF is read
for syntax only: which addresses it authorizes is the relay's business, not visible from here.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass

SPF_LOOKUP_LIMIT = 10  # RFC 7208 4.6.4: more DNS-querying terms is a permerror
_SPF_MECHANISM = re.compile(
    r"(?P<qualifier>[-+?~]?)(?P<name>all|include|a|mx|ptr|ip4|ip6|exists)"
    r"(?P<rest>[:/].*)?\Z",
    re.IGNORECASE,
)
_SPF_MODIFIER = re.compile(r"[a-z][a-z0-9_.-]*=\S*\Z", re.IGNORECASE)
_DOMAIN_SPEC = re.compile(r"[^\s/]+\Z")
_CIDR = re.compile(r"(/\d{1,2})?(//\d{1,3})?\Z")


def is_spf(record: str) -> bool:
    """RFC 7208 4.5: an SPF record starts with exactly ``v=spf1`` then a space or the end."""
    lowered = record.lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


def spf_problems(record: str) -> list[str]:
    """What makes an SPF record a permerror; one line each (empty: it parses)."""
    problems: list[str] = []
    lookups = 0
    for term in record.split()[1:]:
        mechanism = _SPF_MECHANISM.match(term)
        if mechanism:
            name, rest = mechanism["name"].lower(), mechanism["rest"] or ""
            problem = _mechanism_problem(name, rest)
            lookups += name in ("include", "a", "mx", "ptr", "exists")
        elif _SPF_MODIFIER.match(term):
            problem = "" if "=" in term and term.split("=", 1)[1] else f"{term!r} has no value"
            lookups += term.lower().startswith("redirect=")
        else:
            problem = f"{term!r} is neither a mechanism nor a modifier"
        if problem:
            problems.append(problem)
    if lookups > SPF_LOOKUP_LIMIT:
        problems.append(
            f"{lookups} terms that need DNS lookups (include, a, mx, ptr, exists, redirect): "
            f"receivers stop at {SPF_LOOKUP_LIMIT}"
        )
    return problems


def _mechanism_problem(name: str, rest: str) -> str:
    if name == "all":
        return "" if not rest else f"'all' takes no argument: {rest!r}"
    if name in ("include", "exists"):
        ok = rest.startswith(":") and _DOMAIN_SPEC.match(rest[1:])
        return "" if ok else f"'{name}' needs a domain: {name}:example.org"
    if name in ("ip4", "ip6"):
        try:
            network = ipaddress.ip_network(rest[1:], strict=False) if rest[:1] == ":" else None
        except ValueError:
            network = None
        if network is None or network.version != int(name[2]):
            return f"'{name}{rest}' is not an IPv{name[2]} address or network"
        return ""
    domain, _, cidr = rest.partition("/")  # a, mx, ptr: [:domain][/len][//len6]
    if domain and not (domain.startswith(":") and _DOMAIN_SPEC.match(domain[1:])):
        return f"'{name}{rest}' has a broken domain"
    if cidr and not _CIDR.match("/" + cidr):
        return f"'{name}{rest}' has a broken prefix length"
    return ""


def spf_allows_all(record: str) -> bool:
    """``+all`` (or a bare ``all``): every server on the Internet may send as the domain."""
    return any(term.lower() in ("all", "+all") for term in record.split()[1:])


def tags(record: str) -> dict[str, str] | None:
    """A DKIM/DMARC tag list ``a=1; b=2`` → dict; None when it does not parse (or repeats a tag)."""
    found: dict[str, str] = {}
    for part in record.split(";"):
        if not part.strip():
            continue
        name, equals, value = part.partition("=")
        name = name.strip()
        if not equals or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name) or name in found:
            return None
        found[name] = value.strip()
    return found


@dataclass(frozen=True)
class DkimKeyRecord:
    """What a selector's record says about the key (RFC 6376 3.6.1)."""

    public_key: bytes  # the DER of p=, empty when revoked
    key_type: str  # k=, "rsa" by default
    hashes: tuple[str, ...]  # h=, empty: any
    testing: bool  # t=y: receivers treat the mail as unsigned


def read_dkim_key(record: str) -> DkimKeyRecord | str:
    """The key record, or one line saying why it cannot be read."""
    found = tags(record)
    if found is None:
        return "is not a tag list ('v=DKIM1; k=rsa; p=…')"
    if "v" in found and (found["v"] != "DKIM1" or next(iter(found)) != "v"):
        return f"v={found['v']}: the version must be DKIM1 and come first"
    if "p" not in found:
        return "has no p= (the public key)"
    try:
        der = base64.b64decode("".join(found["p"].split()), validate=True)
    except binascii.Error:
        return "p= is not valid base64"
    flags = {flag.strip() for flag in found.get("t", "").split(":")}
    hashes = tuple(h.strip().lower() for h in found["h"].split(":")) if "h" in found else ()
    return DkimKeyRecord(der, found.get("k", "rsa").strip().lower(), hashes, "y" in flags)


@dataclass(frozen=True)
class DmarcRecord:
    policy: str  # p= (or sp= for a subdomain, when the record is the organizational domain's)
    spf_mode: str  # aspf: "r" relaxed or "s" strict
    dkim_mode: str  # adkim
    at: str  # where it was found


DMARC_POLICIES = ("none", "quarantine", "reject")


def is_dmarc(record: str) -> bool:
    """RFC 7489 6.4: a DMARC record starts with the tag ``v=DMARC1``."""
    return re.match(r"v\s*=\s*DMARC1\s*(;|\Z)", record) is not None


def read_dmarc(record: str, at: str, *, for_subdomain: bool) -> DmarcRecord | str:
    """The policy record, or one line saying why its policy is missing or unknown."""
    found = tags(record)
    if found is None:
        return "is not a tag list ('v=DMARC1; p=none; rua=…')"
    policy = found.get("p", "").lower()
    if policy not in DMARC_POLICIES:
        shown = f"p={found['p']}" if "p" in found else "no p="
        return f"{shown}: the policy must be none, quarantine or reject"
    if for_subdomain and found.get("sp", "").lower() in DMARC_POLICIES:
        policy = found["sp"].lower()

    def mode(tag: str) -> str:
        return "s" if found.get(tag, "r").lower() == "s" else "r"

    return DmarcRecord(policy, mode("aspf"), mode("adkim"), at)
