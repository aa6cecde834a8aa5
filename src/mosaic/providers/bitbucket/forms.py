"""``multipart/form-data`` bodies (RFC 7578) for Bitbucket's ``POST /src``.

The shared HTTP base sends raw ``content``; this builds it. File fields carry a ``filename``
parameter — that is how Bitbucket tells a file named ``message`` from the commit message field.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    value: bytes
    filename: str | None = None


def _quoted(value: str) -> str:
    # The WHATWG/RFC 7578 escaping of a quoted parameter: a name can't break out of its quotes.
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def encode(fields: list[Field]) -> tuple[bytes, str]:
    """The body and its ``Content-Type`` (with a boundary that occurs in no value)."""
    boundary = secrets.token_hex(16)
    while any(boundary.encode() in f.value for f in fields):
        boundary = secrets.token_hex(16)
    out = bytearray()
    for f in fields:
        disposition = f'form-data; name="{_quoted(f.name)}"'
        if f.filename is not None:
            disposition += f'; filename="{_quoted(f.filename)}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if f.filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + f.value + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"
