"""Which worker of a ``quiver serve`` holds a connection, read from /proc."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from tests.support.process import parent_pid
from tests.support.proxy import Client


def owners(ends: set[tuple[int, int]], master: int) -> set[int]:
    """The worker processes (children of ``master``) holding TCP sockets with these
    (local port, remote port) ends: which workers served which connections."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(end.split(":")[1], 16) for end in fields[1:3])
        if (local, remote) in ends:
            inodes.add(f"socket:[{fields[9]}]")
    found = set()
    for name in os.listdir("/proc"):
        # (a process may end while it is looked at: it is then none of the workers)
        with contextlib.suppress(OSError):
            if name.isdigit() and parent_pid(int(name)) == master:
                for fd in Path("/proc", name, "fd").iterdir():
                    with contextlib.suppress(OSError):
                        if os.readlink(fd) in inodes:
                            found.add(int(name))
    return found


@contextlib.contextmanager
def connections(port: int, count: int, *, timeout: float = 10.0) -> Iterator[list[Client]]:
    """``count`` client connections to ``port``, all closed at the end."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(Client(port, timeout=timeout)) for _ in range(count)]


def serving_workers(clients: list[Client], port: int, master: int) -> set[int]:
    """The workers of the gateway (master pid ``master``, on ``port``) that accepted
    these clients' connections (still open)."""
    return owners({(port, client.sock.getsockname()[1]) for client in clients}, master)


def burst(clients: list[Client], path: str = "/") -> list[int]:
    """One request on each client at once (so the kernel spreads them over the
    workers); their statuses, in the clients' order."""
    statuses = [0] * len(clients)
    start = threading.Barrier(len(clients))

    def one(index: int) -> None:
        start.wait()
        statuses[index] = clients[index].request("GET", path).status

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return statuses
