"""The bounded fetch behind `dispatch add`: public addresses only, one deadline for everything.

The curator's machine can reach what the internet cannot: a service on localhost,
a router's admin page, a cloud metadata service. A URL (or a redirect) pointing
there must not turn a page of ours into a copy of theirs. So every hop is resolved
here, every address the name has is checked, and the connection goes to the
address that was checked, with the name in the Host header and in TLS (SNI and
certificate): a second lookup, which DNS rebinding could answer differently, never
happens. One deadline covers the lookup, the connections, every redirect and every
byte read: a server that trickles its answer cannot hold the command past it.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dispatch_mail.errors import FetchError
from dispatch_mail.project.urls import url_problem
from dispatch_mail.version import __version__

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

MAX_BYTES = 2 * 1024 * 1024
MAX_REDIRECTS = 5
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
HTML_TYPES = ("text/html", "application/xhtml+xml")
USER_AGENT = f"dispatch/{__version__} (+newsletter link curation)"
PRIVATE_HINT = "allow_private"  # the error's hint: the caller may allow internal addresses
BY_HAND_HINT = "by_hand"  # the error's hint: the page cannot be reached; the item can be typed in

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, not private in Python 3.11
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # an IPv4 address behind a NAT64 gateway

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SockAddr = tuple[Any, ...]  # (host, port) or (host, port, flowinfo, scope_id)
AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, SockAddr]


@dataclass(frozen=True)
class Fetched:
    """A page's bytes (at most MAX_BYTES, decoded from gzip if sent so) and how it was sent."""

    url: str  # where the redirects led
    body: bytes
    charset: str | None  # as the Content-Type header named it, unchecked


class Deadline:
    """The time left for the whole fetch; asking after it passed raises TimeoutError."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError("the fetch ran out of time")
        return left


# ------------------------------------------------------------------ which addresses


def _v4_problem(ip: ipaddress.IPv4Address) -> str | None:
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata services live here)"
    if ip.is_multicast:
        return "a multicast address"
    if ip in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private or not ip.is_global:
        return "a private address"
    return None


def _v6_problem(ip: ipaddress.IPv6Address) -> str | None:
    embedded = ip.ipv4_mapped or (
        ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None
    )
    if embedded is not None:
        return _v4_problem(embedded)
    if ip.sixtofour is not None and _v4_problem(ip.sixtofour):
        return f"a 6to4 address of {_v4_problem(ip.sixtofour)}"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_site_local:
        return "a site-local address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private or not ip.is_global:
        return "a private address"
    return None


def address_problem(address: str) -> str | None:
    """Why ``address`` (an IP, as getaddrinfo gives it) is not a public one, or None."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    return _v4_problem(ip) if isinstance(ip, ipaddress.IPv4Address) else _v6_problem(ip)


# ------------------------------------------------------------------ one hop


@dataclass(frozen=True)
class Hop:
    """One request to make: where it goes, and the addresses already checked for it."""

    url: str
    https: bool
    host: str  # ASCII (IDNA), for the Host header, SNI and the certificate
    port: int
    target: str  # the path and query, percent-encoded
    addresses: tuple[AddrInfo, ...]


def redirect_target(current: str, location: str) -> str:
    """Where a redirect from ``current`` leads (a relative Location is taken from it)."""
    return urllib.parse.urljoin(current, location.strip())


def _lookup(host: str, port: int, deadline: Deadline) -> list[AddrInfo]:
    """getaddrinfo, but given no more than the time left (it has no timeout of its own)."""
    found: list[AddrInfo] = []
    failed: list[OSError] = []

    def run() -> None:
        try:
            found.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            failed.append(exc)

    worker = threading.Thread(target=run, name="dispatch-add-lookup", daemon=True)
    worker.start()
    worker.join(deadline.remaining())
    if worker.is_alive():
        raise TimeoutError("the name lookup ran out of time")
    if failed or not found:
        reason = failed[0].strerror if failed and failed[0].strerror else "no address"
        raise ConnectionError(f"cannot resolve {host}: {reason}")
    return found


