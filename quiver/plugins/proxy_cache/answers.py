"""Answering from an entry: the stored response, or 304 to a conditional request."""

from __future__ import annotations

from quiver.errors import Answer
from quiver.plugins.proxy_cache.directives import http_date
from quiver.plugins.proxy_cache.entry import Entry
from quiver.plugins.proxy_cache.visit import LABELS, Label


class Answers:
    """Renders answers for one plugin config: the status header is pre-rendered."""

    __slots__ = ("hit", "labels")

    def __init__(self, status_header: str) -> None:
        name = status_header.encode()
        self.labels: dict[Label, bytes] = {
            label: (name + b": " + label.encode() + b"\r\n") if name else b"" for label in LABELS
        }
        self.hit = self.labels["HIT"]

    def header(self, label: Label) -> bytes:
        """The status field alone (b"" when the header is turned off)."""
        return self.labels[label]

    def of(
        self,
        entry: Entry,
        age: float,
        label: Label,
        validators: tuple[bytes | None, bytes | None],
    ) -> Answer:
        """The entry as an answer; a 304 when ``validators`` (the client's If-None-Match
        and If-Modified-Since) match it (RFC 9111 §4.3.2)."""
        if validators != (None, None) and entry.status == 200 and matches(entry, *validators):
            stated = b"Age: %d\r\n%s" % (int(age), self.labels[label])
            return Answer(304, head=entry.not_modified_head() + stated)
        head = entry.head_at(int(age), self.labels[label])
        return Answer(entry.status, head=head, body=entry.body)


def matches(entry: Entry, if_none_match: bytes | None, if_modified_since: bytes | None) -> bool:
    """Whether the client's conditions say it has this response already: If-None-Match
    by weak comparison (RFC 9110 §13.1.2), else If-Modified-Since (§13.1.3)."""
    if if_none_match is not None:
        etag = entry.get(b"etag")
        if etag is None:
            return False
        wanted = if_none_match.strip()
        if wanted == b"*":
            return True
        mine = etag.strip().removeprefix(b"W/")
        return any(tag.strip().removeprefix(b"W/") == mine for tag in wanted.split(b","))
    if if_modified_since is not None:
        since = http_date(if_modified_since)
        modified = http_date(entry.get(b"last-modified") or entry.get(b"date"))
        return since is not None and modified is not None and modified <= since
    return False
