"""RFC 9111 rules of a shared cache: what may be stored, for how long it is fresh,
how old it is, and whether it may answer a given request."""

from __future__ import annotations

from dataclasses import dataclass

from quiver.plugins.proxy_cache import directives
from quiver.plugins.proxy_cache.config import HEURISTIC_STATUSES, ProxyCacheConfig
from quiver.plugins.proxy_cache.directives import Directives, http_date
from quiver.plugins.proxy_cache.entry import UNSTORED, Entry
from quiver.plugins.response import ResponseHead


@dataclass(frozen=True, slots=True)
class Rules:
    """The config's part of the rules, read once per plugin instance."""

    statuses: frozenset[int]
    default_ttl: float
    heuristic: float
    heuristic_max: float
    stale_if_error: float

    @classmethod
    def of(cls, config: ProxyCacheConfig) -> Rules:
        return cls(
            frozenset(config.statuses),
            config.default_ttl,
            config.heuristic,
            config.heuristic_max,
            config.stale_if_error,
        )


def refusal(
    rules: Rules, response: ResponseHead, cc: Directives, request_cc: Directives, authorized: bool
) -> str | None:
    """Why the response to a GET may not be stored (RFC 9111 §3), None when it may."""
    if response.status not in rules.statuses:
        return "status"
    if cc.no_store or request_cc.no_store:
        return "no-store"
    if cc.private:
        return "private"  # (a shared cache, §5.2.2.7)
    if authorized and not (cc.public or cc.s_maxage is not None or cc.must_revalidate):
        return "authorization"  # (§3.5)
    if response.get(b"set-cookie") is not None:
        return "set-cookie"  # one client's cookie is never handed to another
    vary = response.get(b"vary")
    if vary is not None and b"*" in vary:
        return "vary"  # (§4.1: Vary: * never matches)
    return None


def explicit(cc: Directives, response: ResponseHead, now: float) -> float | None:
    """The freshness lifetime the response states itself (§4.2.1), None when it
    states none: s-maxage, then max-age, then Expires minus Date.  An Expires that
    is not a valid date means already expired (§5.3)."""
    if cc.s_maxage is not None:
        return float(cc.s_maxage)
    if cc.max_age is not None:
        return float(cc.max_age)
    expires = response.get(b"expires")
    if expires is None:
        return None
    expires_at = http_date(expires)
    if expires_at is None:
        return 0.0
    date = http_date(response.get(b"date"))
    return max(0.0, expires_at - (date if date is not None else now))


def lifetime(rules: Rules, response: ResponseHead, cc: Directives, now: float) -> float | None:
    """The freshness lifetime to store the response with; None when it has none and
    offers no validator either (nothing to gain by storing it)."""
    stated = explicit(cc, response, now)
    if stated is not None:
        return stated
    if response.status not in HEURISTIC_STATUSES and not cc.public:
        return None  # other statuses need explicit freshness (§4.2.2)
    if rules.default_ttl:
        return rules.default_ttl
    if rules.heuristic:
        modified = http_date(response.get(b"last-modified"))
        if modified is not None:
            date = http_date(response.get(b"date")) or now
            return min(rules.heuristic_max, max(0.0, (date - modified) * rules.heuristic))
    has_validator = response.get(b"etag") is not None or response.get(b"last-modified")
    return 0.0 if has_validator else None


def initial_age(response: ResponseHead, request_time: float, response_time: float) -> float:
    """corrected_initial_age (§4.2.3), from the node's Age and Date and our clocks."""
    age_value = 0.0
    age = response.get(b"age")
    if age is not None:
        first = age.split(b",")[0].strip()
        age_value = float(first) if first.isdigit() else 0.0
    date = http_date(response.get(b"date"))
    apparent_age = max(0.0, response_time - date) if date is not None else 0.0
    corrected_age_value = age_value + (response_time - request_time)
    return max(apparent_age, corrected_age_value)


def build(
    rules: Rules,
    response: ResponseHead,
    cc: Directives,
    life: float,
    times: tuple[float, float],
    vary: tuple[bytes, ...],
) -> Entry:
    """An entry for ``response`` (its body comes later); ``times`` are the request
    and response times."""
    request_time, response_time = times
    stale_if_error = rules.stale_if_error if cc.stale_if_error is None else cc.stale_if_error
    # s-maxage implies proxy-revalidate for a shared cache (§5.2.2.10)
    strict = cc.must_revalidate or cc.s_maxage is not None
    return Entry(
        status=response.status,
        fields=[pair for pair in response.fields if pair[0].lower() not in UNSTORED],
        body=b"",
        stored_at=response_time,
        initial_age=initial_age(response, request_time, response_time),
        lifetime=life,
        vary=vary,
        revalidate=cc.no_cache,
        must_revalidate=strict,
        stale_if_error=0.0 if strict else float(stale_if_error),
    )


def refreshed(rules: Rules, entry: Entry, response: ResponseHead, now: float) -> Entry:
    """The entry with the fields of a 304 that validated it (§4.3.4) and freshness
    recomputed from the result; the body stays."""
    updated = {name.lower() for name, _ in response.fields} - UNSTORED
    fields = [pair for pair in entry.fields if pair[0].lower() not in updated]
    fields += [pair for pair in response.fields if pair[0].lower() in updated]
    merged = ResponseHead(b"HTTP/1.1 %d -\r\n\r\n" % entry.status)
    merged.fields = fields
    cc = directives.parse(merged.get(b"cache-control"))
    life = lifetime(rules, merged, cc, now)
    fresh = build(rules, merged, cc, life or 0.0, (now, now), entry.vary)
    fresh.body = entry.body
    fresh.render()
    fresh.initial_age = initial_age(response, now, now)
    return fresh


def usable(entry: Entry, age: float, request_cc: Directives) -> bool:
    """Whether the entry may answer without the node (§4.2, §5.2.1): fresh enough
    for the request, or stale within the request's max-stale when allowed."""
    if entry.revalidate or request_cc.no_cache:
        return False
    left = entry.lifetime - age
    if request_cc.max_age is not None and age > request_cc.max_age:
        return False
    if request_cc.min_fresh is not None and left < request_cc.min_fresh:
        return False
    if left > 0:
        return True
    return (
        request_cc.max_stale is not None
        and not entry.must_revalidate
        and -left <= request_cc.max_stale
    )


def serves_on_error(entry: Entry, age: float) -> bool:
    """Whether a stale entry may stand in for a failed node (RFC 5861 §4)."""
    return not entry.must_revalidate and age - entry.lifetime <= entry.stale_if_error


def worth_keeping(entry: Entry) -> bool:
    """Whether an entry can ever answer: fresh for a while, or with a validator to
    revalidate it, or allowed to stand in for a failing node."""
    return (
        entry.lifetime > entry.initial_age
        or entry.get(b"etag") is not None
        or entry.get(b"last-modified") is not None
        or entry.stale_if_error > 0
    )
