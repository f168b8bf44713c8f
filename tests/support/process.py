"""Running ``quiver`` as a real subprocess: the CLI, the supervisor and its workers.

:class:`QuiverProcess` starts ``quiver serve`` (or any other command), collects
its stderr line by line on a thread, waits for log lines with a bounded timeout
and always stops the whole process group at the end, so a failing test never
leaves a proxy or a worker behind.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

QUIVER = [sys.executable, "-m", "quiver.cli"]
LISTENING = re.compile(r"proxy listening on (https?)://(\[[^\]]+\]|[^:\s]+):(\d+)")
WORKER_STARTED = re.compile(r"worker (\d+) started")
WORKER_EXITED = re.compile(r"worker (\d+) exited")
START_TIMEOUT = 20.0


def run_quiver(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str | None] | None = None,
    timeout: float = 30.0,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a short ``quiver`` command to completion and capture its output; ``stdin``
    is its standard input (with no terminal, as in a script: getpass reads it then)."""
    return subprocess.run(
        [*QUIVER, *args],
        cwd=cwd,
        env=_environment(env),
        input=stdin,
        start_new_session=stdin is not None,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_config(directory: Path, text: str, name: str = "quiver.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def catch_all_config(
    target_url: str, *, listen: str = "127.0.0.1:0", workers: int | None = None
) -> str:
    """Config text routing every path to its one target, ``backend`` at ``target_url``."""
    workers_setting = f"workers: {workers}\n" if workers is not None else ""
    return f"listen: {listen}\n{workers_setting}" + textwrap.dedent(
        f"""\
        targets:
          - name: backend
            url: {target_url}
        routes:
          - name: all
            paths: ["/"]
            target: backend
        """
    )


def _environment(extra: dict[str, str | None] | None) -> dict[str, str]:
    """The test's environment with ``extra`` applied; a None value removes the variable."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    for name, value in (extra or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


class QuiverProcess:
    """One ``quiver`` subprocess in its own process group, its stderr collected."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        cwd: Path | None = None,
        env: dict[str, str | None] | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        """``quiver ARGS``, or ``command`` as given when there is one."""
        self.args = list(args)
        self.proc = subprocess.Popen(
            list(command) if command is not None else [*QUIVER, *self.args],
            cwd=cwd,
            env=_environment(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its workers share the group: one killpg stops all
        )
        self._lines: list[str] = []
        self._stdout: list[str] = []
        self._changed = threading.Condition()
        self._eof = False
        self._readers = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        self.port = 0
        self.scheme = "http"

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stderr(self) -> str:
        with self._changed:
            return "".join(self._lines)

    @property
    def stdout(self) -> str:
        return "".join(self._stdout)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._stdout.append(line)

    def wait_for(
        self, pattern: re.Pattern[str] | str, *, timeout: float = START_TIMEOUT, count: int = 1
    ) -> list[re.Match[str]]:
        """The first ``count`` matches of ``pattern`` in stderr, waiting for them if needed."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                matches = [m for line in self._lines for m in [regex.search(line)] if m]
                if len(matches) >= count:
                    return matches[:count]
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    state = "exited" if self._eof else f"still running after {timeout:.0f}s"
                    raise AssertionError(
                        f"quiver {' '.join(self.args)} {state} without logging "
                        f"{count} x {regex.pattern!r}; stderr:\n{''.join(self._lines)}"
                    )
                self._changed.wait(left)

    def wait_listening(self, timeout: float = START_TIMEOUT) -> int:
        """Port from ``proxy listening on ...``, once a connection to it is accepted."""
        [match] = self.wait_for(LISTENING, timeout=timeout)
        self.scheme = match.group(1)
        self.port = int(match.group(3))
        # With --workers the master logs the address it reserved before any
        # worker listens on it: wait until one accepts.
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self.port
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"quiver logged port {self.port} but does not accept on it; "
                        f"stderr:\n{self.stderr}"
                    ) from None
                time.sleep(0.02)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 20.0) -> int:
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then the exit code (SIGKILL to the group if it does not stop in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def close(self) -> None:
        """Stop the process and anything left in its group (forked workers included)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        self.kill()  # the group may outlive the master: orphaned workers
        for reader in self._readers:
            reader.join(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> QuiverProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def serving(
    config: Path | None,
    *extra_args: str,
    cwd: Path | None = None,
    env: dict[str, str | None] | None = None,
    timeout: float = START_TIMEOUT,
) -> Iterator[QuiverProcess]:
    """``quiver serve [-c config] [extra_args]``, yielded once it accepts connections."""
    args = ["serve"]
    if config is not None:
        args += ["-c", str(config)]
    args += extra_args
    with QuiverProcess(args, cwd=cwd, env=env) as proc:
        proc.wait_listening(timeout)
        yield proc


def process_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            state = file.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as file:
        return int(file.read().rsplit(")", 1)[1].split()[1])


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` from /proc (VmRSS)."""
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise LookupError(f"no VmRSS for process {pid}")
