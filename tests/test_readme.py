"""README.md says only what is true: its examples are run and what it claims is checked.

Every fenced block of the README is accounted for by an HTML comment on the line
right above it (invisible once rendered):

- ``<!-- example: NAME -->`` names a complete config (```yaml) or code (```python)
  that a test below runs; ``<!-- invalid -->`` next to it says the config is meant
  to be refused.
- ``<!-- fragment -->``: a part of a config; it is completed with a target for each
  target its routes name and must then validate.
- ``<!-- in: NAME -->``: a shell block run in a directory holding the example NAME
  as ``quiver.yaml``; in a ```console block each ``$ quiver ...`` line is followed
  by exactly what the command prints.
- ``<!-- run -->``: a shell block of ``quiver`` commands run in an empty directory.
- ``<!-- sources: NAME -->``: a ``quiver sync`` sources file (```yaml), validated as
  one; ``<!-- sync: NAME -->``: a shell block run in a directory holding it as
  ``sources.yaml``, its ``base_url`` ``127.0.0.1:9001`` the address of a test server.
- ``<!-- not run: WHY -->``: a shell block the tests do not run (servers, signals).
- ``<!-- response: NAME METHOD PATH [BODY] -->``: a ```json problem document the
  request gets from example NAME (its ``request_id`` excepted); with
  ``<!-- header: NAME VARIABLE -->`` it carries that header, valued from ``ENV``, and
  with ``<!-- repeat: N -->`` it is the last of N such requests.

Every ```yaml block is validated with the built-in catalog, the variables it names
(``${ALICE_KEY}``) taken from ``ENV``. The Quick start blocks are kept as they are:
CI runs the second one verbatim.

To serve an example, the tests change only addresses: ``listen: 127.0.0.1:8080``
becomes port 0, and each node URL ``127.0.0.1:9001``, ``127.0.0.1:9002`` the address
of a test node (see ``served``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from standardwebhooks import Webhook
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from quiver.client import Client as SDKClient
from quiver.client import ClientProblem
from quiver.config.apis import API_PLUGIN
from quiver.config.models import Config
from quiver.errors import ConfigError
from quiver.plugins.responder import TargetType
from tests.support.catalog import built_in, load_config_text
from tests.support.nodes import wait_until
from tests.support.problems import assert_problem
from tests.support.process import QuiverProcess, run_quiver, serving
from tests.support.proxy import Client, RunningProxy
from tests.support.upstream import Conn, Handler, Upstream
from tests.support.websocket import echo_server

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
ENV = {
    "ALICE_KEY": "alice-key-0123456789",
    "BOB_KEY": "bob-key-0123456789",
    "WEATHER_TOKEN": "weather-token",
    "ORDERS_HOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}
LISTEN = "listen: 127.0.0.1:8080"
NODE_ADDRESSES = ("127.0.0.1:9001", "127.0.0.1:9002")
SHELL = ("bash", "sh", "console")
QUICK_START = [
    "pip install -e . && quiver serve",
    "pip install -e '.[test]' && pytest",
]


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    line: int  # of the opening fence
    section: str
    directives: dict[str, str]

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.lang})"


_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
_DIRECTIVE = re.compile(r"<!--\s*([\w ]+?)\s*(?::\s*(.*?))?\s*-->")


def parse_readme(text: str) -> list[Block]:
    blocks = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()]
        line = before.count("\n") + 1
        above = before.rstrip("\n").rsplit("\n", 1)[-1]
        directives = {m[1]: m[2] or "" for m in _DIRECTIVE.finditer(above)}
        headings = re.findall(r"^## (.+)$", before, re.M)
        section = headings[-1] if headings else ""
        blocks.append(Block(match[1], match[2], line, section, directives))
    return blocks


BLOCKS = parse_readme(README.read_text())


def examples() -> dict[str, Block]:
    return {b.directives["example"]: b for b in BLOCKS if "example" in b.directives}


def example(name: str) -> str:
    block = examples().get(name)
    assert block is not None, f"README.md has no block marked <!-- example: {name} -->"
    return block.text


def blocks(lang: str | tuple[str, ...]) -> list[Block]:
    langs = (lang,) if isinstance(lang, str) else lang
    return [b for b in BLOCKS if b.lang in langs]


# -- every block is accounted for -------------------------------------------------------------


def test_quick_start_keeps_its_two_commands() -> None:
    quick = [b.text.strip() for b in BLOCKS if b.section == "Quick start"]
    assert quick == QUICK_START


def test_every_block_says_what_it_is() -> None:
    unaccounted = []
    for block in BLOCKS:
        marks = set(block.directives)
        if block.section == "Quick start":
            continue
        if block.lang == "yaml":
            ok = bool(marks & {"example", "fragment", "sources"})
        elif block.lang in SHELL:
            ok = len(marks & {"in", "run", "not run", "sync"}) == 1
        elif block.lang == "json":
            ok = "response" in marks
        elif block.lang == "python":
            ok = "example" in marks
        else:
            ok = block.lang == "toml"  # entry-point tables, shown for copying
        if not ok:
            unaccounted.append(f"{block} {block.directives or 'without a directive'}")
    assert unaccounted == []
    names = [b.directives["example"] for b in BLOCKS if "example" in b.directives]
    assert len(names) == len(set(names)), f"example names are not unique: {names}"


# -- configs ---------------------------------------------------------------------------------


def complete_fragment(text: str) -> str:
    """The fragment with a target for each target its routes name, when it has none.

    Targets are appended as text: re-dumping the parsed YAML would turn keys such as
    ``on`` into YAML 1.1 booleans, which Quiver's own loader does not."""
    data = yaml.safe_load(text)
    assert isinstance(data, dict), "a fragment is a mapping of top-level keys"
    if "targets" in data:
        return text
    named = sorted({route["target"] for route in data.get("routes", [])})
    lines = [f"  - {{name: {name}, url: http://127.0.0.1:9001}}" for name in named]
    return text + "".join(f"{line}\n" for line in ["targets:", *lines]) if named else text


