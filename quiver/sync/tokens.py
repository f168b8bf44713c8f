"""Rotated OAuth2 refresh tokens, kept for the next run in a private file.

A token endpoint that rotates refresh tokens (RFC 9700 §4.14) answers each refresh
with a new one and refuses the old one from then on, so a run must leave the newest
one where the next run finds it. It is kept in a file of its own (by default
``<sources file>.tokens`` beside the sources file), not with the sync state in the
destination: whoever reads the loaded data must not get the API's credentials with
it, and a dry run, which touches no destination, refreshes too.

The file is written whole, atomically, before the client sends anything with the
access token that came with the new refresh token (``RefreshToken(...,
on_refresh_token=...)`` calls :meth:`TokenFile.keep` first): a temporary file
(mode 0600) is written and fsync'd, renamed over the old one, and the directory
fsync'd. A run killed at any point leaves either the old file or the new one.

Each source has its entry, with the SHA-256 of the ``refresh_token`` its sources file
said when the entry was written: a run starts from the kept token only while the
file still says that; a token pasted into the file since wins over the kept one::

    {"version": 1, "sources": {"shop": {"refresh_token": "...", "configured_sha256": "..."}}}

One token file serves one run at a time (as one destination does).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any

import orjson

from quiver.errors import SyncError
from quiver.sync.config import OAuth2RefreshToken, SyncConfig

VERSION = 1


class TokenFile:
    """The kept refresh tokens of one sources file's sources."""

    def __init__(self, path: Path, entries: dict[str, dict[str, str]]) -> None:
        self.path = path
        self.entries = entries

    @classmethod
    def open(cls, config: SyncConfig) -> TokenFile | None:
        """The token file of ``config``, read; None when no source refreshes a token,
        or the config was not read from a file and names no ``token_file``.

        Raises :class:`SyncError` when the file cannot be read or its directory
        written: before a token endpoint has rotated anything."""
        path = config.token_path()
        if path is None or not any(
            isinstance(source.auth, OAuth2RefreshToken) for source in config.sources
        ):
            return None
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise SyncError(f"token file {path}: its directory cannot be written")
        return cls(path, _read(path))

    def refresh_token(self, source: str, configured: str) -> str:
        """The refresh token ``source`` starts with: the kept one while the sources
        file says what it said when that one was kept, else ``configured`` (an entry
        kept for an earlier token is dropped)."""
        entry = self.entries.get(source)
        if entry is None:
            return configured
        if entry["configured_sha256"] == _digest(configured):
            return entry["refresh_token"]
        self._write(source, None)
        return configured

    def keep(self, source: str, configured: str, token: str) -> None:
        """``token`` is ``source``'s refresh token from now on: durable on return."""
        self._write(source, {"refresh_token": token, "configured_sha256": _digest(configured)})

    def _write(self, source: str, entry: dict[str, str] | None) -> None:
        entries = _read(self.path)  # only this source's entry changes
        if entry is None:
            entries.pop(source, None)
        else:
            entries[source] = entry
        self.entries = entries
        document = orjson.dumps({"version": VERSION, "sources": entries})
        try:
            _replace(self.path, document)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise SyncError(f"cannot keep the refresh token in {self.path}: {reason}") from None


def _replace(path: Path, document: bytes) -> None:
    """``path`` holds ``document``, or (killed meanwhile) what it held: never a part."""
    temporary = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()  # left by a run killed while writing it
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        view = memoryview(document)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temporary.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself, through a power loss
    finally:
        os.close(directory)


def _read(path: Path) -> dict[str, dict[str, str]]:
    try:
        document: Any = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SyncError(f"token file {path}: {exc.strerror or type(exc).__name__}") from None
    except orjson.JSONDecodeError:
        document = None
    sources = document.get("sources") if isinstance(document, dict) else None
    if not isinstance(sources, dict) or not all(_entry(e) for e in sources.values()):
        raise SyncError(f"token file {path}: not a file quiver sync wrote; move it away")
    return sources


def _entry(entry: Any) -> bool:
    fields = ("refresh_token", "configured_sha256")
    return isinstance(entry, dict) and all(isinstance(entry.get(f), str) for f in fields)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
