"""An authoritative DNS server on 127.0.0.1 for the tests (dnslib), serving TXT records.

It answers over UDP and TCP on one port. UDP answers over 512 bytes come back truncated (TC=1),
as a real server's do to a client without EDNS (dnspython's default), so a domain with many
TXT records makes the client ask again over TCP, as it would on the Internet.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import DNSServer

UDP_LIMIT = 512  # RFC 1035 4.2.1, for a client without EDNS


class _Quiet:
    """dnslib's logger prints every packet; the tests want none of that."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


@dataclass
class Query:
    name: str
    qtype: str
    protocol: str  # "udp" or "tcp"


@dataclass
class Zones:
    """What the server answers: TXT records by name, and names that answer SERVFAIL."""

    txt: dict[str, list[str]] = field(default_factory=dict)
    servfail: set[str] = field(default_factory=set)
    queries: list[Query] = field(default_factory=list)

    def add(self, name: str, *records: str) -> None:
        self.txt.setdefault(name.lower().rstrip("."), []).extend(records)

    def exists(self, name: str) -> bool:
        """A name with records, or an empty non-terminal above one (NOERROR, no answer)."""
        return any(known == name or known.endswith("." + name) for known in self.txt)

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        reply.header.aa = 1
        name = str(request.q.qname).lower().rstrip(".")
        qtype = QTYPE[request.q.qtype]
        self.queries.append(Query(name, qtype, handler.protocol))
        if name in self.servfail:
            reply.header.rcode = RCODE.SERVFAIL
        elif not self.exists(name):
            reply.header.rcode = RCODE.NXDOMAIN
        elif qtype in ("TXT", "ANY"):
            for record in self.txt.get(name, []):
                data = record.encode()
                chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
                reply.add_answer(RR(name, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
        if handler.protocol == "udp" and len(reply.pack()) > UDP_LIMIT:
            reply = request.reply()  # the question and TC=1: "ask me over TCP"
            reply.header.aa, reply.header.tc = 1, 1
        return reply


@dataclass
class LocalDnsServer:
    zones: Zones
    port: int

    @property
    def address(self) -> str:
        """What --dns-server takes."""
        return f"127.0.0.1:{self.port}"


@contextmanager
def dns_server(zones: Zones | None = None) -> Iterator[LocalDnsServer]:
    """Serve ``zones`` over UDP and TCP on one free loopback port until the block ends."""
    zones = zones or Zones()
    options: dict[str, Any] = {
        "address": "127.0.0.1",
        "logger": _Quiet(),
    }
    for _ in range(20):  # the free UDP port may be taken for TCP: try another
        udp = DNSServer(zones, port=0, **options)
        port = udp.server.server_address[1]
        try:
            tcp = DNSServer(zones, port=port, tcp=True, **options)
        except OSError:
            udp.server.server_close()
            continue
        break
    else:
        raise RuntimeError("no free port for both UDP and TCP")
    for server in (udp, tcp):  # a short poll: stopping then takes milliseconds, not 0.5 s
        thread = threading.Thread(target=server.server.serve_forever, args=(0.02,), daemon=True)
        thread.start()
    try:
        yield LocalDnsServer(zones, port)
    finally:
        for server in (udp, tcp):
            server.server.shutdown()
            server.server.server_close()


@contextmanager
def silent_server() -> Iterator[str]:
    """A UDP port that reads nothing and answers nothing: a DNS server that has gone away."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()
