"""A running `quiver serve --store` with a known admin token, for the commands to talk to."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.process import QuiverProcess, run_quiver

TOKEN = "qv_" + "t" * 43
ADMIN = re.compile(r"admin API listening on (http://[^\s]+)")


class Gateway:
    def __init__(self, proc: QuiverProcess, admin: str, cwd: Path) -> None:
        self.proc, self.admin, self.cwd = proc, admin, cwd

    def quiver(self, *args: str, token: str | None = TOKEN) -> tuple[int, str, str]:
        """Run ``quiver ARGS --admin <this gateway>``: exit code, stdout, stderr."""
        env = {"QUIVER_ADMIN_TOKEN": token, "SHOP_KEY": "shop-key-0123456789"}
        done = run_quiver(*args, "--admin", self.admin, cwd=self.cwd, env=env)
        return done.returncode, done.stdout, done.stderr

    def write(self, text: str, name: str = "api.yaml") -> str:
        (self.cwd / name).write_text(textwrap.dedent(text))
        return name


def start(directory: Path) -> Iterator[Gateway]:
    args = ["serve", "--store", str(directory / "quiver.db"), "--listen", "127.0.0.1:0"]
    args += ["--admin-listen", "127.0.0.1:0", "--run-dir", str(directory / "run")]
    with QuiverProcess(args, cwd=directory, env={"QUIVER_ADMIN_TOKEN": TOKEN}) as proc:
        proc.wait_listening()
        [match] = proc.wait_for(ADMIN)
        yield Gateway(proc, match.group(1), directory)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    yield from start(tmp_path)


@pytest.fixture(scope="module")
def shared_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from start(tmp_path_factory.mktemp("gateway"))
