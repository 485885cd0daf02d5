"""Fixtures shared by the build-pipeline tests: real projects written into temp folders.

Everything here writes real files and runs the real code; nothing of ours is
mocked. The one patch is a guard: no test may open a connection that leaves
the machine.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import textwrap
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# The smallest valid project and issue; tests replace parts of them.
PROJECT_YAML = """\
name: Test News
sender:
  name: Test Sender
  address: news@example.org
footer:
  organisation: Test Org
  postal_address: 1 Test Street, Testville
  unsubscribe_url: https://example.org/unsubscribe?t={token}
"""

ISSUE_YAML = """\
subject: Test issue
name: Issue 1
date: 2026-01-08
masthead:
  headline: Hello
sections:
  - kind: announcements
    items:
      - Something happened.
"""


# ------------------------------------------------------------------ the network guard
class NetworkBlocked(RuntimeError):
    """A test tried to reach another machine."""


def _is_loopback(address: object) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths and the like never leave the machine
        return True
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:  # a host name: resolving it would already be network use
        return False


@pytest.fixture(autouse=True, scope="session")
def no_network() -> Iterator[None]:
    """Refuse every connection except to 127.0.0.0/8, ::1 and localhost (sessions-wide guard)."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_create_connection = socket.create_connection

    def refuse(address: object) -> None:
        raise NetworkBlocked(f"tests must not use the network: connection to {address!r} refused")

    def connect(self: socket.socket, address: object) -> None:
        if not _is_loopback(address):
            refuse(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        if not _is_loopback(address):
            refuse(address)
        return real_connect_ex(self, address)

    def create_connection(address: tuple, *args: object, **kwargs: object) -> socket.socket:
        if not _is_loopback(address):
            refuse(address)
        return real_create_connection(address, *args, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "connect_ex", connect_ex)
        patch.setattr(socket, "create_connection", create_connection)
        yield


# ------------------------------------------------------------------ projects in temp folders
ProjectWriter = Callable[..., Path]


@pytest.fixture
def write_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ProjectWriter:
    """Write ``dispatch.yaml`` and ``issues/<slug>/issue.yaml`` into tmp_path; return the issue folder.

    The working folder becomes tmp_path, so problems name the files as a user
    would see them: ``dispatch.yaml`` and ``issues/<slug>/issue.yaml``.
    Text is dedented; bytes are written as they are. ``templates`` maps file
    names to the project's own template overrides.
    """
    monkeypatch.chdir(tmp_path)

    def write(
        issue: str | bytes = ISSUE_YAML,
        config: str | bytes = PROJECT_YAML,
        *,
        slug: str = "test",
        templates: dict[str, str] | None = None,
    ) -> Path:
        _write(tmp_path / "dispatch.yaml", config)
        folder = tmp_path / "issues" / slug
        folder.mkdir(parents=True, exist_ok=True)
        _write(folder / "issue.yaml", issue)
        for name, text in (templates or {}).items():
            _write(tmp_path / "templates" / name, text)
        return folder

    return write


def _write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(textwrap.dedent(content), encoding="utf-8")


# ------------------------------------------------------------------ reading HTML back
class Page(HTMLParser):
    """What html.parser sees in an HTML document: tags, headings, text and attributes."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.headings: list[tuple[int, str]] = []
        self.data: list[str] = []
        self.title = ""
        self._heading: list | None = None
        self._in_title = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if re.fullmatch(r"h[1-6]", tag):
            self._heading = [int(tag[1]), ""]
        self._in_title = self._in_title or tag == "title"

    def handle_endtag(self, tag: str) -> None:
        if self._heading and tag == f"h{self._heading[0]}":
            self.headings.append((self._heading[0], " ".join(self._heading[1].split())))
            self._heading = None
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        self.data.append(data)
        if self._heading:
            self._heading[1] += data
        if self._in_title:
            self.title += data

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]

    @property
    def text(self) -> str:
        """All text, whitespace (and no-break spaces) collapsed."""
        return " ".join("".join(self.data).replace("\xa0", " ").split())