def check_hop(url: str, deadline: Deadline, *, allow_private: bool = False) -> Hop:
    """Check ``url`` against the link rule, resolve its host, refuse internal addresses.

    Every address of the name is checked, not only the first: the connection may
    use any of them.
    """
    problem = url_problem(url)
    if problem:
        raise FetchError(f"{url}: {problem}", url)
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"{url}: only http and https pages can be added", url)
    name = parts.hostname or ""
    try:
        host = name if name.isascii() else name.encode("idna").decode("ascii")
    except UnicodeError:
        raise FetchError(f"{url}: {name!r} is not a valid host name", url) from None
    port = parts.port or (443 if scheme == "https" else 80)
    try:
        addresses = tuple(_lookup(host, port, deadline))
    except ConnectionError:
        raise FetchError(
            f"cannot fetch {url}: the name {host} could not be resolved (offline?)",
            url,
            hint=BY_HAND_HINT,
        ) from None
    if not allow_private:
        for info in addresses:
            ip = str(info[4][0])
            why = address_problem(ip)
            if why:
                shown = host if host == ip else f"{host} ({ip})"
                raise FetchError(
                    f"{url}: refused: {shown} is {why}; only public addresses are fetched",
                    url,
                    hint=PRIVATE_HINT,
                )
    path = urllib.parse.quote(parts.path or "/", safe="/%!$&'()*+,;=:@-._~")
    query = urllib.parse.quote(parts.query, safe="/?%!$&'()*+,;=:@-._~")
    return Hop(url, scheme == "https", host, port, path + (f"?{query}" if query else ""), addresses)


# ------------------------------------------------------------------ sockets on the deadline


class _TimedSocket(socket.socket):
    """A socket whose every read and write gets only the time left before the deadline."""

    deadline: Deadline

    def recv_into(self, buffer: WriteableBuffer, nbytes: int = 0, flags: int = 0) -> int:
        self.settimeout(self.deadline.remaining())
        return super().recv_into(buffer, nbytes, flags)

    def sendall(self, data: ReadableBuffer, flags: int = 0) -> None:
        self.settimeout(self.deadline.remaining())
        super().sendall(data, flags)


class _TimedTLSSocket(ssl.SSLSocket):
    """The same for TLS (http.client reads through ``recv_into`` either way)."""

    deadline: Deadline

    def recv_into(self, buffer: WriteableBuffer, nbytes: int | None = None, flags: int = 0) -> int:
        self.settimeout(self.deadline.remaining())
        return super().recv_into(buffer, nbytes, flags)

    def sendall(self, data: ReadableBuffer, flags: int = 0) -> None:
        self.settimeout(self.deadline.remaining())
        super().sendall(data, flags)


def _connect(hop: Hop, deadline: Deadline) -> socket.socket:
    """A connection to one of the checked addresses (never a fresh lookup of the name)."""
    failure: OSError | None = None
    for family, kind, proto, _, sockaddr in hop.addresses:
        sock = _TimedSocket(family, kind, proto)
        sock.deadline = deadline
        try:
            sock.settimeout(deadline.remaining())
            sock.connect(sockaddr)
        except TimeoutError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        if not hop.https:
            return sock
        context = ssl.create_default_context()
        context.sslsocket_class = _TimedTLSSocket
        try:
            tls = context.wrap_socket(sock, server_hostname=hop.host, do_handshake_on_connect=False)
            assert isinstance(tls, _TimedTLSSocket)
            tls.deadline = deadline
            tls.settimeout(deadline.remaining())
            tls.do_handshake()
        except BaseException:
            sock.close()
            raise
        return tls
    raise ConnectionError(failure.strerror if failure and failure.strerror else "cannot connect")


