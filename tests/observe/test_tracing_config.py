"""The tracing setting: what validates, and what is refused with the key named
(by `quiver check`, with its line)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from quiver.config.models import Config
from quiver.config.tracing import Tracing
from tests.support.process import catch_all_config, run_quiver, write_config


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"sample": 0},
        {"sample": 1, "respect_parent": False, "service_name": "edge-eu"},
        {"otlp": {"endpoint": "https://otel.example:4318/v1/traces", "timeout": "2s"}},
        {"otlp": {"headers": {"authorization": "Bearer x"}}, "queue": 10},
    ],
)
def test_valid_settings(data: dict[str, Any]) -> None:
    Tracing.model_validate(data)


@pytest.mark.parametrize(
    ("data", "where", "message"),
    [
        ({"sample": 1.5}, "sample", "less than or equal to 1"),
        ({"sample": -0.1}, "sample", "greater than or equal to 0"),
        ({"queue": 0}, "queue", "greater than or equal to 1"),
        ({"otlp": {"endpoint": "collector:4318"}}, "otlp.endpoint", "http:// or https:// URL"),
        ({"otlp": {"timeout": "soon"}}, "otlp.timeout", "duration"),
        ({"otlp": {"protocol": "grpc"}}, "otlp.protocol", "Extra inputs"),
        ({"enabled": True}, "enabled", "Extra inputs"),
    ],
)
def test_invalid_settings_name_the_key(data: dict[str, Any], where: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Tracing.model_validate(data)
    [error] = caught.value.errors()
    assert ".".join(str(part) for part in error["loc"]) == where
    assert message in error["msg"]


def test_defaults() -> None:
    assert Config.model_validate({}).tracing is None
    settings = Tracing()
    assert (settings.sample, settings.respect_parent, settings.service_name) == (
        0.01,
        True,
        "quiver",
    )
    assert settings.otlp.endpoint == "http://127.0.0.1:4318/v1/traces"


def test_check_names_a_bad_tracing_key_with_its_line(tmp_path: Path) -> None:
    text = catch_all_config("http://127.0.0.1:9001") + "tracing:\n  sample: 2\n"
    path = write_config(tmp_path, text)
    result = run_quiver("check", "-c", str(path))
    assert result.returncode == 1
    assert f"{path}:10: tracing.sample:" in result.stderr


def test_a_tracing_section_without_the_otel_extra_is_an_error(tmp_path: Path) -> None:
    """`quiver check` where opentelemetry-proto cannot be imported (as when the extra
    is not installed): the section is refused, the install named; a config without
    one is fine."""
    text = catch_all_config("http://127.0.0.1:9001")
    traced = write_config(tmp_path, text + "tracing:\n  sample: 0.5\n")
    result = _check_without_extra(traced)
    assert result.returncode == 1
    assert f"{traced}:9: tracing: spans are exported with opentelemetry-proto" in result.stderr
    assert "pip install 'quiver-gateway[otel]'" in result.stderr
    result = _check_without_extra(write_config(tmp_path, text, "plain.yaml"))
    assert result.returncode == 0, result.stderr


def _check_without_extra(path: Path) -> subprocess.CompletedProcess[str]:
    without_extra = (
        "import sys; sys.modules['opentelemetry.proto'] = None; "  # (None: its import fails)
        "from quiver.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    return subprocess.run(
        [sys.executable, "-c", without_extra, "check", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
