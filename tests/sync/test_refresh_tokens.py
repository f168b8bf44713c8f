"""Rotated OAuth2 refresh tokens outlive the run: the real CLI in a subprocess against a
token endpoint that revokes each refresh token it replaces (tests/sync/oauth.py)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from quiver.cli import main
from tests.sync.oauth import PAGES, Authority, serving

pytestmark = pytest.mark.timeout(120)

SOURCE = """\
  - name: {name}
    base_url: {base}
    concurrency: 1
    auth: {{type: oauth2_refresh_token, access_token_url: "{base}/token", client_id: cid,
            refresh_token: "{token}"}}
    resources:
      - name: {name}_items
        path: /items
        data_selector: data
        paginator: {{type: page_number, base_page: 1, total_path: total_pages}}
        primary_key: id
        write_mode: merge
"""


def write_config(directory: Path, base: str, tokens: dict[str, str], extra: str = "") -> Path:
    sources = "".join(
        SOURCE.format(name=name, base=base, token=token) for name, token in tokens.items()
    )
    config = directory / "sources.yaml"
    database = directory / "out.duckdb"
    config.write_text(f"sources:\n{sources}destination: duckdb:///{database}\n{extra}")
    return config


class Ran:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


def quiver_sync(config: Path, *args: str, kill_when: threading.Event | None = None) -> Ran:
    """``quiver sync -c config`` in a process of its own; SIGKILLed when ``kill_when``
    is set (by a request the server holds until then)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen(
        [sys.executable, "-m", "quiver.cli", "sync", "-c", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        if kill_when is not None and kill_when.wait(60):
            process.send_signal(signal.SIGKILL)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return Ran(process.returncode, out.decode(), err.decode())


def kept(config: Path) -> dict[str, Any]:
    sources: dict[str, Any] = orjson.loads(Path(f"{config}.tokens").read_bytes())["sources"]
    return sources


def everything_loaded(database: Path) -> str:
    """Every row of every table, the bookkeeping ones included, as text."""
    with duckdb.connect(str(database), read_only=True) as connection:
        tables = [t for (t,) in connection.execute("SHOW TABLES").fetchall()]
        return repr([connection.execute(f'SELECT * FROM "{t}"').fetchall() for t in tables])


def test_two_runs_in_a_row_each_start_from_the_token_the_last_one_kept(tmp_path: Path) -> None:
    authority = Authority(expires_in=0)  # expired as it comes: a refresh per request
    with serving(authority) as base:
        first = {"shop": authority.grant(), "crm": authority.grant()}
        config = write_config(tmp_path, base, first)
        runs = [quiver_sync(config), quiver_sync(config)]
        assert [run.code for run in runs] == [0, 0], runs[-1].err
        held = kept(config)
        assert {name: entry["refresh_token"] for name, entry in held.items()} == {
            name: authority.current(token) for name, token in first.items()
        }
    assert "invalid_grant" not in runs[1].err
    assert authority.presented.count(first["shop"]) == 1  # the revoked one never again
    assert authority.pages == 4 * PAGES  # two sources, two runs
    texts = [run.out + run.err for run in runs] + [everything_loaded(tmp_path / "out.duckdb")]
    assert not [token for token in authority.issued if any(token in text for text in texts)]
    assert stat.S_IMODE((tmp_path / "sources.yaml.tokens").stat().st_mode) == 0o600
    assert not (tmp_path / "sources.yaml.tokens.tmp").exists()


def test_a_run_killed_after_a_refresh_is_resumed_with_the_token_it_kept(tmp_path: Path) -> None:
    authority = Authority(expires_in=0, hold_at=2)  # every page request refreshes first
    with serving(authority) as base:
        first = authority.grant()
        config = write_config(tmp_path, base, {"shop": first})
        killed = quiver_sync(config, kill_when=authority.reached)
        assert killed.code == -signal.SIGKILL
        # the access token of the held request came with a refresh token kept before it
        valid = authority.current(first)
        assert kept(config)["shop"]["refresh_token"] == valid
        authority.released.set()
        presented = len(authority.presented)
        resumed = quiver_sync(config)
        assert resumed.code == 0, resumed.err
        assert authority.presented[presented] == valid
    with duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True) as connection:
        counted = connection.execute("SELECT count(*), count(DISTINCT id) FROM shop_items")
        assert counted.fetchall() == [(PAGES * 10, PAGES * 10)]
    texts = [killed.err, resumed.out, resumed.err, everything_loaded(tmp_path / "out.duckdb")]
    assert not [token for token in authority.issued if any(token in text for text in texts)]


def test_a_refresh_token_changed_in_the_sources_file_wins_over_the_kept_one(
    tmp_path: Path,
) -> None:
    authority = Authority()
    with serving(authority) as base:
        shop, crm = authority.grant(), authority.grant()
        config = write_config(tmp_path, base, {"shop": shop, "crm": crm})
        assert quiver_sync(config).code == 0
        crm_kept = kept(config)["crm"]["refresh_token"]
        pasted = authority.grant()  # the operator consented again
        write_config(tmp_path, base, {"shop": pasted, "crm": crm})
        presented = len(authority.presented)
        assert quiver_sync(config).code == 0
        assert authority.presented[presented:] == [pasted, crm_kept]
        shop_kept = kept(config)["shop"]["refresh_token"]
        assert shop_kept == authority.current(pasted)
        presented = len(authority.presented)
        assert quiver_sync(config).code == 0  # the file unchanged since: the kept one again
        assert authority.presented[presented] == shop_kept


def test_a_dry_run_keeps_the_token_it_rotated(tmp_path: Path) -> None:
    authority = Authority()
    with serving(authority) as base:
        config = write_config(tmp_path, base, {"shop": authority.grant()})
        dry = quiver_sync(config, "--dry-run")
        assert dry.code == 0, dry.err
        loaded = quiver_sync(config)
        assert loaded.code == 0, loaded.err
    texts = [dry.out + dry.err, loaded.out + loaded.err]
    assert not [token for token in authority.issued if any(token in text for text in texts)]


def test_token_file_names_where_the_tokens_are_kept(tmp_path: Path) -> None:
    (tmp_path / "private").mkdir()
    authority = Authority()
    with serving(authority) as base:
        token = authority.grant()
        config = write_config(tmp_path, base, {"shop": token}, "token_file: private/shop.tokens\n")
        assert quiver_sync(config).code == 0
        assert quiver_sync(config).code == 0
    path = tmp_path / "private" / "shop.tokens"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (tmp_path / "sources.yaml.tokens").exists()
    entry = orjson.loads(path.read_bytes())["sources"]["shop"]
    assert entry["refresh_token"] == authority.current(token)


def test_a_token_file_in_no_directory_is_named_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:1", {"shop": "r0"}, "token_file: no/t\n")
    assert main(["sync", "-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"sources.yaml:15: token_file: no directory {tmp_path / 'no'}" in err


def test_a_token_file_quiver_did_not_write_stops_the_run_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    authority = Authority()
    with serving(authority) as base:
        config = write_config(tmp_path, base, {"shop": authority.grant()})
        Path(f"{config}.tokens").write_text("shop: rt-1\n")
        assert main(["sync", "-c", str(config)]) == 1
    assert "not a file quiver sync wrote" in capsys.readouterr().err
    assert authority.presented == [] and authority.pages == 0