class _PinnedConnection(http.client.HTTPConnection):
    """http.client over a socket we connected ourselves (to the address we checked)."""

    def __init__(self, hop: Hop, sock: socket.socket) -> None:
        super().__init__(hop.host, hop.port)
        self.default_port = 443 if hop.https else 80  # so the Host header names no usual port
        self._pinned = sock

    def connect(self) -> None:
        self.sock = self._pinned


# ------------------------------------------------------------------ the fetch


def _decoded(url: str, raw: bytes, encoding: str) -> bytes:
    """The body without its Content-Encoding; gzip and deflate only, never past MAX_BYTES."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise FetchError(f"{url}: the page is sent compressed as {encoding!r}, which is not read")
    for wbits in (47, -15):  # gzip or zlib (auto-detected), then raw deflate
        try:
            return zlib.decompressobj(wbits).decompress(raw, MAX_BYTES)
        except zlib.error:
            continue
    raise FetchError(f"{url}: the page says it is {encoding}-compressed, but it is not")


def _request(hop: Hop, deadline: Deadline) -> tuple[str | None, Fetched | None]:
    """Make one request: the redirect's Location, or the page."""
    connection = _PinnedConnection(hop, _connect(hop, deadline))
    try:
        connection.request(
            "GET",
            hop.target,
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5",
                "Accept-Encoding": "gzip, deflate",
            },
        )
        response = connection.getresponse()
        if response.status in REDIRECT_CODES:
            location = response.getheader("Location")
            if not location:
                raise FetchError(f"{hop.url}: HTTP {response.status} without a Location", hop.url)
            return location, None
        if not 200 <= response.status < 300:
            raise FetchError(f"{hop.url}: HTTP {response.status} {response.reason}", hop.url)
        if response.getheader("Content-Type") is None:
            raise FetchError(f"{hop.url}: not an HTML page (no Content-Type)", hop.url)
        kind = response.headers.get_content_type()
        if kind not in HTML_TYPES:
            raise FetchError(f"{hop.url}: not an HTML page ({kind})", hop.url)
        raw = response.read(MAX_BYTES + 1)[:MAX_BYTES]
        body = _decoded(hop.url, raw, response.getheader("Content-Encoding") or "")
        return None, Fetched(hop.url, body, response.headers.get_content_charset())
    finally:
        connection.close()


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def fetch(url: str, *, timeout: float = 10.0, allow_private: bool = False) -> Fetched:
    """Fetch an HTML page: http(s) only, ≤ MAX_REDIRECTS redirects, ≤ MAX_BYTES, all within
    ``timeout`` seconds; internal addresses are refused on every hop unless allowed."""
    deadline = Deadline(timeout)
    current = url
    try:
        for _ in range(MAX_REDIRECTS + 1):
            hop = check_hop(current, deadline, allow_private=allow_private)
            try:
                location, page = _request(hop, deadline)
            except ssl.SSLCertVerificationError as exc:
                raise FetchError(
                    f"{current}: the site's certificate is not valid ({exc.verify_message})", url
                ) from None
            except ssl.SSLError as exc:
                raise FetchError(f"{current}: TLS failed ({exc.reason or exc})", url) from None
            except http.client.RemoteDisconnected:
                raise FetchError(
                    f"{current}: the server closed the connection without answering", url
                ) from None
            except http.client.HTTPException as exc:
                detail = str(exc) or type(exc).__name__
                raise FetchError(f"{current}: not a valid HTTP answer ({detail})", url) from None
            if page is not None:
                return page
            assert location is not None
            current = redirect_target(current, location)
    except TimeoutError:
        raise FetchError(
            f"{current}: timed out: no complete answer within {timeout:g} s", url, hint=BY_HAND_HINT
        ) from None
    except OSError as exc:  # the connection failed or broke
        raise FetchError(
            f"could not reach {current} ({_reason(exc)}): check the URL or your connection",
            url,
            hint=BY_HAND_HINT,
        ) from None
    raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects", url)
