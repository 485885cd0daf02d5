"""The DKIM signing process: RSA over digests, on the other core, beside the send.

Why a process rather than a thread: a thread that gets the GIL back after each
OpenSSL signature waits for the event loop to let it go (up to the 5 ms switch
interval while the loop is busy), so one signing thread capped a signed send at
about a third of an unsigned one. A process has its own interpreter; the send
passes it 37 bytes a signature and reads 262 back (docs/performance.md).

Framing, on stdin and stdout, all integers big-endian:
- the keys, once: a count (u32), then each key as a length (u32) and its PKCS#8 DER;
  the worker answers READY when it has loaded them all;
- a request: an id (u32), the key's index (u8) and a SHA-256 digest (32 bytes);
- its answer: the id (u32), the signature's length (u16) and the signature.

Run as ``python -m dispatch_mail.mail.signing_worker``; it ends when stdin closes.
The keys come through the pipe, never the command line or the environment.
"""

from __future__ import annotations

import signal
import struct
import sys
from typing import BinaryIO

REQUEST = struct.Struct(">IB32s")
ANSWER = struct.Struct(">IH")
COUNT = struct.Struct(">I")
READY = b"R"


def key_frames(ders: list[bytes]) -> bytes:
    """The opening frame that hands the worker its keys."""
    return COUNT.pack(len(ders)) + b"".join(COUNT.pack(len(d)) + d for d in ders)


def _read_exactly(stream: BinaryIO, n: int) -> bytes | None:
    data = stream.read(n)
    return data if data is not None and len(data) == n else None


def serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Load the keys, then answer requests until stdin closes; the exit status."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from dispatch_mail.mail.dkim_keys import sign_digest

    head = _read_exactly(stdin, COUNT.size)
    if head is None:
        return 1
    keys = []
    for _ in range(COUNT.unpack(head)[0]):
        size = _read_exactly(stdin, COUNT.size)
        der = _read_exactly(stdin, COUNT.unpack(size)[0]) if size else None
        if der is None:
            return 1
        key = serialization.load_der_private_key(der, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            return 1
        keys.append(key)
    stdout.write(READY)
    stdout.flush()
    while (request := _read_exactly(stdin, REQUEST.size)) is not None:
        ident, index, digest = REQUEST.unpack(request)
        signature = sign_digest(keys[index], digest)
        stdout.write(ANSWER.pack(ident, len(signature)) + signature)
        stdout.flush()
    return 0


def main() -> int:
    # Ctrl-C is the send's to handle: it finishes the messages in flight, which
    # needs their signatures (the send also starts this in a session of its own)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())
