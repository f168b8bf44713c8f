"""Loading config text: line numbers, readable messages, ${VAR}, cross-references."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from quiver.config import effective_pool, effective_timeouts, load_config, load_config_text
from quiver.config.models import Config, Pool, Timeouts
from quiver.errors import ConfigError, ConfigIssue

MINIMAL = """\
listen: 127.0.0.1:8080
targets:
  - name: backend
    url: http://127.0.0.1:9001
routes:
  - name: all
    paths: ["/"]
    target: backend
"""

TARGET = """\
targets:
  - name: backend
    url: http://127.0.0.1:9001
"""


def issues(text: str, env: dict[str, str] | None = None) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        load_config_text(textwrap.dedent(text), source="quiver.yaml", env=env or {})
    return caught.value.issues


def only_issue(text: str, env: dict[str, str] | None = None) -> ConfigIssue:
    found = issues(text, env)
    assert len(found) == 1, found
    return found[0]


def load(text: str, env: dict[str, str] | None = None) -> Config:
    return load_config_text(textwrap.dedent(text), source="quiver.yaml", env=env or {})


# -- reading files ------------------------------------------------------------------------


def test_minimal_file_loads_as_written(tmp_path: Path) -> None:
    path = tmp_path / "quiver.yaml"
    path.write_text(MINIMAL)
    config = load_config(path)
    assert [item.address for item in config.listen] == ["127.0.0.1:8080"]
    assert [(t.name, t.url) for t in config.targets] == [("backend", "http://127.0.0.1:9001")]
    [route] = config.routes
    assert (route.name, route.paths, route.target) == ("all", ["/"], "backend")


def test_json_equivalent_loads_the_same(tmp_path: Path) -> None:
    document = {
        "listen": "127.0.0.1:8080",
        "targets": [{"name": "backend", "url": "http://127.0.0.1:9001"}],
        "routes": [{"name": "all", "paths": ["/"], "target": "backend"}],
    }
    path = tmp_path / "quiver.json"
    path.write_text(json.dumps(document, indent="\t"))
    assert load_config(path) == load_config_text(MINIMAL)


def test_json_numbers_with_exponents_are_numbers() -> None:
    config = load('{"limits": {"max_headers": 1e2, "header_timeout": 2.5E1}}')
    assert config.limits.max_headers == 100
    assert config.limits.header_timeout == 25.0


def test_json_errors_carry_lines() -> None:
    issue = only_issue(
        '{\n  "targets": [{"name": "t", "url": "http://127.0.0.1:9"}],\n  "routes": [\n'
        '    {"name": "r", "paths": ["/"], "target": "t", "x": 1}\n  ]\n}'
    )
    assert (issue.location, issue.line) == ("routes[0].x", 4)


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing configured yet\n", "---\n", "~\n"])
def test_empty_file_means_defaults(text: str) -> None:
    assert load(text) == Config()


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    [issue] = caught.value.issues
    assert issue.source == str(path)
    assert "cannot read config file: No such file or directory" in issue.message


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "quiver.yaml"
    path.write_bytes(b"workers: \xff\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_error_text_names_file_line_and_location(tmp_path: Path) -> None:
    path = tmp_path / "quiver.yaml"
    path.write_text(MINIMAL.replace("    target: backend", "    target: backend\n    bogus: 1"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}:9: routes[0].bogus: unknown key 'bogus'"


# -- YAML structure -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- listen\n", "not a list"),
        ("just words\n", "not the text 'just words'"),
        ("42\n", "not the value 42"),
    ],
)
def test_top_level_must_be_a_mapping(text: str, expected: str) -> None:
    issue = only_issue(text)
    assert issue.message.startswith("the top level must be a mapping")
    assert expected in issue.message
    assert issue.line == 1


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("workers: 1\n  listen: x\n", 2, "mapping values are not allowed here"),
        (
            "routes:\n  - name: a\n    paths: [/a\n    target: b\n",
            4,
            "flow sequence that starts on line 3",
        ),
        ('workers: "1\n', 2, "found unexpected end of stream"),
        ("workers: 1\n\tlisten: x\n", 2, "found character '\\t' that cannot start any token"),
        ("workers: 1\n---\nworkers: 2\n", 2, "one YAML document; found a second"),
    ],
)
def test_syntax_errors_give_the_line(text: str, line: int, expected: str) -> None:
    issue = only_issue(text)
    assert issue.line == line
    assert expected in issue.message


@pytest.mark.parametrize(
    ("text", "location", "line", "first"),
    [
        ("workers: 1\nlisten: a:1\nworkers: 2\n", "workers", 3, 1),
        (TARGET + "    name: again\n", "targets[0].name", 4, 2),
        ('{"workers": 1,\n "workers": 2}', "workers", 2, 1),
    ],
)
def test_duplicate_keys_are_errors(text: str, location: str, line: int, first: int) -> None:
    issue = only_issue(text)
    key = location.rsplit(".", 1)[-1]
    assert issue.message == f"duplicate key '{key}' (first written on line {first})"
    assert (issue.location, issue.line) == (location, line)


def test_keys_are_the_text_written() -> None:
    # YAML 1.1 would read these keys as a boolean and an integer
    config = load(
        TARGET + "routes:\n  - {name: r, paths: [/], target: backend, headers: {on: x, 200: y}}"
    )
    assert config.routes[0].headers == {"on": ["x"], "200": ["y"]}


def test_merge_keys_fill_in_unwritten_keys() -> None:
    config = load(
        """\
        timeouts: &slow {connect: 1s, read: 5m}
        targets:
          - name: t
            url: http://a
            timeouts: {<<: *slow, read: 10m}
        """
    )
    assert config.targets[0].timeouts == Timeouts(connect=1.0, read=600.0)


def test_alias_cycle_is_reported_not_followed() -> None:
    issue = only_issue("routes: &loop [*loop]\n")
    assert (issue.location, issue.line) == ("routes[0]", 1)
    assert "alias refers to a value that contains it" in issue.message


def test_unknown_tag_is_reported() -> None:
    issue = only_issue("workers: 1\nlisten: !vault secret/listen\n")
    assert (issue.location, issue.line) == ("listen", 2)
    assert "could not determine a constructor for the tag '!vault'" in issue.message


# -- validation messages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "location", "line"),
    [
        ("workers: 1\nbogus: 1\n", "bogus", 2),
        ("limits:\n  max_headers: 10\n  bogus: 1\n", "limits.bogus", 3),
        (TARGET + "    bogus: 1\n", "targets[0].bogus", 4),
        (
            TARGET + "    timeouts:\n      read: 1s\n      bogus: 1\n",
            "targets[0].timeouts.bogus",
            6,
        ),
        (
            "targets:\n  - name: t\n    nodes:\n      - url: http://a\n        bogus: 2\n",
            "targets[0].nodes[0].bogus",
            5,
        ),
        (
            "listen:\n  - address: a:1\n    tls:\n"
            "      certificates: [{cert: c, key: k, bogus: 1}]\n",
            "listen[0].tls.certificates[0].bogus",
            4,
        ),
    ],
)
def test_unknown_keys_name_key_location_and_line(text: str, location: str, line: int) -> None:
    issue = only_issue(text)
    assert issue.message == "unknown key 'bogus'"
    assert (issue.location, issue.line, issue.source) == (location, line, "quiver.yaml")


@pytest.mark.parametrize(
    ("text", "location", "suggestion"),
    [
        ("routs: []\n", "routs", "routes"),
        ("limits: {max_header: 10}\n", "limits.max_header", "max_headers"),
        (TARGET + "    timeouts: {conect: 1}\n", "targets[0].timeouts.conect", "connect"),
        (TARGET + "    tls_verfy: false\n", "targets[0].tls_verfy", "tls_verify"),
    ],
)
def test_unknown_key_suggests_a_close_field(text: str, location: str, suggestion: str) -> None:
    issue = only_issue(text)
    key = location.rsplit(".", 1)[-1]
    assert issue.message == f"unknown key '{key}'; did you mean '{suggestion}'?"
    assert issue.location == location


def test_missing_required_key() -> None:
    found = issues(TARGET + "routes:\n  - name: r\n    path: [/]\n    target: backend\n")
    assert [(i.location, i.line, i.message) for i in found] == [
        ("routes[0]", 5, "missing required key 'paths'"),
        ("routes[0].path", 6, "unknown key 'path'; did you mean 'paths'?"),
    ]


DURATION_MESSAGE = "not a duration: '5 parsecs' (use e.g. 500ms, 5s, 2m, 1h, 1d)"
SIZE_MESSAGE = "not a size: '10XB' (use e.g. 64k, 10MB, 1GiB)"


@pytest.mark.parametrize(
    ("text", "location", "line", "message"),
    [
        ("timeouts:\n  connect: 5 parsecs\n", "timeouts.connect", 2, DURATION_MESSAGE),
        ("limits:\n  max_body_size: 10XB\n", "limits.max_body_size", 2, SIZE_MESSAGE),
        ("limits:\n  max_headers: 0\n", "limits.max_headers", 2, "Input should be greater than 0"),
        ("listen: localhost\n", "listen", 1, "expected host:port, got 'localhost'"),
        (
            "targets:\n  - name: t\n",
            "targets[0]",
            2,
            "give exactly one of 'url' or 'nodes'",
        ),
    ],
)
def test_value_errors_read_plainly(text: str, location: str, line: int, message: str) -> None:
    issue = only_issue(text)
    assert (issue.location, issue.line, issue.message) == (location, line, message)


def test_union_failure_is_one_issue() -> None:
    issue = only_issue("workers: many\n")
    assert issue.location == "workers"
    assert "Input should be 'auto'" in issue.message
    assert "valid integer" in issue.message


# -- ${VAR} substitution ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${HOST}", {"HOST": "10.0.0.5"}, "http://10.0.0.5"),
        ("${HOST:-127.0.0.1}", {}, "http://127.0.0.1"),
        ("${HOST:-127.0.0.1}", {"HOST": ""}, "http://127.0.0.1"),
        ("${HOST:-127.0.0.1}", {"HOST": "h"}, "http://h"),
        ("${HOST}:${PORT:-80}", {"HOST": "h"}, "http://h:80"),
        ("h/$$x", {}, "http://h/$x"),
        ("h/a$b", {}, "http://h/a$b"),
    ],
)
def test_env_substitution(value: str, env: dict[str, str], expected: str) -> None:
    config = load(f"targets:\n  - name: t\n    url: http://{value}\n", env)
    assert config.targets[0].url == expected


def test_doubled_dollar_keeps_a_reference_literal() -> None:
    config = load(TARGET + "    tls_ca_file: /etc/$${NOT_EXPANDED}/ca.pem\n", {"NOT_EXPANDED": "x"})
    assert config.targets[0].tls_ca_file == "/etc/${NOT_EXPANDED}/ca.pem"


def test_substituted_strings_are_coerced_where_numbers_are_expected() -> None:
    config = load(
        'workers: "${W}"\nlimits:\n  max_headers: "${N}"\n  max_body_size: ${B}\n',
        {"N": "50", "W": "3", "B": "1MB"},
    )
    assert (config.limits.max_headers, config.workers, config.limits.max_body_size) == (
        50,
        3,
        1024**2,
    )


def test_substitution_leaves_keys_and_regex_anchors_alone() -> None:
    config = load(
        TARGET
        + "routes:\n  - name: r\n    paths: ['~^/items$']\n    target: backend\n"
        + "    headers: {'${KEY}': '${VALUE}'}\n",
        {"KEY": "k", "VALUE": "v"},
    )
    assert config.routes[0].paths == ["~^/items$"]
    assert config.routes[0].headers == {"${KEY}": ["v"]}


def test_missing_variable_names_key_line_and_variable() -> None:
    issue = only_issue(TARGET + "    tls_ca_file: ${CA_FILE}\n")
    assert (issue.location, issue.line) == ("targets[0].tls_ca_file", 4)
    assert issue.message.startswith("environment variable 'CA_FILE' is not set")


def test_missing_variable_suppresses_the_knock_on_validation_error() -> None:
    issue = only_issue('limits:\n  max_headers: "${N}"\n')
    assert issue.location == "limits.max_headers"
    assert "'N' is not set" in issue.message


def test_every_missing_variable_is_reported() -> None:
    found = issues("listen: ${LISTEN}\ntargets:\n  - name: t\n    url: http://${A}:${B}\n")
    assert [(i.line, i.location) for i in found] == [(1, "listen"), (4, "targets[0].url")]
    assert "'A' is not set" in found[1].message and "'B' is not set" in found[1].message


@pytest.mark.parametrize(
    ("value", "expected"),
    [("${", "'${' without a closing '}'"), ("${1X}", "bad variable reference '${1X}'")],
)
def test_malformed_references(value: str, expected: str) -> None:
    issue = only_issue(f"targets:\n  - name: t\n    url: 'http://{value}'\n")
    assert (issue.location, issue.line, issue.message) == ("targets[0].url", 3, expected)


# -- references between entities -------------------------------------------------------------


def test_route_to_unknown_target_lists_defined_targets() -> None:
    issue = only_issue(TARGET + "routes:\n  - name: r\n    paths: [/]\n    target: backnd\n")
    assert (issue.location, issue.line) == ("routes[0].target", 7)
    assert (
        issue.message
        == "unknown target 'backnd' (defined targets: 'backend'); did you mean 'backend'?"
    )


def test_route_to_target_when_none_defined() -> None:
    issue = only_issue("routes:\n  - name: r\n    paths: [/]\n    target: api\n")
    assert issue.message == "unknown target 'api': no targets are defined"


def test_duplicate_names() -> None:
    found = issues(
        """\
        targets:
          - {name: a, url: "http://a"}
          - {name: a, url: "http://b"}
        routes:
          - {name: r, paths: [/], target: a}
          - {name: r, paths: [/x], target: a}
        """
    )
    assert [(i.location, i.line, i.message) for i in found] == [
        ("targets[1].name", 3, "duplicate target name 'a' (also targets[0] on line 2)"),
        ("routes[1].name", 6, "duplicate route name 'r' (also routes[0] on line 5)"),
    ]


@pytest.mark.parametrize(
    ("paths", "rewrite"),
    [
        (["/users/{id}"], "/v2/users/{id}"),
        (["~^/u/(?P<id>\\d+)$"], "/users/{id}"),
        (["/users/{id}", "~^/people/(?P<id>\\d+)"], "/v2/{id}"),
        (["/a"], "/b"),
    ],
)
def test_rewrite_with_captured_params_loads(paths: list[str], rewrite: str) -> None:
    route = {"name": "r", "paths": paths, "target": "backend", "rewrite": rewrite}
    config = load(TARGET + "routes:\n  - " + json.dumps(route) + "\n")
    assert config.routes[0].rewrite == rewrite


@pytest.mark.parametrize(
    ("paths", "rewrite", "messages"),
    [
        (["/users"], "/v2/{id}", ["'{id}' is not captured by path '/users'"]),
        (
            ["/users/{id}", "/people/{pid}"],
            "/v2/{id}",
            [
                "'{id}' is not captured by path '/people/{pid}'; "
                "a rewrite may only use parameters that every path captures"
            ],
        ),
        (
            ["/o/{org}/u/{id}", "~^/(?P<org>\\w+)$"],
            "/{org}/{id}/{x}",
            [
                "'{id}' is not captured by path '~^/(?P<org>\\w+)$'; usable here: {org}",
                "'{x}' is not captured by paths '/o/{org}/u/{id}', '~^/(?P<org>\\w+)$'; "
                "usable here: {org}",
            ],
        ),
    ],
)
def test_rewrite_params_must_be_captured_by_every_path(
    paths: list[str], rewrite: str, messages: list[str]
) -> None:
    route = {"name": "r", "paths": paths, "target": "backend", "rewrite": rewrite}
    found = issues(TARGET + "routes:\n  - " + json.dumps(route) + "\n")
    assert [i.message for i in found] == messages
    assert {(i.location, i.line) for i in found} == {("routes[0].rewrite", 5)}


def test_all_issues_are_reported_together_sorted_by_line() -> None:
    found = issues(
        """\
        routes:
          - name: r
            paths: [items]
            target: backend
        targets:
          - name: backend
            url: ftp://a
        workers: 0
        limits: {max_header_size: huge}
        lisen: a:1
        """
    )
    assert [(i.line, i.location) for i in found] == [
        (3, "routes[0].paths"),
        (7, "targets[0].url"),
        (8, "workers"),
        (9, "limits.max_header_size"),
        (10, "lisen"),
    ]
    assert found[-1].message == "unknown key 'lisen'; did you mean 'listen'?"


def test_cross_references_are_checked_with_other_reader_issues() -> None:
    found = issues(TARGET + "routes:\n  - {name: r, paths: [/], target: nope, target: b}\n")
    assert [i.message.split(" (")[0] for i in found] == [
        "duplicate key 'target'",
        "unknown target 'nope'",
    ]


# -- effective per-target settings ------------------------------------------------------------


def test_target_timeouts_override_only_the_keys_written() -> None:
    config = load(
        """\
        timeouts: {connect: 2s, read: 30s, write: 40s}
        targets:
          - name: slow
            url: http://a
            timeouts: {read: 5m}
          - name: plain
            url: http://b
        """
    )
    slow, plain = config.targets
    assert effective_timeouts(config, slow) == Timeouts(connect=2.0, read=300.0, write=40.0)
    assert effective_timeouts(config, plain) == config.timeouts


def test_target_pool_overrides_only_the_keys_written() -> None:
    config = load(
        """\
        pool: {max_idle: 8, max_connections: 100}
        targets:
          - name: t
            url: http://a
            pool: {max_idle: 64, idle_timeout: 5s}
        """
    )
    assert effective_pool(config, config.targets[0]) == Pool(
        max_idle=64, idle_timeout=5.0, max_requests=0, max_connections=100
    )


def test_explicit_default_value_still_overrides() -> None:
    config = load(
        "timeouts: {connect: 1s}\n"
        "targets:\n  - {name: t, url: 'http://a', timeouts: {connect: 5s}}\n"
    )
    assert effective_timeouts(config, config.targets[0]).connect == 5.0
