"""Passwords of user accounts: scrypt (RFC 7914), so that every guess costs time and memory.

A password is stored as ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (salt and hash in
base64), with n = 2**15, r = 8, p = 1 and a 16-byte salt: about 32 MiB and some tens
of milliseconds per check, which is what makes a stolen table slow to guess through.
The parameters are read back from each hash, so raising them later leaves older
hashes working.  Checking compares digests with :func:`hmac.compare_digest`.

Run both functions off the event loop.  A password is never logged or kept in an
exception's message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from quiver.errors import AccountError

MIN_LENGTH = 12
#: a password longer than this is refused rather than hashed (scrypt hashes any length,
#: but nobody types more, and a megabyte-long one is only a way to spend our CPU)
MAX_LENGTH = 1024
N, R, P = 2**15, 8, 1
_SALT_BYTES, _HASH_BYTES = 16, 32
#: the most memory a stored hash may ask scrypt for; a larger n or r is refused
_MAX_MEMORY = 128 * 1024 * 1024


class WeakPassword(AccountError):
    """The password is too short (or absurdly long)."""

    field = "password"


def check_password(password: str) -> None:
    """Raise :class:`WeakPassword` unless ``password`` is long enough to keep."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"Use at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"Use at most {MAX_LENGTH} characters.")


def hash_password(password: str) -> str:
    """The stored form of ``password`` (after :func:`check_password`), with a new salt."""
    check_password(password)
    salt = os.urandom(_SALT_BYTES)
    digest = _scrypt(password.encode(), salt, N, R, P, _HASH_BYTES)
    encoded = (base64.b64encode(part).decode() for part in (salt, digest))
    return "scrypt${}${}${}${}${}".format(N, R, P, *encoded)


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from; False for a malformed
    hash rather than an error (a damaged row must not sign anybody in)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        cost = int(n), int(r), int(p)
        salt_bytes, digest_bytes = base64.b64decode(salt), base64.b64decode(digest)
    except (ValueError, binascii.Error):
        return False
    if scheme != "scrypt" or 128 * cost[0] * cost[1] > _MAX_MEMORY or not digest_bytes:
        return False
    if len(password) > MAX_LENGTH:  # never one that was kept
        return False
    try:
        derived = _scrypt(password.encode(), salt_bytes, *cost, len(digest_bytes))
    except ValueError:  # parameters OpenSSL refuses
        return False
    return hmac.compare_digest(derived, digest_bytes)


#: the hash of 32 random bytes nobody kept, with the same parameters as every new hash:
#: what an unknown email's attempt is checked against, so that it takes as long as a
#: known one's and the time of an answer does not tell whether an account exists
DUMMY_HASH = (
    "scrypt$32768$8$1$YsI/iU7sF21W04kk4wUGQQ==$c0D8uUWpTYQsrKh0JH4nT57nVgeOBDO4qgWFwG1NXU8="
)


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, size: int) -> bytes:
    # OpenSSL needs 128*r*(n + p + 2) bytes; its default cap (32 MiB) is below that
    maxmem = 128 * r * (n + p + 2) + 1024 * 1024
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=size)
