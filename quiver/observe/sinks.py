"""Where access log lines are written: a stream, a file (rotated), or syslog.

A sink is used by one writer thread only.  ``write`` gets a batch of whole lines.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path
from typing import Protocol

from quiver.config.access_log import FACILITIES, AccessLog, Rotate, Syslog

_INFO = 6  # syslog severity of every line


class Sink(Protocol):
    """What the writer thread writes to (tests put their own here)."""

    def write(self, lines: list[bytes]) -> None:
        """Write whole lines; raise OSError when it cannot."""

    def reopen(self) -> None:
        """Let go of the file and open it again by its name (after SIGUSR1)."""

    def close(self) -> None: ...


def open_sink(settings: AccessLog) -> Sink:
    if settings.to == "stdout":
        return StreamSink(1)
    if settings.to == "stderr":
        return StreamSink(2)
    if settings.to == "syslog":
        return SyslogSink(settings.syslog or Syslog())
    return FileSink(Path(settings.to), settings.rotate)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class StreamSink:
    """Standard output or error: one write per batch."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, lines: list[bytes]) -> None:
        _write_all(self.fd, b"".join(lines))

    def reopen(self) -> None:
        pass

    def close(self) -> None:
        pass


class FileSink:
    """A file opened with O_APPEND, so that the lines of several workers writing it
    never interleave: each batch of whole lines is one write(2) (a partial write
    of a regular file happens only when the disk is full).

    Rotation may be done by the workers themselves (``rotate``): whichever finds
    the file due takes a lock (``<file>.lock``, flock), looks again, and moves the
    files aside; the others notice the file is a new one (its inode changed) and
    open it too.  Or by logrotate without ``copytruncate``: it renames, then sends
    SIGUSR1, and every worker reopens the file by its name.
    """

    def __init__(self, path: Path, rotate: Rotate | None) -> None:
        self.path = path
        self.rotate = rotate
        self.fd = -1
        self.inode = 0
        self.size = 0
        self._open()

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if self.fd >= 0:
            os.close(self.fd)
        self.fd = fd
        stat = os.fstat(fd)
        self.inode = stat.st_ino
        self.size = stat.st_size

    def write(self, lines: list[bytes]) -> None:
        if self.rotate is not None:
            self._rotate_if_due()
        data = b"".join(lines)
        _write_all(self.fd, data)
        self.size += len(data)

    def reopen(self) -> None:
        self._open()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # -- rotation -------------------------------------------------------------------

    def _rotate_if_due(self) -> None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._open()  # moved away by someone else: begin the new one
            return
        if stat.st_ino != self.inode:
            self._open()  # another worker rotated it
            stat = os.fstat(self.fd)
        rotate = self.rotate
        assert rotate is not None
        if (rotate.size is not None and stat.st_size >= rotate.size) or (
            rotate.every is not None and int(time.time() // rotate.every) != self._period
        ):
            self._rotate_locked(rotate)

    _period = -1  # the time period this sink last looked at under the lock

    def _rotate_locked(self, rotate: Rotate) -> None:
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            now_period = int(time.time() // rotate.every) if rotate.every else -1
            written = os.pread(fd, 32, 0).strip()
            last_period = int(written) if written.isdigit() else None
            try:
                size = os.stat(self.path).st_size
            except FileNotFoundError:
                size = 0
            if rotate.every is not None and last_period is None:
                last_period = now_period  # the first look: the file belongs to this period
                self._remember(fd, now_period)
            due = (rotate.size is not None and size >= rotate.size) or (
                last_period is not None and last_period < now_period
            )
            if due and size > 0:
                self._shift(rotate.keep)
                if rotate.every is not None:
                    self._remember(fd, now_period)
            self._period = now_period
            self._open()
        finally:
            os.close(fd)  # (closing releases the lock)

    @staticmethod
    def _remember(fd: int, period: int) -> None:
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d\n" % period, 0)

    def _shift(self, keep: int) -> None:
        """file.(keep-1) -> file.keep, ..., file -> file.1 (the oldest beyond goes)."""

        def numbered(n: int) -> Path:
            return self.path.with_name(f"{self.path.name}.{n}")

        numbered(keep).unlink(missing_ok=True)
        for n in range(keep - 1, 0, -1):
            if numbered(n).exists():
                numbered(n).rename(numbered(n + 1))
        self.path.rename(numbered(1))


class SyslogSink:
    """RFC 3164 lines over a Unix datagram socket or UDP, one datagram a line."""

    def __init__(self, settings: Syslog) -> None:
        index = FACILITIES.index(settings.facility)
        code = index if index < 12 else 16 + index - 12
        self.prefix = b"<%d>" % (code * 8 + _INFO)
        self.tag = f" {socket.gethostname()} {settings.tag}[{os.getpid()}]: ".encode()
        self.address: str | tuple[str, int]
        if settings.address.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.address = settings.address
        else:
            host, _, port = settings.address.rpartition(":")
            host = host.strip("[]")
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
            self.address = (host, int(port))

    def write(self, lines: list[bytes]) -> None:
        stamp = time.strftime("%b %e %H:%M:%S").encode()
        head = self.prefix + stamp + self.tag
        for line in lines:
            self.sock.sendto(head + line.rstrip(b"\n"), self.address)

    def reopen(self) -> None:
        pass

    def close(self) -> None:
        self.sock.close()
