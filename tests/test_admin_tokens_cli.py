"""`quiver admin token new|list|revoke` on the store, and the tokens working on the API."""

from __future__ import annotations

import re
from pathlib import Path

from quiver.store import open_store
from quiver.store.tokens import authenticate
from tests.support.catalog import built_in
from tests.support.process import run_quiver


def test_a_token_is_made_printed_once_listed_and_revoked(tmp_path: Path) -> None:
    store = str(tmp_path / "quiver.db")
    open_store(store, built_in()).close()
    made = run_quiver("admin", "token", "new", "ci-deploy", "--role", "viewer", "--store", store)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert re.fullmatch(r"qv_[A-Za-z0-9_-]{43}", token)
    assert "shown once" in made.stderr and token not in made.stderr

    opened = open_store(store, built_in())
    try:
        info = authenticate(opened, token)
        assert info is not None and (info.name, info.role, info.team) == (
            "ci-deploy",
            "viewer",
            None,
        )
    finally:
        opened.close()

    listed = run_quiver("admin", "token", "list", "--store", store)
    assert listed.returncode == 0
    assert re.search(r"^ci-deploy\s+viewer\s+-\s+\d{4}-\d\d-\d\d", listed.stdout, re.M)
    assert token not in listed.stdout

    again = run_quiver("admin", "token", "new", "ci-deploy", "--store", store)
    assert again.returncode == 1 and "exists already" in again.stderr
    unknown_team = run_quiver("admin", "token", "new", "x", "--team", "nope", "--store", store)
    assert unknown_team.returncode == 1 and "no team 'nope'" in unknown_team.stderr

    unnamed = run_quiver("admin", "token", "new", "--store", store)
    assert unnamed.returncode == 0
    assert re.search(r"token editor-[0-9a-f]{6} \(editor\)", unnamed.stderr), unnamed.stderr

    revoked = run_quiver("admin", "token", "revoke", "ci-deploy", "--store", store)
    assert revoked.returncode == 0
    opened = open_store(store, built_in())
    try:
        assert authenticate(opened, token) is None
    finally:
        opened.close()
    gone = run_quiver("admin", "token", "revoke", "ci-deploy", "--store", store)
    assert gone.returncode == 1 and "no token named 'ci-deploy'" in gone.stderr
