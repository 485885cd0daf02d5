"""`dispatch add` against hostile pages and servers: real servers on 127.0.0.1, the real command.

What a page says is text, never markup; internal addresses are refused on every hop
and after the name is resolved; the timeout bounds the whole fetch; and whatever a
server sends ends in a clean item or a one-line error, never an internal error.
"""

from __future__ import annotations

import gzip
import html
import socket
import ssl
import threading
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner, Result

from dispatch_mail.authoring.curate import literal_markdown
from dispatch_mail.authoring.fetch import (
    PRIVATE_HINT,
    Deadline,
    address_problem,
    check_hop,
    redirect_target,
)
from dispatch_mail.cli import main
from dispatch_mail.errors import FetchError
from dispatch_mail.project.loader import load
from dispatch_mail.project.markup import TextSpan, parse_inline
from tests.helpers.http_server import Reply

ISSUE = """\
subject: Test issue
name: Issue 1
date: 2026-01-08
masthead:
  headline: Hello
sections:
  - kind: reading_list
    heading: Reading
    items:
      - title: A piece
        url: https://example.org/piece
        note: Worth it.
  - kind: links
    heading: Links
    items:
      - text: A link.
        url: https://example.org/link
  - kind: stories
    heading: Stories
    items:
      - title: A story
        url: https://example.org/story
        summary: It happened.
  - kind: roundup
    heading: Roundup
    region: APAC
    items:
      - title: An item
        url: https://example.org/item
  - kind: announcements
    heading: News
    items:
      - Something happened.
"""

PHISH = "[Reset your password](https://phish.example/reset) **urgent**"
PHISH_TITLE = "**Big** [news](https://phish.example/title) `now` _here_ \\ end"


def page(title: str = "A title", description: str | None = "A description.") -> bytes:
    meta = (
        f'<meta property="og:description" content="{html.escape(description)}">'
        if description is not None
        else ""
    )
    return f"<html><head><title>{html.escape(title)}</title>{meta}</head></html>".encode()


def html_reply(
    body: bytes, content_type: str = "text/html; charset=utf-8", **headers: str
) -> Reply:
    return Reply(200, body, {"Content-Type": content_type, **headers})


@pytest.fixture
def issue(write_project):
    return write_project(ISSUE)


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result: Result) -> str:
    """The command failed with exactly one error line and no internal error; that line."""
    assert result.exit_code == 1, result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def serve(http_server, replies: dict[str, Reply]):
    return http_server(lambda method, path: replies.get(path, Reply(404)))


# ------------------------------------------------------------------ 8: the page's text is text


@pytest.mark.parametrize("section", ["Reading", "Links", "Stories", "Roundup", "News"])
def test_markdown_in_a_page_stays_literal_text_in_the_email(http_server, issue, section):
    web = serve(http_server, {"/p": html_reply(page(PHISH_TITLE, PHISH))})
    added = run("add", issue, f"{web.url}/p", "--section", section, "--allow-private")
    assert added.exit_code == 0, added.output
    built = run("build", issue)
    assert built.exit_code == 0, built.output
    email_html = (issue.parent.parent / "build/test/email.html").read_text()
    text = (issue.parent.parent / "build/test/email.txt").read_text()
    assert 'href="https://phish.example' not in email_html
    assert "<strong>urgent" not in email_html and "<strong>Big" not in email_html
    assert "<code>now" not in email_html and "<em>here" not in email_html
    shown = PHISH_TITLE if section == "News" else PHISH  # announcements show the title
    assert html.escape(shown, quote=False) in email_html
    assert shown in " ".join(text.split())


@pytest.mark.parametrize(
    "text",
    [
        PHISH,
        PHISH_TITLE,
        "trailing backslash \\",
        "\\*not bold\\*",
        "snake_case and __init__ and _em_ and a_b_",
        "[[nested]](x) ] [ ) (",
        "*a *b **c ** d*",
        "`unclosed and `closed` code",
        "100% & <b>tags</b> #hash > quote - dash 1. one !bang",
    ],
)
def test_escaped_text_reads_back_as_the_same_text(text):
    inline, problems = parse_inline(literal_markdown(text))
    assert problems == []
    assert all(isinstance(span, TextSpan) for span in inline.spans), inline.spans
    assert inline.plain == text


