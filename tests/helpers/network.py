"""The guard that keeps the tests on this machine: connections only to loopback addresses."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


class NetworkBlocked(RuntimeError):
    """A test tried to reach another machine."""


def is_loopback(address: object) -> bool:
    """Whether a socket address stays on this machine (a host name counts as leaving it)."""
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


def _refuse(address: object) -> None:
    raise NetworkBlocked(f"tests must not use the network: connection to {address!r} refused")


@contextmanager
def loopback_only() -> Iterator[None]:
    """Refuse every connection except to 127.0.0.0/8, ::1 and localhost while it is open."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_create_connection = socket.create_connection

    def connect(self: socket.socket, address: Any) -> None:
        if not is_loopback(address):
            _refuse(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not is_loopback(address):
            _refuse(address)
        return real_connect_ex(self, address)

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        if not is_loopback(address):
            _refuse(address)
        return real_create_connection(address, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket.socket, "connect_ex", connect_ex)
        patch.setattr(socket, "create_connection", create_connection)
        yield