GATEWAY_YAML = [b for b in blocks("yaml") if "sources" not in b.directives]


@pytest.mark.parametrize("block", GATEWAY_YAML, ids=str)
def test_every_yaml_block_validates_with_the_built_in_catalog(block: Block) -> None:
    if "invalid" in block.directives:
        with pytest.raises(ConfigError):
            load_config_text(block.text, "README.md", ENV)
        return
    text = complete_fragment(block.text) if "fragment" in block.directives else block.text
    catalog = built_in()
    if "type: hello" in text:  # the README's own target type, installed as it says
        catalog = catalog.with_target_types(readme_hello_type())
    config = load_config_text(text, "README.md", ENV, catalog=catalog)
    assert isinstance(config, Config)


def readme_hello_type() -> type[TargetType[Any]]:
    """The ``Hello`` target type the README defines, run as written."""
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(example("hello-type"), str(README), "exec"), namespace)
    hello = namespace["Hello"]
    assert isinstance(hello, type) and issubclass(hello, TargetType)
    return hello


def test_an_example_without_its_variables_names_them() -> None:
    with pytest.raises(ConfigError, match="ALICE_KEY"):
        load_config_text(example("plugins"), "README.md", {})


# -- commands --------------------------------------------------------------------------------


def console_steps(text: str) -> list[tuple[str, list[str]]]:
    """``$ command`` lines with the output lines that follow each."""
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            assert steps, f"output before any command: {line!r}"
            steps[-1][1].append(line)
    return steps


def quiver(command: str, cwd: Path) -> tuple[int, list[str]]:
    program, *args = shlex.split(command)
    assert program == "quiver", f"only quiver commands are run: {command!r}"
    result = run_quiver(*args, cwd=cwd, env=dict(ENV))
    output = (result.stdout + result.stderr).splitlines()
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, output


@pytest.mark.parametrize("block", [b for b in blocks("console") if "in" in b.directives], ids=str)
def test_console_blocks_print_what_they_show(block: Block, tmp_path: Path) -> None:
    (tmp_path / "quiver.yaml").write_text(example(block.directives["in"]))
    for command, expected in console_steps(block.text):
        _, output = quiver(command, tmp_path)
        assert [line.rstrip() for line in output] == expected, command