# ------------------------------------------------------------------ 9: internal addresses


def test_loopback_is_refused_by_address_and_by_name(http_server, issue):
    web = serve(http_server, {"/p": html_reply(page())})
    manifest = issue / "issue.yaml"
    before = manifest.read_text()
    for host in (
        "127.0.0.1",
        "localhost",  # a name: refused after resolving it
        "2130706433",  # 127.0.0.1 as one number
        "0x7f.1",  # as hex and a short form
        "127.1",
        "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
    ):
        line = one_line_error(run("add", issue, f"http://{host}:{web.port}/p"))
        assert "refused" in line and "a loopback address" in line, line
    assert web.requests == []  # nothing was fetched
    assert manifest.read_text() == before


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("100.64.0.1", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("[::1]", "loopback"),
        ("[::]", "unspecified"),
        ("[fd00::1]", "private"),
        ("[fe80::1]", "link-local"),
        ("[ff02::1]", "multicast"),
        ("[::ffff:10.0.0.1]", "private"),
        ("[::ffff:169.254.169.254]", "link-local"),
        ("[64:ff9b::a00:1]", "private"),  # 10.0.0.1 behind NAT64
        ("[2002:a00:1::1]", "private"),  # 10.0.0.1 as 6to4
    ],
)
def test_internal_addresses_are_refused_without_a_connection(issue, host, kind):
    # the session's network guard turns any connection attempt to these into an internal error
    line = one_line_error(run("add", issue, f"http://{host}/admin"))
    assert "refused" in line and kind in line, line


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_pass(address):
    assert address_problem(address) is None


def test_every_redirect_hop_is_checked_before_it_is_fetched():
    deadline = Deadline(5)
    for location in (
        "http://127.0.0.1:8090/internal-admin",
        "//localhost:8090/internal-admin",  # scheme-relative
        "http://[::ffff:7f00:1]:8090/",
    ):
        hop = redirect_target("https://example.org/post", location)
        with pytest.raises(FetchError) as refused:
            check_hop(hop, deadline)
        assert refused.value.hint == PRIVATE_HINT and "loopback" in str(refused.value)
        assert check_hop(hop, deadline, allow_private=True).addresses  # allowed: resolved only
    for location, message in (("file:///etc/passwd", "not allowed"), ("mailto:a@b.c", "only http")):
        with pytest.raises(FetchError, match=message):
            check_hop(redirect_target("https://example.org/", location), deadline)


def test_redirects_are_followed_when_private_addresses_are_allowed(http_server, issue):
    def respond(method, path):
        return {
            "/start": Reply(302, headers={"Location": "/middle"}),
            "/middle": Reply(301, headers={"Location": f"http://localhost:{web.port}/end"}),
            "/end": html_reply(page("The end")),
        }.get(path, Reply(404))

    web = http_server(respond)
    result = run("add", issue, f"{web.url}/start", "--allow-private")
    assert result.exit_code == 0, result.output
    _, model = load(issue)
    item = model.sections[0].items[-1]
    assert (item.title.plain, item.url) == ("The end", f"http://localhost:{web.port}/end")
    assert [path for _, path in web.requests] == ["/start", "/middle", "/end"]


# ------------------------------------------------------------------ 9: one deadline


class RawServer:
    """A TCP server on 127.0.0.1 that answers each connection with ``script(conn)``."""

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)  # the request
            self.script(conn)


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], RawServer]]:
    started: list[RawServer] = []

    def start(script: Callable[[socket.socket], None]) -> RawServer:
        started.append(RawServer(script))
        return started[-1]

    yield start
    for server in started:
        server.listener.close()


class Trickle:
    """Sends ``fast`` at once, then ``slow`` one byte per 0.3 s; notes whether the client hung up
    before it was done."""

    def __init__(self, fast: bytes, slow: bytes) -> None:
        self.fast, self.slow = fast, slow
        self.cut_short = threading.Event()
        self.slow_sent = 0

    def __call__(self, conn: socket.socket) -> None:
        pause = threading.Event()  # never set: a sleep
        try:
            conn.sendall(self.fast)
            for byte in self.slow:
                pause.wait(0.3)
                conn.sendall(bytes([byte]))
                self.slow_sent += 1
        except OSError:
            self.cut_short.set()


