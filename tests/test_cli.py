"""The ``quiver`` command line, run as a real subprocess."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from quiver import __version__
from quiver.demo import demo_config
from tests.support.process import (
    QuiverProcess,
    catch_all_config,
    run_quiver,
    serving,
    write_config,
)
from tests.support.proxy import Client, RunningProxy
from tests.support.upstream import Conn, Upstream, echo

pytestmark = pytest.mark.timeout(60)


def refuses_connections(port: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except (ConnectionRefusedError, ConnectionResetError):
            # refused, or reset when the attempt met the listener as it closed
            return True
        except TimeoutError:
            continue  # its SYN was dropped as the listener closed: look again
        time.sleep(0.02)
    return False


def assert_no_traceback(output: str) -> None:
    assert "Traceback" not in output, output


# -- --version and --help -------------------------------------------------------------------


def test_version_prints_the_package_version() -> None:
    result = run_quiver("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"quiver {__version__}"


def test_main_help_lists_every_command() -> None:
    result = run_quiver("--help")
    assert result.returncode == 0, result.stderr
    for word in ("serve", "check", "routes", "--version"):
        assert word in result.stdout


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("serve", ["-c", "--config", "--workers", "--takeover", "--verbose"]),
        ("check", ["-c", "--config"]),
        ("routes", ["-c", "--config"]),
    ],
)
def test_every_command_has_help_naming_its_options(command: str, options: list[str]) -> None:
    result = run_quiver(command, "--help")
    assert result.returncode == 0, result.stderr
    assert f"usage: quiver {command}" in result.stdout
    for option in options:
        assert option in result.stdout


HEAVY_MODULES = ("pydantic", "uvloop", "httptools", "yaml", "jwt", "jsonschema", "orjson")
HEAVY_PACKAGES = ("quiver.proxy", "quiver.plugins", "quiver.config")
LOADED_AFTER = """
import json, sys
from quiver.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["serve", "--help"]])
def test_version_and_help_load_no_plane(argv: list[str]) -> None:
    # They answer at once because the commands import what they use when they run.
    result = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER.format(argv=argv)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    loaded = json.loads(result.stderr.splitlines()[-1])
    heavy = [
        name
        for name in loaded
        if name.split(".")[0] in HEAVY_MODULES
        or any(name == p or name.startswith(p + ".") for p in HEAVY_PACKAGES)
    ]
    assert heavy == []
    assert "usage: quiver" in result.stdout or result.stdout.startswith("quiver ")


def test_no_command_prints_usage_to_stderr_and_fails() -> None:
    result = run_quiver()
    assert result.returncode != 0
    assert "usage: quiver" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["check", "routes"])
def test_check_and_routes_without_config_option_read_quiver_yaml(
    tmp_path: Path, command: str
) -> None:
    write_config(tmp_path, catch_all_config("http://127.0.0.1:9001"))
    result = run_quiver(command, cwd=tmp_path, env={"QUIVER_CONFIG": None})
    assert result.returncode == 0, result.stderr
    assert ("quiver.yaml: OK" if command == "check" else "prefix") in result.stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    missing = run_quiver(command, cwd=elsewhere, env={"QUIVER_CONFIG": None})
    assert missing.returncode == 1
    assert "quiver.yaml: cannot read config file" in missing.stderr


# -- check ----------------------------------------------------------------------------------


