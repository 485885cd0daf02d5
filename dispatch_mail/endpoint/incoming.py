"""Reading what an unsubscribe request sends: where its token is, and its small form body.

Everything here is untrusted input: the body is read up to MAX_BODY bytes and no
further, the form must be exactly one of the few we expect, and the token is
taken from exactly where ``footer.unsubscribe_url`` puts it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qsl, unquote, urlsplit

from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import Scope

from dispatch_mail.errors import UsageError
from dispatch_mail.mail.tokens import token_key_id

TOKEN = "{token}"
MAX_BODY = 4096  # bytes: a one-click body is 26, the page's form about 20
MAX_FIELDS = 4
MAX_SHOWN_SEGMENT = 24  # a path segment longer than this may be a token sent to the wrong path


class BodyTooLarge(Exception):
    """The request body passed MAX_BODY bytes (the answer is 413)."""


@dataclass(frozen=True)
class TokenPlace:
    """Where ``footer.unsubscribe_url`` puts the token: a path segment, or one query parameter."""

    path: str  # the route's path, '{token}' kept when the token is in it (Starlette's syntax)
    query_name: str | None  # the query parameter that holds the token, when it is there

    @classmethod
    def of(cls, url_template: str) -> TokenPlace:
        parts = urlsplit(url_template)
        path = unquote(parts.path) or "/"
        if TOKEN in path:
            return cls(path, None)
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if value == TOKEN:
                return cls(path, name)
        raise UsageError(
            f"footer.unsubscribe_url {url_template!r} has no '{TOKEN}' in its path or as a query "
            "value: the endpoint could not tell who unsubscribes"
        )

    def token(self, request: Request) -> str | None:
        """The request's token: its path segment, or the one value of the query parameter."""
        if self.query_name is None:
            token = request.path_params.get("token")
            return token if isinstance(token, str) else None
        values = request.query_params.getlist(self.query_name)
        return values[0] if len(values) == 1 else None

    def shown(self, scope: Scope) -> str:
        """A path for a log line, its token replaced by a label (tokens are credentials)."""
        path = str(scope.get("path", "?"))
        match = compile_path(self.path)[0].match(path)
        if match is None:  # the webhooks, /healthz, a 404: never the query, nor a long segment
            return "/".join(
                describe_token(part) if len(part) > MAX_SHOWN_SEGMENT else part
                for part in path.split("/")
            )
        if self.query_name is None:
            return self.path.replace(TOKEN, describe_token(match.group("token")))
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        values = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == self.query_name]
        token = values[0] if len(values) == 1 else None
        return f"{self.path}?{self.query_name}={describe_token(token)}"


def describe_token(token: str | None) -> str:
    """``<token KEYID:DIGEST>``: which key it claims and a short digest, never the token itself."""
    if token is None:
        return "<no token>"
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"<token {token_key_id(token) or '?'}:{digest}>"


async def read_body(request: Request) -> bytes:
    """The whole body, at most MAX_BODY bytes; BodyTooLarge as soon as it is longer."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise BodyTooLarge
    return bytes(body)


def form_fields(content_type: str, body: bytes) -> list[tuple[str, str]] | None:
    """The form's (name, value) pairs, urlencoded or multipart (RFC 8058 allows both), or None."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in ("", "application/x-www-form-urlencoded"):
        try:
            text = body.decode("ascii")
            return parse_qsl(text, strict_parsing=True, max_num_fields=MAX_FIELDS) if text else []
        except (UnicodeDecodeError, ValueError):
            return None
    if kind == "multipart/form-data":
        return _multipart_fields(content_type, body)
    return None


def _multipart_fields(content_type: str, body: bytes) -> list[tuple[str, str]] | None:
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        return None
    fields = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes) or part.defects:
            return None
        try:
            fields.append((name, payload.decode("utf-8").strip("\r\n")))
        except UnicodeDecodeError:
            return None
    return fields if len(fields) <= MAX_FIELDS else None
