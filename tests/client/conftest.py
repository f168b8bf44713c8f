"""Every client test runs on both transports: httpx's own and the lean HTTP/1.1 one.

The transport is a constructor default of both clients; each test runs once with
each, so a behaviour (timeouts, retries, typed errors, pacing, auth, cache) that
holds on one and not on the other fails by name."""

from __future__ import annotations

import pytest

from quiver.client import AsyncClient, Client


@pytest.fixture(autouse=True, params=["httpx", "http11"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    for client in (AsyncClient, Client):
        defaults = client.__init__.__kwdefaults__
        assert defaults is not None
        monkeypatch.setitem(defaults, "transport", request.param)
    return str(request.param)
