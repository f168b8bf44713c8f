"""``quiver serve`` with two worker processes: they share the resources file, and an
item acknowledged with 201 is still there after every process was killed with SIGKILL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.resources.conftest import Api, resources_config
from tests.support.process import run_quiver, serving, write_config

pytestmark = pytest.mark.timeout(60)


def test_quiver_check_accepts_the_documented_form_and_names_a_mistake(tmp_path: Path) -> None:
    text = resources_config(tmp_path / "r.db")
    good = write_config(tmp_path, text)
    assert run_quiver("check", "-c", str(good)).returncode == 0
    bad = write_config(tmp_path, text.replace("maxLength: 60", "maxLen: 60"), "bad.yaml")
    result = run_quiver("check", "-c", str(bad))
    assert result.returncode == 1
    assert "resources[0].fields: field 'name': unknown keyword 'maxLen'" in result.stderr


def test_acknowledged_creates_survive_kill_9_of_every_worker(tmp_path: Path) -> None:
    text = resources_config(Path("resources.db")) + "workers: 2\n"
    config = write_config(tmp_path, text)
    acknowledged: list[int] = []
    refused: list[int] = []
    stop = threading.Event()

    def create(port: int) -> None:
        api = Api(port)
        index = 0
        try:
            while not stop.is_set():
                response = api("POST", "/items", {"name": f"n{index}", "price": index})
                if response.status != 201:
                    refused.append(response.status)
                    return
                acknowledged.append(response.json()["id"])
                index += 1
        except (OSError, ConnectionError):
            return  # the gateway was killed under this request
        finally:
            api.client.close()

    with serving(config, cwd=tmp_path) as proc:
        writer = threading.Thread(target=create, args=(proc.port,))
        writer.start()
        while len(acknowledged) < 50 and writer.is_alive():
            writer.join(0.01)
        proc.kill()
        stop.set()
        writer.join(10)
    assert refused == []
    assert len(acknowledged) >= 50
    with serving(config, cwd=tmp_path) as proc:
        api = Api(proc.port)
        total = api("GET", "/items?count=true&limit=1").header("X-Total-Count")
        assert total is not None and int(total) >= len(acknowledged)
        for key in (acknowledged[0], acknowledged[-1]):
            assert api("GET", f"/items/{key}").status == 200
        api.client.close()