RUN = [b for b in blocks(SHELL) if "run" in b.directives]


@pytest.mark.parametrize("block", RUN, ids=str)
def test_shell_blocks_marked_run_succeed(block: Block, tmp_path: Path) -> None:
    for command in block.text.splitlines():
        status, output = quiver(command, tmp_path)
        assert status == 0, (command, output)


def test_quiver_keys_new_makes_a_key_whose_hash_a_consumer_can_carry(tmp_path: Path) -> None:
    assert any(b.text.strip() == "quiver keys new" for b in RUN)
    status, output = quiver("quiver keys new", tmp_path)
    assert status == 0
    fields = dict(line.split(":", 1) for line in output if line.startswith("key"))
    key, key_hash = fields["key"].strip(), fields["key_hash"].strip()
    config = example("plugins").replace('{key: "${BOB_KEY}"}', f'{{key_hash: "{key_hash}"}}')
    assert key_hash in config
    with served(config) as (proxy, _):
        # known, and refused by the acl since bob is not staff: the hash identified him
        assert_problem(get(proxy, "/orders", {"apikey": key}), 403)
        assert_problem(get(proxy, "/orders", {"apikey": key + "x"}), 401)


def test_the_sync_example_loads_its_source_into_duckdb(tmp_path: Path) -> None:
    [block] = [b for b in blocks(SHELL) if "sync" in b.directives]
    [sources] = [b for b in BLOCKS if b.directives.get("sources") == block.directives["sync"]]
    records = [{"id": n, "name": f"item {n}", "owner": {"id": 7}} for n in range(3)]
    with Upstream(answer_json({"data": records})) as node:
        text = sources.text.replace(NODE_ADDRESSES[0], node.url[7:])
        (tmp_path / "sources.yaml").write_text(text)
        for command in block.text.splitlines():
            status, output = quiver(command, tmp_path)
            assert status == 0, (command, output)
    assert [r.path for r in node.requests] == ["/items"]
    with duckdb.connect(str(tmp_path / "shop.duckdb"), read_only=True) as connection:
        loaded = connection.execute("SELECT id, name, owner__id FROM items ORDER BY id").fetchall()
    assert loaded == [(n, f"item {n}", 7) for n in range(3)]


def answer_json(document: object) -> Handler:
    def answer(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.respond(200, json.dumps(document).encode(), [("Content-Type", "application/json")])

    return answer


# -- serving the examples --------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(
    text: str,
    nodes: list[Upstream | int] | None = None,
    target_types: Sequence[type[TargetType[Any]]] = (),
) -> Iterator[tuple[RunningProxy, list[Upstream]]]:
    """``text`` served on a free port, its node addresses replaced: by the given nodes
    (an ``Upstream``, or a port where nothing listens), else echo nodes."""
    assert LISTEN in text, f"the example listens elsewhere than {LISTEN!r}"
    text = text.replace(LISTEN, "listen: 127.0.0.1:0")
    with ExitStack() as stack:
        wanted = [a for a in NODE_ADDRESSES if a in text]
        given = list(nodes or [])
        started = []
        for index, address in enumerate(wanted):
            node = given[index] if index < len(given) else stack.enter_context(Upstream())
            port = node if isinstance(node, int) else node.port
            if isinstance(node, Upstream):
                started.append(node)
            text = text.replace(address, f"127.0.0.1:{port}")
        catalog = built_in().with_target_types(*target_types)
        config = load_config_text(text, "README.md", ENV, catalog=catalog)
        proxy = stack.enter_context(RunningProxy(config, catalog))
        yield proxy, started


def get(
    proxy: RunningProxy, path: str, headers: dict[str, str] | None = None, host: str = "test.local"
) -> Any:
    with Client(proxy.port) as client:
        return client.request("GET", path, headers, host=host)


