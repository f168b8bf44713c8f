"""AWS event-stream framing (``application/vnd.amazon.eventstream``), written for the mocks.

A message is: total length (4 bytes, big-endian), headers length (4), CRC32 of those
eight bytes (4), the headers, the payload, and the CRC32 of everything before it (4).
A header is its name's length (1) and name, a type byte, and the value; the mocks only
write strings (type 7: a 2-byte length and UTF-8), and :func:`decode` reads every type.
Kept apart from Quiver's own codec on purpose: the mock checks Quiver, not itself.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from typing import Any


def encode(headers: dict[str, str], payload: bytes) -> bytes:
    encoded = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        encoded += bytes([len(raw_name)]) + raw_name + b"\x07"
        encoded += struct.pack(">H", len(raw_value)) + raw_value
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", binascii.crc32(message))


@dataclass
class Message:
    headers: dict[str, Any]
    payload: bytes


def decode(data: bytes) -> list[Message]:
    """Every whole message in ``data`` (checking both CRCs); the rest must be empty."""
    messages = []
    while data:
        total, length, prelude_crc = struct.unpack(">III", data[:12])
        if binascii.crc32(data[:8]) != prelude_crc:
            raise ValueError("prelude CRC mismatch")
        message = data[:total]
        if binascii.crc32(message[:-4]) != struct.unpack(">I", message[-4:])[0]:
            raise ValueError("message CRC mismatch")
        messages.append(Message(_headers(message[12 : 12 + length]), message[12 + length : -4]))
        data = data[total:]
    return messages


def _headers(raw: bytes) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    at = 0
    sizes = {2: 1, 3: 2, 4: 4, 5: 8, 8: 8}
    while at < len(raw):
        size = raw[at]
        name = raw[at + 1 : at + 1 + size].decode()
        at += 1 + size
        kind = raw[at]
        at += 1
        value: Any
        if kind in (0, 1):
            value = kind == 0
        elif kind in sizes:
            value = int.from_bytes(raw[at : at + sizes[kind]], "big", signed=True)
            at += sizes[kind]
        elif kind in (6, 7):
            (count,) = struct.unpack(">H", raw[at : at + 2])
            value = raw[at + 2 : at + 2 + count]
            value = value.decode() if kind == 7 else value
            at += 2 + count
        else:  # 9: uuid
            value = raw[at : at + 16]
            at += 16
        headers[name] = value
    return headers
