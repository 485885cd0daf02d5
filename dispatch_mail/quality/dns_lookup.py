"""The DNS lookups behind `dispatch check --dns`: TXT records under a deadline, failures told apart.

NXDOMAIN and an empty answer both mean "no record", which is a finding about the owner's DNS;
a timeout or SERVFAIL means we could not tell (``dns.lookup-failed``), never a crash. dnspython
and the Public Suffix List are imported here only, so `dispatch build` never pays for them.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dispatch_mail.errors import UsageError

if TYPE_CHECKING:
    import dns.resolver

DNS_SERVER_ENV = "DISPATCH_DNS_SERVER"


@dataclass(frozen=True)
class TxtAnswer:
    """The TXT records at one name, each record's strings joined as RFC 7208/6376 read them."""

    name: str
    records: tuple[str, ...] = ()
    failure: str = ""  # why we could not tell; "" when the server answered (records or none)
    skipped: bool = False  # not asked: the server had already stopped answering

    @property
    def failed(self) -> bool:
        return bool(self.failure)


def parse_server(value: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``[V6]:PORT`` or a bare IPv6 address → (host, port)."""
    value = value.strip()
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if not bracket or (rest and not rest.startswith(":")):
            raise UsageError(f"the DNS server {value!r}: expected [ADDRESS]:PORT")
    elif value.count(":") == 1:
        host, port_text = value.split(":")
    else:
        host, port_text = value, ""
    if not host:
        raise UsageError(f"the DNS server {value!r}: no host")
    try:
        port = int(port_text) if port_text else 53
    except ValueError:
        raise UsageError(f"the DNS server {value!r}: the port must be a number") from None
    if not 0 < port < 65536:
        raise UsageError(f"the DNS server {value!r}: the port must be 1-65535")
    return host, port


def _server_address(host: str, port: int) -> str:
    """The server's IP address: dnspython asks addresses, not names."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise UsageError(
            f"the DNS server {host!r}: cannot resolve it ({exc.strerror or exc})"
        ) from None
    return str(infos[0][4][0])


class TxtLookup:
    """Asks one resolver for TXT records; after one timeout it stops asking.

    The system's resolver by default, or ``server`` (``HOST[:PORT]``, else
    ``DISPATCH_DNS_SERVER``). Nothing is cached here: each name is asked once.
    """

    def __init__(self, server: str | None = None, timeout: float = 5.0) -> None:
        import dns.resolver

        server = server or os.environ.get(DNS_SERVER_ENV) or None
        self.timeout = timeout
        if server:
            host, port = parse_server(server)
            address = _server_address(host, port)
            self.resolver = dns.resolver.Resolver(configure=False)
            self.resolver.nameservers = [address]
            self.resolver.port = port
            self.label = f"{host}:{port}"
        else:
            try:
                self.resolver = dns.resolver.Resolver()
            except dns.resolver.NoResolverConfiguration:
                raise UsageError(
                    "this machine has no DNS resolver configured", hint="dns_server"
                ) from None
            self.label = "the system's resolver (" + ", ".join(map(str, self.resolver.nameservers))
            self.label += ")"
        # two tries within the deadline, so one lost UDP packet is not a failure
        self.resolver.timeout = timeout / 2
        self.resolver.lifetime = timeout
        self._silent = False

    def txt(self, name: str) -> TxtAnswer:
        """The TXT records at ``name``; none for NXDOMAIN or an empty answer."""
        import dns.exception
        import dns.resolver

        if self._silent:
            return TxtAnswer(name, failure=f"{self.label} stopped answering", skipped=True)
        try:
            answer = self.resolver.resolve(name, "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return TxtAnswer(name)
        except dns.exception.Timeout:
            self._silent = True
            return TxtAnswer(name, failure=f"no answer from {self.label} within {self.timeout:g} s")
        except dns.resolver.NoNameservers as exc:
            return TxtAnswer(name, failure=_refusal(exc, self.label))
        except dns.exception.DNSException as exc:  # a name too long, YXDOMAIN, …
            return TxtAnswer(name, failure=" ".join(str(exc).split()) or type(exc).__name__)
        records = tuple(b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer)
        return TxtAnswer(name, records)


def _refusal(exc: dns.resolver.NoNameservers, label: str) -> str:
    """What the server said instead of an answer (SERVFAIL, REFUSED, …)."""
    import dns.rcode

    said = set()
    for *_, error, response in exc.kwargs.get("errors", []):
        if response is not None:
            said.add(dns.rcode.to_text(response.rcode()))
        elif error is not None:
            said.add(" ".join(str(error).split()))
    return f"{label} answered " + (", ".join(sorted(said)) or "nothing usable")


def organizational_domain(domain: str) -> str:
    """RFC 7489 3.2: the registered domain (public suffix + one label), by the Public Suffix List.

    ``news.example.co.uk`` → ``example.co.uk``; a domain that is itself a public suffix is its
    own organizational domain. Relaxed DMARC alignment compares these.
    """
    from dispatch_mail.mail.dkim_keys import organizational_domain as registered

    name = domain.lower().rstrip(".")
    return registered(name) or name