def test_a_config_file_forwards_everything_to_its_target() -> None:
    with served(example("config-file")) as (proxy, [node]):
        response = get(proxy, "/hello?x=1")
    assert response.status == 200
    [request] = node.requests
    assert request.path == "/hello?x=1"
    for name in ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-ID"):
        assert request.header(name), name
    assert request.header("Via") == "1.1 quiver"


def test_routing_reaches_the_paths_the_table_shows() -> None:
    with served(example("routing")) as (proxy, [node]):
        for path, upstream in [
            ("/users/42", "/v1/accounts/42"),
            ("/users/42/posts", "/v1/accounts/42/posts"),
            ("/api/items?page=2", "/v1/items?page=2"),
        ]:
            assert get(proxy, path).status == 200
            assert node.requests[-1].path == upstream
        assert get(proxy, "/", host="admin.example.com").status == 200
        assert node.requests[-1].path == "/v1/"
        assert_problem(get(proxy, "/"), 404)
        with Client(proxy.port) as client:  # GET only
            assert_problem(client.request("DELETE", "/users/42"), 404)
    assert len(node.requests) == 4


def test_balancing_shares_by_weight_and_retries_a_refusing_node() -> None:
    def served_paths(node: Upstream) -> list[str]:
        return [r.path for r in node.requests if r.path != "/healthz"]

    with Upstream() as a, Upstream() as b, served(example("balancing"), [a, b]) as (proxy, _):
        statuses = [get(proxy, f"/orders/{n}").status for n in range(6)]
    assert statuses == [200] * 6
    assert (len(served_paths(a)), len(served_paths(b))) == (4, 2)

    with Upstream() as a, served(example("balancing"), [a, closed_port()]) as (proxy, _):
        statuses = [get(proxy, f"/orders/{n}").status for n in range(6)]
    assert statuses == [200] * 6
    assert len(served_paths(a)) == 6

    with (
        Upstream() as a,
        Upstream(unavailable) as b,
        served(example("balancing"), [a, b]) as (proxy, _),
    ):
        statuses = [get(proxy, f"/orders/{n}").status for n in range(6)]
    assert statuses == [200] * 6
    assert len(served_paths(a)) == 6
    assert len(served_paths(b)) == 2  # each answered 503, then tried on a


def unavailable(conn: Conn) -> None:
    while (request := conn.read_request()) is not None:
        conn.respond(200 if request.path == "/healthz" else 503, b"busy")


def test_plugins_let_only_alice_through() -> None:
    with served(example("plugins")) as (proxy, [node]):
        missing = get(proxy, "/orders")
        unknown = get(proxy, "/orders", {"apikey": "not-a-key-at-all"})
        bob = get(proxy, "/orders", {"apikey": ENV["BOB_KEY"]})
        alice = get(proxy, "/orders", {"apikey": ENV["ALICE_KEY"]})
        by_header = get(proxy, "/orders", {"X-API-Key": ENV["ALICE_KEY"]})
        by_query = get(proxy, f"/orders?apikey={ENV['ALICE_KEY']}")
    assert_problem(missing, 401)
    assert missing.header("WWW-Authenticate")
    assert_problem(unknown, 401)
    assert_problem(bob, 403)
    assert (alice.status, by_header.status, by_query.status) == (200, 200, 200)
    assert len(node.requests) == 3
    for request in node.requests:
        assert request.header("X-Consumer-Username") == "alice"
        assert request.header("X-Consumer-Groups") == "staff"
        assert request.header("apikey") is None and request.header("X-API-Key") is None
        assert "apikey" not in request.path


def test_the_readme_links_every_built_in_plugin() -> None:
    text = README.read_text()
    for name in dict(built_in().items()):
        if name == API_PLUGIN:  # (put on routes by `apis`, never written)
            continue
        assert f"[{name}](docs/plugins/{name}.md)" in text, name


def test_rate_limit_tells_each_caller_where_it_stands() -> None:
    with served(example("rate-limit")) as (proxy, [node]):
        first = get(proxy, "/search", {"apikey": ENV["ALICE_KEY"]})
    assert first.status == 200
    assert first.header("RateLimit-Policy") == '"second";q=10;w=1, "hour";q=1000;w=3600'
    # t: when one more fits once the 9 left are spent now.  The sliding window still
    # counts a share of this second's 10 until a tenth into the next second, so a
    # request in the first tenth of a second is told 2 (algorithms.step)
    assert first.header("RateLimit") in ('"second";r=9;t=1', '"second";r=9;t=2')
    assert len(node.requests) == 1


