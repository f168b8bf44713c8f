"""What the cache keeps: a stored response (``Entry``) or the Vary names of a key
(``Variants``), and their bytes for stores that keep bytes (Redis)."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from quiver.http.fields import FRAMING_AND_HOP_BY_HOP, reason_phrase

#: response fields never stored: hop-by-hop (RFC 9110 §7.6.1), framing, and those
#: each answer states anew (Age is computed, X-Request-ID is the request's own)
UNSTORED = FRAMING_AND_HOP_BY_HOP | {b"age", b"x-request-id"}
#: the fields a 304 answer carries (RFC 9110 §15.4.5)
NOT_MODIFIED_FIELDS = frozenset(
    {b"cache-control", b"content-location", b"date", b"etag", b"expires", b"vary"}
)


@dataclass(slots=True)
class Entry:
    """A stored response and what its freshness was computed from (RFC 9111 §4.2)."""

    status: int
    fields: list[tuple[bytes, bytes]]
    body: bytes
    stored_at: float  # response_time, seconds since the epoch
    initial_age: float  # corrected_initial_age (§4.2.3)
    lifetime: float  # freshness lifetime (§4.2.1)
    vary: tuple[bytes, ...] = ()  # selecting header names, lowercase, sorted
    revalidate: bool = False  # no-cache: validated before every use (§5.2.2.4)
    must_revalidate: bool = False  # never served stale (§5.2.2.2, §5.2.2.8)
    stale_if_error: float = 0.0  # seconds it may serve past freshness when the node fails
    head: bytes = field(default=b"", repr=False)  # status line, fields, Content-Length
    #: until when (epoch seconds) it may answer a request that asks nothing special
    plain_until: float = field(default=0.0, repr=False)
    #: the last head answered: (age in whole seconds, status field, head with Age)
    said: tuple[int, bytes, bytes] = field(default=(-1, b"", b""), repr=False)

    def __post_init__(self) -> None:
        if not self.head:
            self.render()
        fresh_until = self.stored_at + self.lifetime - self.initial_age
        self.plain_until = -1.0 if self.revalidate else fresh_until

    def head_at(self, age: int, status_field: bytes) -> bytes:
        """The head with ``Age: age`` and ``status_field``; the last one is kept, as
        most answers in a row come within the same second."""
        said = self.said
        if said[0] == age and said[1] is status_field:
            return said[2]
        head = b"%sAge: %d\r\n%s" % (self.head, age, status_field)
        self.said = (age, status_field, head)
        return head

    def render(self) -> None:
        """Render the answer's head once (the body may be set later: call again)."""
        status = self.status
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status))]
        lines += (b"%s: %s\r\n" % pair for pair in self.fields)
        if status != 204 and status != 304:
            lines.append(b"Content-Length: %d\r\n" % len(self.body))
        self.head = b"".join(lines)

    def get(self, name: bytes) -> bytes | None:
        values = [value for key, value in self.fields if key.lower() == name]
        return b", ".join(values) if values else None

    def age(self, now: float) -> float:
        """current_age (§4.2.3): the corrected initial age plus the time resident."""
        return self.initial_age + max(0.0, now - self.stored_at)

    @property
    def size(self) -> int:
        """What it costs a memory store, roughly: body, head, bookkeeping."""
        return len(self.body) + len(self.head) + 256

    def not_modified_head(self) -> bytes:
        """The head of a 304 answered from this entry (RFC 9110 §15.4.5)."""
        kept = (pair for pair in self.fields if pair[0].lower() in NOT_MODIFIED_FIELDS)
        return b"HTTP/1.1 304 Not Modified\r\n" + b"".join(b"%s: %s\r\n" % p for p in kept)

    def dumps(self) -> bytes:
        meta = {
            "s": self.status,
            "f": [[name.decode("latin-1"), value.decode("latin-1")] for name, value in self.fields],
            "t": self.stored_at,
            "a": self.initial_age,
            "l": self.lifetime,
            "v": [name.decode("latin-1") for name in self.vary],
            "r": self.revalidate,
            "m": self.must_revalidate,
            "e": self.stale_if_error,
        }
        return orjson.dumps(meta) + b"\n" + self.body


@dataclass(frozen=True, slots=True)
class Variants:
    """Stored under a key whose responses carry Vary: the names that select one."""

    names: tuple[bytes, ...]

    @property
    def size(self) -> int:
        return 128 + sum(len(name) for name in self.names)

    def dumps(self) -> bytes:
        return orjson.dumps({"vary": [name.decode("latin-1") for name in self.names]}) + b"\n"


Stored = Entry | Variants


def loads(data: bytes) -> Stored | None:
    """What ``dumps`` wrote; None for bytes that are not (another version's, damaged)."""
    meta_bytes, _, body = data.partition(b"\n")
    try:
        meta = orjson.loads(meta_bytes)
        if "vary" in meta:
            return Variants(tuple(name.encode("latin-1") for name in meta["vary"]))
        return Entry(
            status=int(meta["s"]),
            fields=[(n.encode("latin-1"), v.encode("latin-1")) for n, v in meta["f"]],
            body=body,
            stored_at=float(meta["t"]),
            initial_age=float(meta["a"]),
            lifetime=float(meta["l"]),
            vary=tuple(name.encode("latin-1") for name in meta["v"]),
            revalidate=bool(meta["r"]),
            must_revalidate=bool(meta["m"]),
            stale_if_error=float(meta["e"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
