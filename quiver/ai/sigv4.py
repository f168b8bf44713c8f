"""AWS Signature Version 4 for request headers (what Bedrock calls need).

    headers = sign("POST", url, {"Content-Type": "application/json"}, body,
                   region="us-east-1", service="bedrock", access_key=key_id,
                   secret_key=secret, now=datetime.now(UTC))

returns ``Authorization``, ``X-Amz-Date``, ``X-Amz-Content-Sha256`` (and
``X-Amz-Security-Token`` with temporary credentials) to add to the request.  The signed
headers are ``host`` (taken from the URL unless given), every header passed in, and
``x-amz-date`` (and the token): hop-by-hop headers that a proxy may rewrite should not
be passed.  ``url`` is the URL as sent on the wire, its path already percent-encoded; as
the specification asks for every service but S3, the canonical URI encodes each path
segment once more (so the ``%3A`` of a Bedrock model id signs as ``%253A``).

Signing keys are derived once per (secret, day, region, service) and kept in a small
cache: an HMAC chain per request is what dominates the signer's cost otherwise.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import quote, unquote, urlsplit

__all__ = ["EMPTY_SHA256", "sign"]

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_ALGORITHM = "AWS4-HMAC-SHA256"


@lru_cache(maxsize=64)
def _signing_key(secret_key: str, day: str, region: str, service: str) -> bytes:
    key = hmac.digest(("AWS4" + secret_key).encode(), day.encode(), "sha256")
    key = hmac.digest(key, region.encode(), "sha256")
    key = hmac.digest(key, service.encode(), "sha256")
    return hmac.digest(key, b"aws4_request", "sha256")


def _canonical_uri(path: str, service: str) -> str:
    if not path:
        return "/"
    if service == "s3":
        return quote(unquote(path), safe="/~")
    # RFC 3986 unreserved characters stay, everything else (the "%" of an escape too) is
    # encoded: the path of the wire, encoded a second time
    return quote(path, safe="/~")


def _canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = []
    for item in query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append(
            (
                quote(unquote(name.replace("+", " ")), safe="-_.~"),
                quote(unquote(value.replace("+", " ")), safe="-_.~"),
            )
        )
    pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs)


def sign(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    region: str,
    service: str,
    access_key: str,
    secret_key: str,
    session_token: str | None = None,
    now: datetime.datetime,
) -> dict[str, str]:
    """The headers that authenticate this request (to add to ``headers``)."""
    parts = urlsplit(url)
    amz_date = now.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    payload_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256

    signed: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        # a header given twice is signed as its values joined with commas
        value = " ".join(value.split())
        signed[key] = f"{signed[key]},{value}" if key in signed else value
    if "host" not in signed:
        signed["host"] = parts.netloc
    signed["x-amz-date"] = amz_date
    if session_token:
        signed["x-amz-security-token"] = session_token
    names = sorted(signed)
    signed_headers = ";".join(names)
    canonical_request = "\n".join(
        (
            method.upper(),
            _canonical_uri(parts.path, service),
            _canonical_query(parts.query),
            "".join(f"{name}:{signed[name]}\n" for name in names),
            signed_headers,
            payload_hash,
        )
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        (_ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest())
    )
    signature = hmac.new(
        _signing_key(secret_key, day, region, service), string_to_sign.encode(), "sha256"
    ).hexdigest()
    out = {
        "Authorization": (
            f"{_ALGORITHM} Credential={access_key}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}"
        ),
        "X-Amz-Date": amz_date,
        "X-Amz-Content-Sha256": payload_hash,
    }
    if session_token:
        out["X-Amz-Security-Token"] = session_token
    return out