STATUS = b"HTTP/1.1 200 OK\r\n"
TRICKLES = {
    "body": (STATUS + b"Content-Type: text/html\r\nContent-Length: 100\r\n\r\n", b"x" * 100),
    "headers": (STATUS, b"X-Slow: " + b"y" * 92),  # a header line that never ends
}


@pytest.mark.parametrize("where", sorted(TRICKLES))
def test_a_trickling_server_cannot_outlast_the_timeout(raw_server, issue, where):
    trickle = Trickle(*TRICKLES[where])
    server = raw_server(trickle)
    line = one_line_error(
        run("add", issue, f"http://127.0.0.1:{server.port}/", "--timeout", "1", "--allow-private")
    )
    assert "timed out" in line and "within 1 s" in line, line
    assert trickle.cut_short.wait(60), "the command read on past its timeout"
    assert trickle.slow_sent < 100


def test_the_timeout_covers_all_redirects_together(http_server, issue):
    # each hop answers well within the timeout; the five of them together do not
    chain = {f"/r{n}": Reply(302, headers={"Location": f"/r{n + 1}"}, delay=0.4) for n in range(5)}
    web = serve(http_server, {**chain, "/r5": html_reply(page())})
    line = one_line_error(run("add", issue, f"{web.url}/r0", "--timeout", "1", "--allow-private"))
    assert "timed out" in line, line
    assert ("GET", "/r5") not in web.requests


# ------------------------------------------------------------------ whatever the server sends


def add_ok(issue, url: str):
    result = run("add", issue, url, "--allow-private")
    assert result.exit_code == 0, result.output
    assert "internal error" not in result.output
    _, model = load(issue)
    return model.sections[0].items[-1]


@pytest.mark.parametrize(
    "charset", ["x-no-such", "base64", "rot13", "punycode", "idna", "undefined", "utf-7", "'"]
)
def test_an_unusable_charset_is_read_as_utf8(http_server, issue, charset):
    web = serve(
        http_server, {"/p": html_reply(page("Café ☕ +AGEA-"), f"text/html; charset={charset}")}
    )
    assert add_ok(issue, f"{web.url}/p").title.plain == "Café ☕ +AGEA-"


def test_the_pages_own_charset_is_used_when_the_header_names_none_usable(http_server, issue):
    body = '<meta charset="iso-8859-1"><title>Café</title><meta name=description content=x>'
    body = body.encode("latin-1")
    web = serve(
        http_server,
        {
            "/bad-header": html_reply(body, "text/html; charset=x-no-such"),
            "/no-charset": html_reply(body, "text/html"),
            "/header-wins": html_reply(page("Café"), "text/html; charset=utf-8"),
        },
    )
    for path in ("/bad-header", "/no-charset", "/header-wins"):
        assert add_ok(issue, f"{web.url}{path}").title.plain == "Café", path


def test_compressed_pages(http_server, issue):
    body = page("Squeezed")
    web = serve(
        http_server,
        {
            "/gzip": html_reply(gzip.compress(body), **{"Content-Encoding": "gzip"}),
            "/deflate": html_reply(zlib.compress(body), **{"Content-Encoding": "deflate"}),
            "/brotli": html_reply(b"\x0b\x02\x80", **{"Content-Encoding": "br"}),
            "/liar": html_reply(body, **{"Content-Encoding": "gzip"}),
        },
    )
    assert add_ok(issue, f"{web.url}/gzip").title.plain == "Squeezed"
    assert add_ok(issue, f"{web.url}/deflate").title.plain == "Squeezed"
    for path, message in (("/brotli", "compressed as 'br'"), ("/liar", "but it is not")):
        line = one_line_error(run("add", issue, f"{web.url}{path}", "--allow-private"))
        assert message in line, line


