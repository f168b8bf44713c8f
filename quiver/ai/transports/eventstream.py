"""The AWS event stream (``application/vnd.amazon.eventstream``): a decoder and an encoder.

Bedrock's ConverseStream answers with this binary framing. Each message is::

    total length (u32) | headers length (u32) | prelude CRC32 (u32)
    headers | payload | message CRC32 (u32, over everything before it)

and each header is ``name length (u8) | name | type (u8) | value``, the value typed as
bool true/false (0/1, no bytes), byte (2), short (3), int (4), long (5), bytes (6, u16
length), string (7, u16 length), timestamp (8, i64 milliseconds) or uuid (9, 16 bytes).
All integers are big-endian.  The decoder takes chunks cut anywhere and raises
:class:`EventStreamError` on a bad CRC or an impossible length: a corrupt stream cannot
be resynchronised, so the caller drops it.
"""

from __future__ import annotations

import datetime
import struct
import uuid
from binascii import crc32
from collections.abc import Mapping
from typing import NamedTuple

__all__ = ["EventStreamDecoder", "EventStreamError", "HeaderValue", "Message", "encode"]

HeaderValue = bool | int | bytes | str | datetime.datetime | uuid.UUID

_PRELUDE = struct.Struct(">III")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_MIN_LENGTH = 16  # prelude (12) + message CRC (4)
MAX_MESSAGE = 16 * 1024 * 1024  # the service limit on one message
MAX_HEADERS = 128 * 1024
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


class EventStreamError(ValueError):
    """The bytes are not a valid event stream (bad checksum, length or header)."""


class Message(NamedTuple):
    """One decoded message: its headers (``:event-type``, ``:message-type``...) and payload."""

    headers: dict[str, HeaderValue]
    payload: bytes


class EventStreamDecoder:
    """Turns event-stream bytes into :class:`Message` values; one decoder per stream."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        """The messages completed by ``data`` (possibly none)."""
        buffer = self._buffer
        buffer += data
        messages: list[Message] = []
        start = 0
        end = len(buffer)
        view = memoryview(buffer)
        try:
            while end - start >= 12:
                total, headers_length, prelude_crc = _PRELUDE.unpack_from(buffer, start)
                if crc32(view[start : start + 8]) != prelude_crc:
                    raise EventStreamError("event stream prelude checksum mismatch")
                if total < _MIN_LENGTH or total > MAX_MESSAGE:
                    raise EventStreamError(f"event stream message length {total} out of range")
                if headers_length > MAX_HEADERS or headers_length > total - _MIN_LENGTH:
                    raise EventStreamError(f"event stream headers length {headers_length} invalid")
                if end - start < total:
                    break
                (message_crc,) = _U32.unpack_from(buffer, start + total - 4)
                if crc32(view[start : start + total - 4]) != message_crc:
                    raise EventStreamError("event stream message checksum mismatch")
                headers_start = start + 12
                payload_start = headers_start + headers_length
                messages.append(
                    Message(
                        _decode_headers(bytes(view[headers_start:payload_start])),
                        bytes(view[payload_start : start + total - 4]),
                    )
                )
                start += total
        finally:
            view.release()
        if start:
            del buffer[:start]
        return messages

    @property
    def pending(self) -> int:
        """Bytes received that do not make a whole message yet."""
        return len(self._buffer)


def _decode_headers(raw: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    position = 0
    length = len(raw)
    try:
        while position < length:
            name_length = raw[position]
            position += 1
            name = raw[position : position + name_length].decode("utf-8")
            position += name_length
            kind = raw[position]
            position += 1
            value: HeaderValue
            if kind == 0:
                value = True
            elif kind == 1:
                value = False
            elif kind == 2:
                (value,) = _I8.unpack_from(raw, position)
                position += 1
            elif kind == 3:
                (value,) = _I16.unpack_from(raw, position)
                position += 2
            elif kind == 4:
                (value,) = _I32.unpack_from(raw, position)
                position += 4
            elif kind == 5:
                (value,) = _I64.unpack_from(raw, position)
                position += 8
            elif kind in (6, 7):
                (size,) = _U16.unpack_from(raw, position)
                position += 2
                data = raw[position : position + size]
                if len(data) != size:
                    raise EventStreamError("event stream header value truncated")
                position += size
                value = data.decode("utf-8") if kind == 7 else data
            elif kind == 8:
                (millis,) = _I64.unpack_from(raw, position)
                position += 8
                value = _EPOCH + datetime.timedelta(milliseconds=millis)
            elif kind == 9:
                data = raw[position : position + 16]
                if len(data) != 16:
                    raise EventStreamError("event stream header value truncated")
                value = uuid.UUID(bytes=data)
                position += 16
            else:
                raise EventStreamError(f"event stream header type {kind} unknown")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError("event stream headers malformed") from exc
    return headers


def _encode_header(name: str, value: HeaderValue) -> bytes:
    raw_name = name.encode("utf-8")
    head = bytes((len(raw_name),)) + raw_name
    if value is True:
        return head + b"\x00"
    if value is False:
        return head + b"\x01"
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return head + b"\x04" + _I32.pack(value)
        return head + b"\x05" + _I64.pack(value)
    if isinstance(value, bytes):
        return head + b"\x06" + _U16.pack(len(value)) + value
    if isinstance(value, str):
        data = value.encode("utf-8")
        return head + b"\x07" + _U16.pack(len(data)) + data
    if isinstance(value, datetime.datetime):
        millis = (value - _EPOCH) // datetime.timedelta(milliseconds=1)
        return head + b"\x08" + _I64.pack(millis)
    return head + b"\x09" + value.bytes


def encode(headers: Mapping[str, HeaderValue], payload: bytes) -> bytes:
    """One message: ``headers`` typed by their Python type (int -> int32, or int64 if wider)."""
    raw_headers = b"".join(_encode_header(name, value) for name, value in headers.items())
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += _U32.pack(crc32(prelude))
    message = prelude + raw_headers + payload
    return message + _U32.pack(crc32(message))
