"""``quiver cache purge`` against a running ``quiver serve`` (real subprocesses)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugins.proxy_cache.support import Origin, fixed
from tests.plugins.proxy_cache.test_redis import REDIS_URL, prefix  # noqa: F401 (fixture)
from tests.support.process import QuiverProcess, run_quiver, serving, write_config
from tests.support.proxy import Client

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def origin() -> Iterator[Origin]:
    node = Origin({path: fixed(cache_control="max-age=600") for path in ("/a", "/b", "/api/c")})
    yield node
    node.close()


def config_text(origin: Origin, run_dir: Path, cache: str = "{}") -> str:
    return f"""\
        listen: 127.0.0.1:0
        run_dir: {run_dir}
        targets: [{{name: b, url: "{origin.url}"}}]
        routes:
          - {{name: api, paths: ["/api"], target: b, plugins: {{proxy-cache: {cache}}}}}
          - {{name: rest, paths: ["/"], target: b, plugins: {{proxy-cache: {cache}}}}}
        """


def label(proc: QuiverProcess, path: str, host: str = "test.local") -> str | None:
    with Client(proc.port) as client:
        return client.request("GET", path, host=host).header("X-Cache-Status")


def held(proc: QuiverProcess, path: str) -> bool:
    """Whether the cache has ``path`` (asked with only-if-cached: nothing is stored)."""
    with Client(proc.port) as client:
        response = client.request("GET", path, {"Cache-Control": "only-if-cached"})
    return response.status == 200


def fill(proc: QuiverProcess, *paths: str) -> None:
    for path in paths:
        label(proc, path)
        assert label(proc, path) == "HIT"


def purge(config: Path, *args: str) -> tuple[int, str, str]:
    result = run_quiver("cache", "purge", "-c", str(config), *args)
    return result.returncode, result.stdout.strip(), result.stderr.strip()


def test_purge_memory_entries_of_a_running_gateway(tmp_path: Path, origin: Origin) -> None:
    run_dir = tmp_path / "run"
    config = write_config(tmp_path, config_text(origin, run_dir))
    with serving(config) as proc:
        fill(proc, "/a", "/b", "/api/c")
        assert purge(config, "--path", "/a") == (0, "purged 1 entry", "")
        assert [label(proc, p) for p in ("/a", "/b")] == ["MISS", "HIT"]
        assert purge(config, "--route", "api") == (0, "purged 1 entry", "")
        assert label(proc, "/api/c") == "MISS"
        assert purge(config, "--url", "http://other.example/b") == (0, "purged 0 entries", "")
        assert purge(config, "--url", "http://test.local/b") == (0, "purged 1 entry", "")
        fill(proc, "/b")
        assert purge(config) == (0, "purged 3 entries", "")  # /a, /api/c, /b
        assert label(proc, "/a") == "MISS"
    # the requests and their answers are cleaned up
    assert list((run_dir / "cache-purge").iterdir()) == []


def test_purge_reaches_every_worker(tmp_path: Path, origin: Origin) -> None:
    run_dir = tmp_path / "run"
    config = write_config(tmp_path, config_text(origin, run_dir))
    with serving(config, "--workers", "2") as proc:
        deadline = time.monotonic() + 20
        while len(list(run_dir.glob("worker-*.json"))) < 2:
            assert time.monotonic() < deadline, "the workers never wrote their status"
            time.sleep(0.05)
        for _ in range(8):  # new connections: both workers get some
            label(proc, "/a")
        code, out, err = purge(config, "--all")
        assert (code, err) == (0, "")
        assert out in ("purged 1 entry", "purged 2 entries")
        assert label(proc, "/a") == "MISS"


def test_purge_errors_are_clear(tmp_path: Path, origin: Origin) -> None:
    run_dir = tmp_path / "run"
    config = write_config(tmp_path, config_text(origin, run_dir))
    code, _, err = purge(config)
    assert (code, err) == (1, f"quiver: no running worker reports status in {run_dir}")
    assert purge(config, "--route", "nope")[2] == "quiver: no route named 'nope' in the config"
    assert "is not an absolute URL" in purge(config, "--url", "/a")[2]
    assert "is not a path" in purge(config, "--path", "a")[2]
    plain = write_config(tmp_path, "listen: 127.0.0.1:0\n", name="plain.yaml")
    assert purge(plain)[2] == "quiver: no proxy-cache plugin in the config"


def test_purge_redis_entries_directly(
    tmp_path: Path,
    origin: Origin,
    prefix: str,  # noqa: F811
) -> None:
    cache = f'{{backend: redis, redis: {{url: "{REDIS_URL}", prefix: "{prefix}"}}}}'
    config = write_config(tmp_path, config_text(origin, tmp_path / "run", cache))
    with serving(config) as proc:
        for path in ("/a", "/b"):
            label(proc, path)
            deadline = time.monotonic() + 10
            while label(proc, path) != "HIT":  # (written to Redis after the answer)
                assert time.monotonic() < deadline
        assert purge(config, "--path", "/a") == (0, "purged 1 entry", "")
        assert [held(proc, "/a"), held(proc, "/b")] == [False, True]
        assert purge(config) == (0, "purged 1 entry", "")
        assert held(proc, "/b") is False