def test_huge_text_and_control_characters_still_make_a_manifest_that_builds(http_server, issue):
    web = serve(
        http_server,
        {
            "/huge": html_reply(page("T" * 100_000, "*" * 50_000 + "D" * 50_000)),
            "/nul": html_reply(
                b"<title>Hel\x00lo\x1b[31m</title><meta name=description content=a\x00b\x07c>"
            ),
            "/big-page": html_reply(page("Big") + b"<p>" * 1_500_000),
            "/tag-soup": html_reply(b"<a" * 200_000 + b">" + page("Soup")),
        },
    )
    huge = add_ok(issue, f"{web.url}/huge")
    assert 0 < len(str(huge.title)) <= 300 and len(str(huge.note)) <= 3000
    assert str(huge.note).startswith("\\*\\*")
    nul = add_ok(issue, f"{web.url}/nul")
    assert (nul.title.plain, str(nul.note)) == ("Hello[31m", "abc")
    assert add_ok(issue, f"{web.url}/big-page").title.plain == "Big"
    assert add_ok(issue, f"{web.url}/tag-soup").title.plain == "Soup"
    built = run("build", issue)
    assert built.exit_code == 0, built.output


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(200, b"{}", {"Content-Type": "application/json"}), "not an HTML page"),
        (Reply(200, b"hello", {"Content-Type": "text/plain"}), "not an HTML page"),
        (Reply(200, b"\x89PNG", {"Content-Type": "image/png"}), "not an HTML page"),
        (Reply(200, b"<title>x</title>"), "no Content-Type"),
        (Reply(302), "without a Location"),
        (Reply(500), "HTTP 500"),
    ],
)
def test_answers_that_are_no_page_give_one_line(http_server, issue, reply, message):
    web = serve(http_server, {"/p": reply})
    line = one_line_error(run("add", issue, f"{web.url}/p", "--allow-private"))
    assert message in line, line


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (lambda conn: conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"), "not a valid HTTP answer"),
        (lambda conn: None, "closed the connection without answering"),
        (
            lambda conn: conn.sendall(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 200 + b"\r\n"),
            "not a valid HTTP answer",
        ),
    ],
)
def test_broken_servers_give_one_line(raw_server, issue, script, message):
    server = raw_server(script)
    line = one_line_error(run("add", issue, f"http://127.0.0.1:{server.port}/", "--allow-private"))
    assert message in line, line


def test_an_unreachable_server_says_what_to_check(issue):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again: nothing listens there
    line = one_line_error(run("add", issue, f"http://127.0.0.1:{port}/", "--allow-private"))
    assert "could not reach" in line and "check the URL or your connection" in line, line


def test_non_ascii_paths_are_sent_percent_encoded(http_server, issue):
    web = serve(http_server, {"/caf%C3%A9?q=%C3%BC": html_reply(page("Encoded"))})
    assert add_ok(issue, f"{web.url}/café?q=ü").title.plain == "Encoded"


def test_a_wrong_section_or_manifest_fetches_nothing(http_server, issue):
    web = serve(http_server, {"/p": html_reply(page())})
    assert run("add", issue, f"{web.url}/p", "--section", "nope", "--allow-private").exit_code == 2
    manifest = issue / "issue.yaml"
    manifest.write_text(ISSUE.replace("  - kind: links", "  - just a string\n  - kind: links"))
    assert run("add", issue, f"{web.url}/p", "--section", "Links", "--allow-private").exit_code == 0
    not_a_list = ISSUE.replace(
        "    items:\n      - text: A link.", "    items: oops\n    x:\n      - text:"
    )
    manifest.write_text(not_a_list)
    result = run("add", issue, f"{web.url}/p", "--section", "Links", "--allow-private")
    assert result.exit_code == 2 and "not a list" in result.output, result.output
    assert web.requests == [("GET", "/p")]  # only the one add that could succeed fetched


# ------------------------------------------------------------------ TLS to the checked address


@pytest.fixture
def tls_server(ca):
    """An HTTPS server on 127.0.0.1 whose certificate names only ``localhost``."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Host", ""))
            body = page("Over TLS")
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


def test_tls_checks_the_name_while_connecting_to_the_checked_address(
    tls_server, cafile, issue, monkeypatch
):
    port, hosts = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cafile))
    assert add_ok(issue, f"https://localhost:{port}/").title.plain == "Over TLS"
    assert hosts == [f"localhost:{port}"]
    line = one_line_error(run("add", issue, f"https://127.0.0.1:{port}/", "--allow-private"))
    assert "certificate is not valid" in line, line