def test_a_quota_reports_the_month_and_a_concurrency_limit_lets_requests_in() -> None:
    with served(example("quotas")) as (proxy, [node]):
        answers = [get(proxy, "/reports", {"apikey": ENV["ALICE_KEY"]}) for _ in range(2)]
    assert [answer.status for answer in answers] == [200, 200]
    policy = answers[1].header("RateLimit-Policy") or ""
    assert policy.startswith('"quota-month";q=10000;w=')
    assert (answers[1].header("RateLimit") or "").startswith('"quota-month";r=9998;t=')
    assert len(node.requests) == 2


def test_an_api_lets_its_subscriber_through_and_marks_the_deprecated_one() -> None:
    with served(example("api-products")) as (proxy, [node]):
        alice = get(proxy, "/orders", {"apikey": ENV["ALICE_KEY"]})
        legacy = get(proxy, "/v1/orders")
    assert (alice.status, legacy.status) == (200, 200)
    assert node.requests[0].header("X-Quiver-Plan") == "free"
    assert legacy.header("Deprecation") == "@1796083200"
    assert legacy.header("Sunset") == "Tue, 01 Jun 2027 00:00:00 GMT"


def test_the_cache_answers_the_second_request_itself() -> None:
    with served(example("cache")) as (proxy, [node]):
        first = get(proxy, "/products")
        second = get(proxy, "/products")
    assert (first.status, second.status) == (200, 200)
    assert first.header("X-Cache-Status") == "MISS"
    assert second.header("X-Cache-Status") == "HIT"
    assert second.header("Age") is not None
    assert second.body == first.body
    assert len(node.requests) == 1


