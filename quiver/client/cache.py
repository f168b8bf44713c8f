"""An optional private HTTP cache in memory (RFC 9111, the parts a client needs).

- Only ``GET`` responses are stored, one per URL, and used only for requests
  whose fields named by ``Vary`` match the stored request's (§4.1); ``Vary: *``
  and ``no-store`` on either side are never stored (§3, §5.2.1.5, §5.2.2.5).
- Freshness is explicit only: ``max-age`` (``s-maxage`` is for shared caches),
  else ``Expires`` minus ``Date`` (§4.2.1); no heuristic freshness.  The age is
  the ``Age`` field plus the time spent in this cache (§4.2.3, simplified).
- A stale entry with an ``ETag`` or ``Last-Modified`` is revalidated with
  ``If-None-Match`` / ``If-Modified-Since`` (§4.3.1); a ``304`` freshens it and
  updates its fields (§4.3.4).  ``no-cache`` on the response, or ``no-cache`` /
  ``max-age=0`` on the request, always revalidates.
- A successful unsafe request invalidates the stored response for its URL (§4.4).

Entries beyond ``max_entries`` are evicted oldest first.
"""

from __future__ import annotations

import dataclasses
import email.utils
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from quiver.client.headers import Headers
from quiver.client.models import RequestSpec, Response

#: statuses a cache may store with explicit freshness or validators (RFC 9110 §15.1)
CACHEABLE_STATUSES = frozenset({200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})


def directives(field: str) -> dict[str, str]:
    """The Cache-Control directives of a field value, names lower-cased (§5.2)."""
    found = {}
    for part in field.split(","):
        name, _, value = part.strip().partition("=")
        if name:
            found[name.lower()] = value.strip().strip('"')
    return found


@dataclass(slots=True)
class _Entry:
    response: Response
    stored_at: float
    initial_age: float
    lifetime: float
    vary: tuple[tuple[str, str | None], ...]

    def validators(self) -> dict[str, str]:
        headers, conditions = self.response.headers, {}
        if "etag" in headers:
            conditions["If-None-Match"] = headers["etag"]
        if "last-modified" in headers:
            conditions["If-Modified-Since"] = headers["last-modified"]
        return conditions


@dataclass(frozen=True, slots=True)
class Lookup:
    """A fresh stored response, or a stale one with the conditional fields that
    revalidate it."""

    fresh: Response | None = None
    stale: Response | None = None
    conditions: Mapping[str, str] = dataclasses.field(default_factory=dict)


class ResponseCache:
    def __init__(self, max_entries: int = 512) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()  # the sync client may be shared by threads

    def lookup(self, request: RequestSpec, url: str, now: float) -> Lookup:
        with self._lock:
            entry = self._entries.get(url)
        asked = directives(request.header("cache-control") or "")
        if request.method != "GET" or entry is None or "no-store" in asked:
            return Lookup()
        if any(request.header(name) != value for name, value in entry.vary):
            return Lookup()
        stored = directives(entry.response.headers.get("cache-control", ""))
        must_revalidate = "no-cache" in asked or "no-cache" in stored or asked.get("max-age") == "0"
        age = entry.initial_age + (now - entry.stored_at)
        if not must_revalidate and age < entry.lifetime:
            return Lookup(fresh=dataclasses.replace(entry.response, from_cache=True))
        conditions = entry.validators()
        return Lookup(stale=entry.response if conditions else None, conditions=conditions)

    def store(self, request: RequestSpec, url: str, response: Response, now: float) -> None:
        if request.method != "GET":
            if response.status < 400 and request.method not in ("HEAD", "OPTIONS", "TRACE"):
                with self._lock:
                    self._entries.pop(url, None)
            return
        asked = directives(request.header("cache-control") or "")
        given = directives(response.headers.get("cache-control", ""))
        vary = [n.strip().lower() for n in response.headers.get("vary", "").split(",") if n.strip()]
        lifetime = _lifetime(response.headers, given)
        has_validator = "etag" in response.headers or "last-modified" in response.headers
        if (
            response.status not in CACHEABLE_STATUSES
            or "no-store" in asked
            or "no-store" in given
            or "*" in vary
            or (lifetime <= 0 and not has_validator)
        ):
            return
        age_field = response.headers.get("age", "").strip()
        age = float(age_field) if age_field.isdigit() else 0.0
        selecting = tuple((name, request.header(name)) for name in vary)
        with self._lock:
            self._entries[url] = _Entry(response, now, age, lifetime, selecting)
            self._entries.move_to_end(url)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def revalidated(
        self, request: RequestSpec, url: str, stale: Response, not_modified: Response, now: float
    ) -> Response:
        """``stale`` freshened by a ``304`` (§4.3.4): its fields updated with the
        304's, and stored again with its age restarted."""
        updated = {name.lower() for name, _ in not_modified.headers.items_raw()}
        kept = [(n, v) for n, v in stale.headers.items_raw() if n.lower() not in updated]
        headers = Headers([*kept, *not_modified.headers.items_raw()])
        freshened = dataclasses.replace(stale, headers=headers)
        self.store(request, url, freshened, now)
        return dataclasses.replace(freshened, from_cache=True)

    def __contains__(self, url: str) -> bool:
        return url in self._entries


def _lifetime(headers: Headers, given: Mapping[str, str]) -> float:
    if given.get("max-age", "").isdigit():
        return float(given["max-age"])
    expires, date = _date(headers.get("expires")), _date(headers.get("date"))
    if expires is not None and date is not None:
        return expires - date
    return 0.0 if "expires" not in headers else -1.0  # an invalid Expires means stale


def _date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
