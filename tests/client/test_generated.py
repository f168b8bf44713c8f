"""The sync Client is generated from the async source and offers the same methods."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

from quiver.client import AsyncClient, Client

ROOT = Path(__file__).resolve().parents[2]


def test_the_sync_client_is_generated_from_the_current_async_source() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/unasync.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr + " (run: python scripts/unasync.py)"


def test_both_clients_offer_the_same_methods_with_the_same_parameters() -> None:
    def public(cls: type) -> dict[str, list[str]]:
        renamed = {"aclose": "close", "__aenter__": "__enter__", "__aexit__": "__exit__"}
        return {
            renamed.get(name, name): list(inspect.signature(member).parameters)
            for name, member in vars(cls).items()
            if callable(member) and (not name.startswith("_") or name.endswith("__"))
        }

    assert public(AsyncClient) == public(Client)
    assert inspect.iscoroutinefunction(AsyncClient.send)
    assert not inspect.iscoroutinefunction(Client.send)