def test_the_access_log_writes_a_json_line_per_request(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    text = example("access-log").replace("to: access.log", f"to: {path}")
    with served(text) as (proxy, _):
        response = get(proxy, "/orders/1")
        wait_until(lambda: path.exists() and path.read_text().endswith("\n"), "a line")
    line = json.loads(path.read_text())
    assert (line["path"], line["status"], line["route"]) == ("/orders/1", 200, "all")
    assert line["request_id"] == response.header("X-Request-ID")


def test_validation_refuses_what_the_openapi_document_does_not_allow() -> None:
    with served(example("validation")) as (proxy, [node]), Client(proxy.port) as client:
        too_many = client.request("GET", "/orders?limit=500")
        fine = client.request("GET", "/orders?limit=5")
        unknown = client.request("GET", "/orders/7")
        wrong_method = client.request("DELETE", "/orders")
    violations = assert_problem(too_many, 400)["violations"]
    assert violations == [{"in": "query", "pointer": "/limit", "message": "must be <= 100"}]
    assert fine.status == 200
    assert assert_problem(unknown, 404)["type"] == "urn:quiver:problem:unknown-operation"
    assert_problem(wrong_method, 405)
    assert wrong_method.header("Allow") == "GET, POST, HEAD"
    assert [r.path for r in node.requests] == ["/orders?limit=5"]


@pytest.mark.parametrize("block", blocks("json"), ids=str)
def test_problem_documents_shown_are_what_the_request_gets(block: Block) -> None:
    name, method, path, *body = block.directives["response"].split(" ", 3)
    payload = body[0].encode() if body else b""
    headers = {"Content-Type": "application/json"} if payload else {}
    if "header" in block.directives:
        field, variable = block.directives["header"].split()
        headers[field] = ENV[variable]
    repeat = int(block.directives.get("repeat", "1"))
    with served(example(name)) as (proxy, nodes), Client(proxy.port) as client:
        for _ in range(repeat):
            response = client.request(method, path, headers or None, payload)
    problem = assert_problem(response, json.loads(block.text)["status"])
    shown = json.loads(block.text)
    assert re.fullmatch("[0-9a-f]{32}", shown.pop("request_id"))
    problem.pop("request_id")
    assert problem == shown
    reached = [len(node.requests) for node in nodes]
    assert all(count == repeat - 1 for count in reached), "a refused request reached the node"


def test_a_failing_target_is_named_never_its_node() -> None:
    dead = closed_port()
    with served(example("config-file"), [dead]) as (proxy, _):
        problem = assert_problem(get(proxy, "/x"), 502)
    assert "'backend'" in problem["detail"]
    assert str(dead) not in json.dumps(problem)


def test_the_demo_target_echoes_the_request_inside_the_gateway() -> None:
    with served(example("demo")) as (proxy, _):
        response = get(proxy, "/demo/hello?x=1")
    assert response.status == 200
    assert response.header("X-Served-By") == "demo"
    echoed = response.json()
    assert (echoed["path"], echoed["query"]) == ("/demo/hello", "x=1")
    assert echoed["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert echoed["headers"]["x-request-id"] == response.header("X-Request-ID")


def test_a_target_type_of_your_own_answers_its_routes() -> None:
    hello = readme_hello_type()
    [entry] = [b for b in blocks("toml") if "quiver.targets" in b.text]
    assert f'{hello.name} = "my_package.targets:Hello"' in entry.text
    with served(example("hello"), target_types=[hello]) as (proxy, _):
        response = get(proxy, "/greet")
    assert (response.status, response.body) == (200, b"bonjour from /greet\n")


def redirect_to_login(conn: Conn) -> None:
    while conn.read_request() is not None:
        headers = [
            ("Location", f"http://127.0.0.1:{conn.server.port}/login"),
            ("Set-Cookie", "sid=1; Path=/"),
        ]
        conn.respond(302, b"", headers, reason="Found")


def test_redirects_are_mapped_back_to_the_gateway() -> None:
    with Upstream(redirect_to_login) as node, served(example("redirects"), [node]) as (proxy, _):
        response = get(proxy, "/shop/cart")
    assert [r.path for r in node.requests] == ["/cart"]
    assert response.status == 302
    assert response.header("Location") == "/shop/login"
    assert response.header("Set-Cookie") == "sid=1; Path=/shop/"


def test_the_client_sdk_in_five_lines(capsys: pytest.CaptureFixture[str]) -> None:
    code = example("client")
    assert len(code.splitlines()) == 5
    with served(example("demo")) as (proxy, _):
        code = code.replace("127.0.0.1:8080", f"127.0.0.1:{proxy.port}")
        exec(compile(code, str(README), "exec"), {"__name__": "readme_client"})
        with (
            SDKClient(f"http://127.0.0.1:{proxy.port}") as api,
            pytest.raises(ClientProblem) as caught,
        ):
            api.get("/nothing")
    assert capsys.readouterr().out == "/demo/hello x=1\n"
    assert caught.value.type == "urn:quiver:problem:no-route"
    assert caught.value.request_id and caught.value.title == "Not Found"


def test_the_webhook_receiver_verifies_and_skips_repeats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_HOOK_SECRET", ENV["ORDERS_HOOK_SECRET"])
    namespace: dict[str, Any] = {"__name__": "readme_receiver"}
    exec(compile(example("webhook-receiver"), str(README), "exec"), namespace)
    body = b'{"type":"order.shipped","data":{"order":42}}'
    now = datetime.now(UTC)
    signature = Webhook(ENV["ORDERS_HOOK_SECRET"]).sign("msg_1", now, body)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    assert namespace["on_webhook"](headers, body) == 204
    assert namespace["on_webhook"](headers, body) == 204
    assert namespace["seen"] == {"msg_1"}
    assert namespace["on_webhook"](headers, body + b" ") == 400


def model_server(conn: Conn) -> None:
    """An OpenAI-compatible server answering every chat completion with "Hello!"."""
    while (request := conn.read_request()) is not None:
        body = json.loads(request.body)
        answer = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1700000000,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello!"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        conn.respond(200, json.dumps(answer).encode(), [("Content-Type", "application/json")])


def test_the_ai_gateway_answers_the_openai_sdk(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALICE_KEY", ENV["ALICE_KEY"])
    code = example("ai-client")
    with Upstream(model_server) as node, served(example("ai"), [node]) as (proxy, _):
        code = code.replace("127.0.0.1:8080", f"127.0.0.1:{proxy.port}")
        exec(compile(code, str(README), "exec"), {"__name__": "readme_ai_client"})
    assert capsys.readouterr().out == "Hello!\n"
    [request] = node.requests
    assert request.path == "/v1/chat/completions"
    assert json.loads(request.body)["model"] == "llama-3.1-8b"
    assert request.header("authorization") is None  # (alice's key stays with Quiver)


# -- operating it ----------------------------------------------------------------------------


def with_addresses(text: str, node: Upstream) -> str:
    assert LISTEN in text and NODE_ADDRESSES[0] in text
    return text.replace(LISTEN, "listen: 127.0.0.1:0").replace(NODE_ADDRESSES[0], node.url[7:])


def test_workers_reload_on_sighup_and_report_their_status(tmp_path: Path) -> None:
    # the "Operating it" block, played with real processes: --workers, kill -HUP, status
    config, run_dir = tmp_path / "quiver.yaml", tmp_path / "run"
    with Upstream() as node:
        config.write_text(with_addresses(example("config-file"), node))
        args = ("--workers", "2", "--run-dir", str(run_dir))
        with serving(config, *args, cwd=tmp_path, env=dict(ENV)) as proc:
            proc.wait_for("worker .* started", count=2)
            with Client(proc.port) as client:
                assert client.request("GET", "/orders").status == 200
            config.write_text(with_addresses(example("plugins"), node))
            proc.signal(signal.SIGHUP)
            proc.wait_for("config reloaded", count=2)
            for _ in range(4):  # whichever worker takes the connection
                with Client(proc.port) as client:
                    assert_problem(client.request("GET", "/orders"), 401)
            status, output = 1, [""]
            while status != 0 or output[0] != "2 worker(s)":  # pytest's timeout bounds it
                status, output = quiver(f"quiver status --run-dir {run_dir}", tmp_path)
            assert any(line.startswith("backend  " + node.url) for line in output)
            assert proc.stop() == 0


# -- links and figures -----------------------------------------------------------------------


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", markdown, re.M)
    return {re.sub(r"[^\w\- ]", "", h.replace("`", "")).lower().replace(" ", "-") for h in headings}


def test_every_relative_link_reaches_a_file_and_heading() -> None:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", README.read_text()):
        if re.match(r"\w+://", target):
            continue
        path, _, anchor = target.partition("#")
        file = ROOT / path if path else README  # (``#heading``: one of its own)
        if not file.exists() or (anchor and anchor not in anchors(file.read_text())):
            broken.append(target)
    assert broken == []


def test_performance_figures_are_those_of_the_benchmarks_page() -> None:
    section = README.read_text().split("## Performance", 1)[1].split("\n## ", 1)[0]
    benchmarks = (ROOT / "docs" / "benchmarks.md").read_text()
    bold = re.findall(r"\*\*([\d.]+%?)\*\*", section)  # the headline ratios
    plain = re.findall(r"\d\.\d+(?:\u2013\d\.\d+|%)", section.replace("**", " "))  # 0.62-0.64, 8.5%
    assert bold and plain
    missing = [f for f in bold if f"**{f}**" not in benchmarks]
    missing += [f for f in plain if f not in benchmarks]
    assert missing == []


def test_helpers_read_the_directives() -> None:
    text = textwrap.dedent(
        """\
        ## One
        <!-- example: a --> <!-- invalid -->
        ```yaml
        x: 1
        ```
        """
    )
    [block] = parse_readme(text)
    assert (block.section, block.line, block.text) == ("One", 3, "x: 1\n")
    assert block.directives == {"example": "a", "invalid": ""}


# -- the admin API -----------------------------------------------------------------------------


def test_the_admin_api_in_three_lines(tmp_path: Path) -> None:
    """The three lines of "Admin API and declarative config", against a gateway in store
    mode: the token it was started with, the curl, and the apply of the example."""
    [block] = [b for b in blocks("bash") if b.section == "Admin API and declarative config"]
    export, curl, apply = block.text.splitlines()
    assert export.startswith("export QUIVER_ADMIN_TOKEN=qv_...")
    token = "qv_" + "r" * 43
    (tmp_path / "api.yaml").write_text(example("api"))
    args = ["serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]
    with QuiverProcess(args, cwd=tmp_path, env={"QUIVER_ADMIN_TOKEN": token}) as proc:
        proc.wait_listening()
        [match] = proc.wait_for(re.compile(r"admin API listening on http://127\.0\.0\.1:(\d+)"))
        admin_port = match.group(1)
        script = "\n".join(
            [
                f"export QUIVER_ADMIN_TOKEN={token}",
                curl.replace(":8081", f":{admin_port}"),
                "echo",
                apply.replace(
                    "quiver apply", f"quiver apply --admin http://127.0.0.1:{admin_port}"
                ),
            ]
        )
        bin_dir = str(Path(sys.executable).parent)  # where `quiver` is installed
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        env.pop("QUIVER_ADMIN_TOKEN", None)
        done = subprocess.run(
            ["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
        )
    assert done.returncode == 0, done.stderr
    listed, *applied = done.stdout.splitlines()
    assert [route["name"] for route in json.loads(listed)["data"]] == ["demo"], "the seeded demo"
    assert applied[-1].startswith("revision ") and applied[-1].endswith(" applied")
    assert "+ route orders" in applied


def test_instant_resources_store_and_serve_items(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # resources.db is written where the gateway runs
    with served(example("resources")) as (proxy, _), Client(proxy.port) as client:
        body = b'{"name": "pen", "price": 2.5}'
        fields = {"Content-Type": "application/json"}
        created = client.request("POST", "/items", fields, body)
        assert created.status == 201
        assert created.header("Location") == "/items/1" and created.header("ETag")
        listed = client.request("GET", "/items?price[gte]=1&sort=-price&limit=10&count=true")
        assert listed.header("X-Total-Count") == "1" and listed.header("Link")
        assert [item["name"] for item in listed.json()] == ["pen"]
        event = client.request("POST", "/events", fields, b'{"title": "launch"}')
        assert event.status == 201
        guest = client.request("POST", "/events/1/guests", fields, b'{"email": "a@example.com"}')
        assert guest.status == 201
    assert (tmp_path / "resources.db").exists()


def test_the_mcp_gateway_publishes_the_resources_as_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # resources.db is written where the gateway runs
    from mcp import Client as McpClient

    from tests.mcp.sdk import with_client

    async def work(client: McpClient) -> tuple[list[str], Any]:
        names = [tool.name for tool in (await client.list_tools()).tools]
        made = await client.call_tool("create-notes", {"body": {"title": "buy milk"}})
        return names, made.structured_content

    with served(example("mcp")) as (proxy, _):
        names, made = with_client(f"{proxy.url}/tools/mcp", work)
        assert {"list-notes", "create-notes", "get-notes", "delete-notes"} <= set(names)
        assert made["title"] == "buy milk" and made["done"] is False
        assert get(proxy, "/notes").json() == [made]


def test_the_websocket_route_echoes_and_closes_a_message_over_its_size_with_1009() -> None:
    with echo_server() as echo:
        port = int(echo.url.rsplit(":", 1)[1])
        with served(example("websocket"), [port]) as (proxy, _):
            refused = get(proxy, "/ws", {"Upgrade": "websocket", "Connection": "Upgrade"})
            url = f"ws://127.0.0.1:{proxy.port}/ws"
            headers = {"apikey": ENV["ALICE_KEY"]}
            with ws_connect(url, additional_headers=headers, compression=None) as ws:
                ws.send("hello")
                assert ws.recv(timeout=5) == "hello"
                ws.send(b"x" * (2**20 + 1))
                with pytest.raises(ConnectionClosed) as closed:
                    ws.recv(timeout=5)
    assert_problem(refused, 401)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