def test_check_accepts_a_valid_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, catch_all_config("http://127.0.0.1:9001"))
    result = run_quiver("check", "-c", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: OK (1 targets, 1 routes, 1 listen addresses)"
    assert result.stderr == ""


def test_check_names_an_unknown_key_with_its_location_and_line(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """\
        listen: 127.0.0.1:0
        targets:
          - name: backend
            url: http://127.0.0.1:9001
            retry_count: 3
        routes:
          - name: all
            paths: ["/"]
            target: backend
        """,
    )
    result = run_quiver("check", "-c", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"{path}:5: targets[0].retry_count: unknown key 'retry_count'" in result.stderr
    assert_no_traceback(result.stderr)


def test_check_lists_every_problem_sorted_by_line(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """\
        listen: 127.0.0.1:0
        targets:
          - name: backend
            url: ftp://127.0.0.1:9001
        routes:
          - name: all
            paths: ["/"]
            target: backend
            timeout: 5
        """,
    )
    result = run_quiver("check", "-c", str(path))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "quiver: invalid config (2 problem(s)):"
    assert lines[1].startswith(f"  {path}:4: targets[0].url:")
    assert lines[2] == f"  {path}:9: routes[0].timeout: unknown key 'timeout'"


def test_check_reports_every_kind_of_problem_of_a_file_in_one_run(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """\
        listen: 127.0.0.1:0
        limits: {header_timeout: 5 minutes}
        targets:
          - name: backend
            url: http://127.0.0.1:9001
            colour: blue
        routes:
          - name: api
            paths: ["~^/v[0-9+/"]
            target: backend
            plugins:
              key-auth: {header_names: apikey}
          - name: other
            paths: ["/other"]
            target: backnd
            plugins:
              rate-limiter: {}
        consumers:
          - name: alice
            credentials:
              key-auth: [{key: short}]
              oauth: []
        """,
    )
    result = run_quiver("check", "-c", str(path))
    assert result.returncode == 1
    problems = [line.removeprefix(f"  {path}:") for line in result.stderr.splitlines()[1:]]
    assert problems[0].startswith("2: limits.header_timeout: not a duration: '5 minutes'")
    assert problems[1:] == [
        "6: targets[0].colour: unknown key 'colour'",
        problems[2],
        "12: routes[0].plugins.key-auth.header_names: Input should be a valid list",
        "15: routes[1].target: unknown target 'backnd' (defined targets: 'backend'); "
        "did you mean 'backend'?",
        "17: routes[1].plugins.rate-limiter: unknown plugin 'rate-limiter'; "
        "did you mean 'rate-limit'? (see: quiver plugins)",
        "21: consumers[0].credentials.key-auth[0].key: String should have at least 8 characters",
        "22: consumers[0].credentials.oauth: unknown key 'oauth'",
    ]
    assert problems[2].startswith("9: routes[0].paths: bad regex '~^/v[0-9+/'")
    assert result.stderr.splitlines()[0] == "quiver: invalid config (8 problem(s)):"


def test_check_reports_target_types_and_their_options_with_other_problems(
    tmp_path: Path,
) -> None:
    path = write_config(
        tmp_path,
        """\
        listen: 127.0.0.1:0
        targets:
          - name: hello
            type: dmeo
          - name: shown
            type: demo
            options: {colour: blue}
        routes:
          - name: all
            paths: ["/"]
            target: helo
        """,
    )
    result = run_quiver("check", "-c", str(path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "quiver: invalid config (3 problem(s)):",
        f"  {path}:4: targets[0].type: unknown target type 'dmeo' (known types: 'http', "
        "'demo', 'mcp'); did you mean 'demo'?",
        f"  {path}:7: targets[1].options.colour: unknown key 'colour'",
        f"  {path}:11: routes[0].target: unknown target 'helo' (defined targets: 'hello', "
        "'shown'); did you mean 'hello'?",
    ]


def test_check_accepts_the_built_in_demo_target_type(tmp_path: Path) -> None:
    config = """\
        listen: 127.0.0.1:0
        targets: [{name: hello, type: demo}]
        routes: [{name: all, paths: ["/"], target: hello}]
        """
    result = run_quiver("check", "-c", str(write_config(tmp_path, config)))
    assert result.returncode == 0, result.stderr


def test_status_needs_only_the_settings_of_the_config(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    path = write_config(
        tmp_path,
        f"""\
        listen: 127.0.0.1:0
        run_dir: {run_dir}
        targets: [{{name: b, url: "http://127.0.0.1:9001"}}]
        consumers:
          - name: alice
            credentials: {{key-auth: [{{key: "${{ALICE_KEY}}"}}]}}
        """,
    )
    result = run_quiver("status", "-c", str(path), env={"ALICE_KEY": None})
    assert result.returncode == 1
    assert result.stderr.strip() == f"quiver: no running worker reports status in {run_dir}"


def test_check_of_a_missing_file_is_a_readable_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    result = run_quiver("check", "-c", str(missing))
    assert result.returncode == 1
    assert f"{missing}: cannot read config file: No such file or directory" in result.stderr
    assert_no_traceback(result.stderr)


def test_check_of_a_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, "targets:\n  - name: [unclosed\nroutes: []\n")
    result = run_quiver("check", "-c", str(path))
    assert result.returncode == 1
    assert f"{path}:3: syntax error" in result.stderr
    assert_no_traceback(result.stderr)


def test_check_reads_json_configs(tmp_path: Path) -> None:
    data = {
        "listen": "127.0.0.1:0",
        "targets": [{"name": "backend", "url": "http://127.0.0.1:9001"}],
        "routes": [{"name": "all", "paths": ["/"], "target": "backend"}],
    }
    path = tmp_path / "quiver.json"
    path.write_text(json.dumps(data, indent=2))
    result = run_quiver("check", "-c", str(path))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


# -- routes ---------------------------------------------------------------------------------


def test_routes_prints_the_table_in_precedence_order(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """\
        targets:
          - name: backend
            url: http://127.0.0.1:9001
        routes:
          - name: catch-all
            paths: ["/"]
            target: backend
          - name: items
            paths: ["/items"]
            target: backend
          - name: one-item
            paths: ["=/items/special"]
            methods: [GET]
            target: backend
          - name: urgent
            paths: ["/zzz"]
            priority: 10
            target: backend
        """,
    )
    result = run_quiver("routes", "-c", str(path))
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[:4] == ["ORDER", "NAME", "KIND", "PATTERN"]
    table = [row.split()[:4] for row in rows]
    # priority first, then exact paths, then longer prefixes before shorter ones
    assert [row[1] for row in table] == ["urgent", "one-item", "items", "catch-all"]
    assert [row[0] for row in table] == ["1", "2", "3", "4"]
    assert table[1][2:] == ["exact", "=/items/special"]
    assert "GET" in rows[1]


def test_routes_with_no_routes_says_so(tmp_path: Path) -> None:
    path = write_config(tmp_path, "listen: 127.0.0.1:0\n")
    result = run_quiver("routes", "-c", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no routes"


def test_routes_of_an_invalid_file_fails_like_check(tmp_path: Path) -> None:
    path = write_config(tmp_path, "routes:\n  - name: all\n    paths: ['/']\n    target: nope\n")
    result = run_quiver("routes", "-c", str(path))
    assert result.returncode == 1
    assert "routes[0].target: unknown target 'nope'" in result.stderr
    assert_no_traceback(result.stderr)


# -- serve ----------------------------------------------------------------------------------


def test_serve_proxies_requests_to_the_configured_target(tmp_path: Path) -> None:
    with Upstream(echo) as upstream:
        path = write_config(tmp_path, catch_all_config(upstream.url))
        with serving(path) as proxy, Client(proxy.port) as client:
            response = client.request("POST", "/hello?x=1", body=b"ping")
            assert response.status == 200
            sent = response.json()
            assert (sent["method"], sent["path"], sent["body"]) == ("POST", "/hello?x=1", "ping")
            assert response.header("Via") == "1.1 quiver"
            assert f"config loaded from {path}" in proxy.stderr
            assert proxy.stop() == 0


def test_serve_answers_a_missing_route_with_problem_json(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """\
        listen: 127.0.0.1:0
        targets:
          - name: backend
            url: http://127.0.0.1:9
        routes:
          - name: api
            paths: ["/api"]
            target: backend
        """,
    )
    with serving(path) as proxy, Client(proxy.port) as client:
        response = client.request("GET", "/elsewhere")
        assert response.status == 404
        assert response.header("Content-Type") == "application/problem+json"
        assert response.json()["detail"] == "no route matches GET /elsewhere"


def test_sigterm_finishes_the_request_in_flight_then_exits_cleanly(tmp_path: Path) -> None:
    arrived = threading.Event()
    release = threading.Event()

    def slow(conn: Conn) -> None:
        request = conn.read_request()
        if request is None:
            return
        arrived.set()
        release.wait(20)
        conn.respond(200, b"finished", [("Content-Type", "text/plain")])

    with Upstream(slow) as upstream:
        path = write_config(tmp_path, catch_all_config(upstream.url))
        with serving(path) as proxy, Client(proxy.port, timeout=20) as client:
            client.send(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
            assert arrived.wait(10), "the request never reached the target"
            proxy.signal(signal.SIGTERM)
            proxy.wait_for("stopping: draining connections")
            # the listener closes right after that line: new connections are refused
            assert refuses_connections(proxy.port, within=2.0)
            assert proxy.proc.poll() is None, "exited with a request still in flight"
            release.set()
            response = client.read_response()
            assert (response.status, response.body) == (200, b"finished")
            assert response.header("Connection") == "close"
            assert client.is_closed_by_peer()
            client.close()
            started = time.monotonic()
            assert proxy.wait(timeout=10) == 0
            # once the last connection is gone the process leaves without sitting out
            # the 10 s grace period
            assert time.monotonic() - started < 1.5
            assert_no_traceback(proxy.stderr)


@pytest.mark.parametrize(
    ("setting", "option", "workers"),
    [
        ("drain_timeout: 200ms\n", [], "1"),
        ("drain_timeout: 60s\n", ["--drain-timeout", "0.2"], "1"),  # the option wins
        ("drain_timeout: 200ms\n", [], "2"),
    ],
)
def test_drain_timeout_bounds_the_wait_for_requests_in_flight(
    tmp_path: Path, setting: str, option: list[str], workers: str
) -> None:
    arrived = threading.Event()
    release = threading.Event()

    def stuck(conn: Conn) -> None:
        if conn.read_request() is not None:
            arrived.set()
            release.wait(30)

    with Upstream(stuck) as upstream:
        path = write_config(tmp_path, setting + catch_all_config(upstream.url))
        args = ("--workers", workers, *option)
        try:
            with serving(path, *args) as proxy, Client(proxy.port, timeout=20) as client:
                client.send(b"GET /stuck HTTP/1.1\r\nHost: test\r\n\r\n")
                assert arrived.wait(10), "the request never reached the target"
                proxy.signal(signal.SIGTERM)
                # well before the default 10 s: the request in flight is cut off
                assert proxy.wait(timeout=5) == 0
                assert "draining connections for up to 0.2s" in proxy.stderr
                assert client.is_closed_by_peer()
                assert_no_traceback(proxy.stderr)
        finally:
            release.set()


@pytest.mark.parametrize("value", ["soon", "-1"])
def test_drain_timeout_option_rejects_what_is_not_a_duration(tmp_path: Path, value: str) -> None:
    result = run_quiver("serve", "--listen", "127.0.0.1:0", "--drain-timeout", value, cwd=tmp_path)
    assert result.returncode == 1
    assert f'--drain-timeout takes a duration such as "30s", not {value!r}' in result.stderr
    assert_no_traceback(result.stderr)


def test_sigterm_on_an_idle_proxy_exits_with_code_zero(tmp_path: Path) -> None:
    with Upstream(echo) as upstream:
        path = write_config(tmp_path, catch_all_config(upstream.url))
        with serving(path) as proxy:
            with Client(proxy.port) as client:
                assert client.request().status == 200  # leaves an idle keep-alive connection
                started = time.monotonic()
                assert proxy.stop(timeout=10) == 0
                assert time.monotonic() - started < 3
                assert client.is_closed_by_peer()
            assert_no_traceback(proxy.stderr)


def test_serve_with_an_invalid_config_exits_1_without_a_traceback(tmp_path: Path) -> None:
    path = write_config(tmp_path, "listen: 127.0.0.1:0\nworkerz: 2\n")
    with QuiverProcess(["serve", "-c", str(path)]) as proc:
        assert proc.wait(20) == 1
        assert f"{path}:2: workerz: unknown key 'workerz'; did you mean 'workers'?" in proc.stderr
        assert_no_traceback(proc.stderr)


def test_serve_on_an_address_in_use_exits_1_with_a_readable_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = write_config(
            tmp_path, catch_all_config("http://127.0.0.1:9", listen=f"127.0.0.1:{port}")
        )
        with QuiverProcess(["serve", "-c", str(path)]) as proc:
            assert proc.wait(20) == 1
            assert "Address already in use" in proc.stderr
            assert_no_traceback(proc.stderr)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("workers", [1, 2])
def test_second_serve_on_the_same_address_is_refused(tmp_path: Path, workers: int) -> None:
    # Both would bind with SO_REUSEPORT: the second would silently take half the traffic.
    listen = f"127.0.0.1:{free_port()}"
    with Upstream(echo) as upstream:
        config = catch_all_config(upstream.url, listen=listen, workers=workers)
        first_path = write_config(tmp_path, config, "first.yaml")
        second_path = write_config(tmp_path, config, "second.yaml")
        with serving(first_path) as first:
            for args in (
                ["-c", str(second_path)],
                ["-c", str(second_path), "--workers", "2"],
                ["--listen", listen],  # the demo
            ):
                result = run_quiver("serve", *args, cwd=tmp_path)
                assert result.returncode == 1
                assert f"cannot listen on {listen}: Address already in use" in result.stderr
                assert "--takeover" in result.stderr
                assert "proxy listening" not in result.stderr
                assert_no_traceback(result.stderr)
            with Client(first.port) as client:
                assert client.request().status == 200
            assert first.stop() == 0


def test_takeover_shares_the_address_with_the_server_it_replaces(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    with Upstream(echo) as upstream:
        path = write_config(tmp_path, catch_all_config(upstream.url, listen=listen))
        with serving(path) as old, serving(path, "--takeover") as new:
            assert new.port == old.port
            assert old.stop() == 0
            with Client(new.port) as client:
                assert client.request("GET", "/after").json()["path"] == "/after"
            assert new.stop() == 0


@pytest.mark.parametrize("value", ["0", "many"])
def test_serve_rejects_a_bad_worker_count(tmp_path: Path, value: str) -> None:
    path = write_config(tmp_path, catch_all_config("http://127.0.0.1:9"))
    with QuiverProcess(["serve", "-c", str(path), "--workers", value]) as proc:
        assert proc.wait(20) != 0
        assert "--workers" in proc.stderr
        assert_no_traceback(proc.stderr)


def test_serve_substitutes_environment_variables(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """\
        listen: ${PROXY_LISTEN}
        targets:
          - name: backend
            url: http://127.0.0.1:${BACKEND_PORT}
        routes:
          - name: all
            paths: ["${ROUTE_PREFIX:-/}"]
            target: backend
        """,
    )
    with Upstream(echo) as upstream:
        env: dict[str, str | None] = {
            "PROXY_LISTEN": "127.0.0.1:0",
            "BACKEND_PORT": str(upstream.port),
        }
        with serving(path, env=env) as proxy, Client(proxy.port) as client:
            response = client.request("GET", "/from-env")
            assert response.status == 200
            assert response.json()["path"] == "/from-env"
        assert len(upstream.requests) == 1


def test_serve_names_an_unset_environment_variable(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """\
        targets:
          - name: backend
            url: http://127.0.0.1:${QUIVER_TEST_UNSET_PORT}
        """,
    )
    env: dict[str, str | None] = {"QUIVER_TEST_UNSET_PORT": None}
    with QuiverProcess(["serve", "-c", str(path)], env=env) as proc:
        assert proc.wait(20) == 1
        assert "environment variable 'QUIVER_TEST_UNSET_PORT' is not set" in proc.stderr
        assert f"{path}:3: targets[0].url" in proc.stderr
        assert_no_traceback(proc.stderr)


def test_serve_reads_quiver_yaml_from_the_working_directory(tmp_path: Path) -> None:
    with Upstream(echo) as upstream:
        write_config(tmp_path, catch_all_config(upstream.url))
        with serving(None, cwd=tmp_path) as proxy, Client(proxy.port) as client:
            assert client.request("GET", "/here").json()["path"] == "/here"
            assert "config loaded from quiver.yaml" in proxy.stderr


def test_serve_reads_the_file_named_by_quiver_config(tmp_path: Path) -> None:
    with Upstream(echo) as upstream:
        path = write_config(tmp_path, catch_all_config(upstream.url), name="elsewhere.yaml")
        env: dict[str, str | None] = {"QUIVER_CONFIG": str(path)}
        with serving(None, cwd=tmp_path, env=env) as proxy, Client(proxy.port) as client:
            assert client.request("GET", "/named").json()["path"] == "/named"
            assert f"config loaded from {path}" in proxy.stderr


# -- the built-in demo ----------------------------------------------------------------------


def test_demo_config_routes_everything_to_the_demo_target() -> None:
    config = demo_config(listen="127.0.0.1:0")
    with RunningProxy(config) as proxy, Client(proxy.port) as client:
        response = client.request("POST", "/hello?name=quiver", body=b"12345")
        assert response.status == 200
        assert response.header("Content-Type") == "application/json"
        echoed = response.json()
        assert echoed["service"] == "quiver demo target"
        assert (echoed["method"], echoed["path"], echoed["query"]) == (
            "POST",
            "/hello",
            "name=quiver",
        )
        assert echoed["body_bytes"] == 5
        assert echoed["headers"]["via"] == "1.1 quiver"
        assert echoed["headers"]["x-request-id"] == response.header("X-Request-ID")
        assert echoed["headers"]["x-forwarded-for"] == "127.0.0.1"


def test_demo_config_listens_on_the_documented_default_address() -> None:
    config = demo_config()
    assert [spec.address for spec in config.listen] == ["127.0.0.1:8080"]


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


_NO_CONFIG: dict[str, str | None] = {"QUIVER_CONFIG": None, "QUIVER_ADMIN_TOKEN": None}


def test_serve_without_config_serves_the_demo_on_8080(tmp_path: Path) -> None:
    # Without --listen the demo listens on the documented address (store mode, seeded
    # with the demo; the admin API on 8081).
    if not (_port_is_free(8080) and _port_is_free(8081)):
        pytest.skip("127.0.0.1:8080 or 8081 is in use on this machine; cannot serve there")
    env = {**_NO_CONFIG, "QUIVER_RUN_DIR": str(tmp_path / "run")}
    with QuiverProcess(["serve"], cwd=tmp_path, env=env) as proc:
        proc.wait_listening()
        assert proc.port == 8080
        assert "revision 1 routes every path to the built-in demo target" in proc.stderr
        assert "admin token (shown once, keep it): qv_" in proc.stderr
        proc.wait_for(r"admin API \(pid \d+\) ready at http://127.0.0.1:8081")
        with Client(8080) as client:
            response = client.request("GET", "/hello")
            assert response.status == 200
            assert response.json()["path"] == "/hello"
        assert proc.stop() == 0


def test_serve_without_config_reports_8080_in_use(tmp_path: Path) -> None:
    if not _port_is_free(8080):
        pytest.skip("127.0.0.1:8080 is in use on this machine; cannot hold it for the test")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 8080))
        taken.listen()
        with QuiverProcess(["serve"], cwd=tmp_path, env=_NO_CONFIG) as proc:
            assert proc.wait(20) == 1
            assert "Address already in use" in proc.stderr
            assert_no_traceback(proc.stderr)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_without_config_on_a_chosen_address_serves_the_demo(
    tmp_path: Path, workers: str
) -> None:
    args = ["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]
    args += ["--workers", workers, "--run-dir", str(tmp_path / "run")]
    with QuiverProcess(args, cwd=tmp_path, env=_NO_CONFIG) as proc:
        proc.wait_listening()
        assert proc.port != 8080
        with Client(proc.port) as client:
            response = client.request("GET", "/hello?name=quiver")
            assert response.status == 200
            body = response.json()
            assert body["service"] == "quiver demo target"
            assert (body["path"], body["query"]) == ("/hello", "name=quiver")
            assert body["headers"]["x-forwarded-for"] == "127.0.0.1"
        assert proc.stop() == 0


def test_listen_option_rejects_a_malformed_address(tmp_path: Path) -> None:
    result = run_quiver("serve", "--listen", "nowhere", cwd=tmp_path)
    assert result.returncode != 0
    assert "--listen" in result.stderr
    assert_no_traceback(result.stderr)


def test_keys_new_prints_a_key_and_the_hash_that_lets_it_in(tmp_path: Path) -> None:
    import hashlib

    result = run_quiver("keys", "new")
    assert result.returncode == 0
    lines = dict(line.split(":", 1) for line in result.stdout.strip().splitlines())
    key, key_hash = lines["key"].strip(), lines["key_hash"].strip()
    assert len(key) >= 40
    assert key_hash == "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    assert "only its hash" in result.stderr


def test_plugins_lists_every_built_in_plugin_with_priority_phases_and_keys() -> None:
    result = run_quiver("plugins")
    assert result.returncode == 0, result.stderr
    for line in (
        "key-auth  (priority 1250; phases: access)",
        "request-validator  (priority 900; phases: access)",
        "response-transformer  (priority 800; phases: response_headers, response_body)",
    ):
        assert line in result.stdout
    assert "    header_names (default ['apikey', 'X-API-Key']):" in result.stdout
    assert "    origins (required):" in result.stdout
    assert "Undefined" not in result.stdout
    assert "api-product" not in result.stdout  # (put on routes by `apis`, never written)


def test_plugins_json_gives_one_plugin_s_config_schema() -> None:
    result = run_quiver("plugins", "acl", "--json")
    assert result.returncode == 0, result.stderr
    schemas = json.loads(result.stdout)
    assert list(schemas) == ["acl"]
    assert schemas["acl"]["additionalProperties"] is False
    assert all("description" in spec for spec in schemas["acl"]["properties"].values())


def test_check_names_a_wrong_limit_key_plainly(tmp_path: Path) -> None:
    path = tmp_path / "quiver.yaml"
    path.write_text(
        "targets: [{name: b, url: 'http://127.0.0.1:9001'}]\n"
        "routes:\n"
        "  - {name: r, paths: ['/'], target: b, plugins: {rate-limit: "
        "{limit: 10, window: 60, by: [consumer, user]}}}\n"
    )
    result = run_quiver("check", "-c", str(path))
    assert result.returncode == 1
    assert result.stderr.splitlines()[1:] == [
        f"  {path}:3: routes[0].plugins.rate-limit.by[1]: 'user': "
        "use consumer, credential, ip, route, path or header:<name>"
    ]
