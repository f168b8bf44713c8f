"""AWS Signature Version 4, written independently for the Bedrock mock to check Quiver.

:func:`verify` recomputes the signature of a received request from its method, the path
and query exactly as sent, the headers it names as signed and the body's SHA-256, and
says what is wrong, or None.  :func:`sign` is the same computation from the client's
side, for tests that call the mock directly.  The canonical path of every service but
S3 encodes each segment once more (a ``%3A`` in a model id is signed as ``%253A``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*"
    r"SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$"
)
SKEW = timedelta(minutes=5)
UNKNOWN_KEY = "The security token included in the request is invalid."


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signature(
    secret_key: str,
    method: str,
    target: str,
    headers: dict[str, str],
    signed: list[str],
    payload_hash: str,
    amz_date: str,
    region: str,
    service: str,
) -> str:
    """Hex signature of a request; ``headers`` lowercased, ``target`` as on the wire."""
    parts = urlsplit(target)
    path = quote(parts.path or "/", safe="/-_.~")
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(parse_qsl(parts.query, keep_blank_values=True))
    )
    canonical_headers = "".join(
        f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed
    )
    canonical = "\n".join([method, path, query, canonical_headers, ";".join(signed), payload_hash])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(("AWS4" + secret_key).encode(), amz_date[:8])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def key_id(headers: dict[str, str]) -> str | None:
    """The access key id a request's Authorization names, if it is SigV4's."""
    match = AUTHORIZATION.match(headers.get("authorization", ""))
    return match.group(1) if match else None


def verify(
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    service: str,
    session_token: str | None = None,
    now: datetime | None = None,
) -> str | None:
    """None when the request is signed right; else the reason, as AWS would give it."""
    authorization = headers.get("authorization")
    if authorization is None:
        return "Missing Authentication Token"
    match = AUTHORIZATION.match(authorization)
    if match is None:
        return f"Authorization header is malformed: {authorization}"
    key_id, date, scope_region, scope_service, signed_text, given = match.groups()
    if key_id != access_key:
        return UNKNOWN_KEY
    if scope_region != region or scope_service != service:
        return f"Credential should be scoped to a valid region and service ({region}/{service})."
    signed = signed_text.split(";")
    if "host" not in signed or "x-amz-date" not in signed or signed != sorted(signed):
        return "'Host' and 'X-Amz-Date' must be signed, in sorted order."
    amz_date = headers.get("x-amz-date", "")
    if amz_date[:8] != date:
        return "Date in Credential scope does not match YYYYMMDD of X-Amz-Date"
    try:
        moment = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "X-Amz-Date must be in the ISO8601 Long Format"
    if abs((now or datetime.now(UTC)) - moment) > SKEW:
        return "Signature expired: the request time is too far from the server's time."
    if session_token is not None and (
        headers.get("x-amz-security-token") != session_token or "x-amz-security-token" not in signed
    ):
        return UNKNOWN_KEY
    payload_hash = hashlib.sha256(body).hexdigest()
    claimed = headers.get("x-amz-content-sha256")
    if claimed is not None and claimed != payload_hash:
        return "The provided 'x-amz-content-sha256' header does not match what was computed."
    expected = signature(
        secret_key, method, target, headers, signed, payload_hash, amz_date, region, service
    )
    if not hmac.compare_digest(expected, given):
        return (
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details."
        )
    return None


def sign(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    region: str,
    service: str,
    now: datetime,
    session_token: str | None = None,
) -> dict[str, str]:
    """The headers to add (Authorization, X-Amz-Date, X-Amz-Content-Sha256) to sign a request."""
    parts = urlsplit(url)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    payload_hash = hashlib.sha256(body).hexdigest()
    lowered = {k.lower(): v for k, v in headers.items()}
    lowered.update(
        {"host": parts.netloc, "x-amz-date": amz_date, "x-amz-content-sha256": payload_hash}
    )
    if session_token is not None:
        lowered["x-amz-security-token"] = session_token
    signed = sorted(lowered)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    value = signature(
        secret_key, method, target, lowered, signed, payload_hash, amz_date, region, service
    )
    credential = f"{access_key}/{amz_date[:8]}/{region}/{service}/aws4_request"
    added = {"X-Amz-Security-Token": session_token} if session_token is not None else {}
    return {
        **added,
        "Authorization": (
            f"{ALGORITHM} Credential={credential}, SignedHeaders={';'.join(signed)}, "
            f"Signature={value}"
        ),
        "X-Amz-Date": amz_date,
        "X-Amz-Content-Sha256": payload_hash,
    }
