"""The ``access_log`` setting: where each exchange's line goes, in what form.

A setting of the process, like ``listen``: read when a worker starts (a reload
warns that a change takes effect on restart).  Without the section there is no
access log, as before it existed.
"""

from __future__ import annotations

import re
from typing import Literal, get_args

from pydantic import Field, field_validator, model_validator

from quiver.config.base import Duration, Size, Strict

#: every field an access log line can carry
AccessLogField = Literal[
    "time",
    "request_id",
    "client_ip",
    "method",
    "path",
    "status",
    "route",
    "target",
    "node",
    "consumer",
    "bytes_in",
    "bytes_out",
    "latency_ms",
    "upstream_ms",
    "gateway_ms",
    "retries",
    "cache",
    "answered_by",
    "user_agent",
    "mcp",
    "websocket",
    "plan",
]
#: fields written only when listed: the default line (and the call spool's) stays
#: the one it always was
OPT_IN_FIELDS: tuple[AccessLogField, ...] = ("mcp", "websocket", "plan")
#: the default fields, in the order they are written: every field but the opt-in ones
ACCESS_LOG_FIELDS: tuple[AccessLogField, ...] = tuple(
    field for field in get_args(AccessLogField) if field not in OPT_IN_FIELDS
)
#: syslog facilities in the order of their codes (0-11, then local0-7 at 16-23)
FACILITIES = (
    *("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news"),
    *("uucp", "cron", "authpriv", "ftp"),
    *("local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"),
)
_ADDRESS = re.compile(r"^\[?([^\]]+)\]?:(\d{1,5})$")


class Rotate(Strict):
    """When the file is moved aside (``path.1``, ``path.2``, ...) and a new one begun."""

    size: Size | None = Field(None, description='Rotate once the file reaches this size ("100MB").')
    every: Duration | None = Field(
        None, description='Rotate when this much time has passed ("1d", "1h"), at its boundary.'
    )
    keep: int = Field(7, ge=1, description="How many rotated files are kept.")

    @model_validator(mode="after")
    def _something(self) -> Rotate:
        if self.size is None and self.every is None:
            raise ValueError("rotate needs size, every or both")
        if self.size == 0 or self.every == 0:
            raise ValueError("size and every must be more than 0")
        return self


class Syslog(Strict):
    """Where syslog lines go when ``to: syslog``."""

    address: str = Field(
        "/dev/log",
        description='A Unix datagram socket path, or "host:port" for syslog over UDP.',
    )
    facility: str = Field("local0", description="The syslog facility (local0 ... local7, ...).")
    tag: str = Field("quiver", description="The program name each line carries.")

    @field_validator("facility")
    @classmethod
    def _facility(cls, value: str) -> str:
        if value not in FACILITIES:
            raise ValueError(f"unknown facility {value!r}; known: {', '.join(FACILITIES)}")
        return value

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if not value.startswith("/") and _ADDRESS.match(value) is None:
            raise ValueError(f"expected a socket path or host:port, got {value!r}")
        return value


class AccessLog(Strict):
    """One line per exchange, written off the hot path (docs/observability.md)."""

    to: str = Field(
        description="`stdout`, `stderr`, `syslog`, or a file path (appended to; several "
        "workers share it line by line)."
    )
    format: Literal["json", "text"] = Field(
        "json", description="`json`: one object per line; `text`: readable, for development."
    )
    fields: list[AccessLogField] = Field(
        default_factory=lambda: list(ACCESS_LOG_FIELDS),
        description="Which fields each line carries, in this order (default: all but "
        "`mcp`, `websocket` and `plan`, which are written only when listed).",
    )
    query: bool = Field(False, description="Keep the query string in `path`.")
    sample: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Share of exchanges logged (0 to 1); 5xx answers are always logged.",
    )
    rotate: Rotate | None = Field(
        None, description="Rotate the file by size and/or time (a file path only)."
    )
    queue: int = Field(
        10000,
        ge=1,
        description="Lines waiting to be written, at most; beyond, lines are dropped and "
        "counted (requests never wait for the log).",
    )
    syslog: Syslog | None = Field(None, description="Where to send lines with `to: syslog`.")

    @field_validator("to")
    @classmethod
    def _to(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("expected stdout, stderr, syslog or a file path")
        return value

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: list[AccessLogField]) -> list[AccessLogField]:
        if not value:
            raise ValueError("name at least one field")
        if len(set(value)) != len(value):
            raise ValueError("a field is named twice")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AccessLog:
        stream = self.to in ("stdout", "stderr", "syslog")
        if self.rotate is not None and stream:
            raise ValueError(f"rotate is for a file path, not {self.to}")
        if self.syslog is not None and self.to != "syslog":
            raise ValueError("syslog settings need to: syslog")
        return self
