"""The access_log setting: what validates, and what is refused with the key named
(by `quiver check`, with its line)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from quiver.config.access_log import ACCESS_LOG_FIELDS, AccessLog
from quiver.config.models import Config
from tests.support.process import catch_all_config, run_quiver, write_config


@pytest.mark.parametrize(
    "data",
    [
        {"to": "stdout"},
        {"to": "stderr", "format": "text"},
        {"to": "/var/log/quiver/access.log", "rotate": {"size": "100MB", "keep": 3}},
        {"to": "access.log", "rotate": {"every": "1d"}, "sample": 0.25, "queue": 100},
        {"to": "syslog", "syslog": {"address": "127.0.0.1:514", "facility": "local7"}},
        {"to": "syslog"},
        {"to": "stdout", "fields": ["status", "path"], "query": True},
    ],
)
def test_valid_settings(data: dict[str, Any]) -> None:
    AccessLog.model_validate(data)


@pytest.mark.parametrize(
    ("data", "where", "message"),
    [
        ({}, "to", "Field required"),
        ({"to": " "}, "to", "expected stdout, stderr, syslog or a file path"),
        ({"to": "stdout", "format": "xml"}, "format", "'json' or 'text'"),
        ({"to": "stdout", "fields": ["status", "referer"]}, "fields.1", "'time'"),
        ({"to": "stdout", "fields": []}, "fields", "name at least one field"),
        ({"to": "stdout", "sample": 1.5}, "sample", "less than or equal to 1"),
        ({"to": "stdout", "queue": 0}, "queue", "greater than or equal to 1"),
        ({"to": "a.log", "rotate": {"keep": 2}}, "rotate", "rotate needs size, every or both"),
        ({"to": "a.log", "rotate": {"size": "big"}}, "rotate.size", "not a size"),
        ({"to": "stdout", "rotate": {"size": 10}}, "", "rotate is for a file path"),
        ({"to": "a.log", "syslog": {}}, "", "syslog settings need to: syslog"),
        ({"to": "syslog", "syslog": {"facility": "local9"}}, "syslog.facility", "unknown facility"),
        ({"to": "syslog", "syslog": {"address": "nowhere"}}, "syslog.address", "host:port"),
        ({"to": "stdout", "colour": True}, "colour", "Extra inputs"),
    ],
)
def test_invalid_settings_name_the_key(data: dict[str, Any], where: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AccessLog.model_validate(data)
    [error] = caught.value.errors()
    assert ".".join(str(part) for part in error["loc"]) == where
    assert message in error["msg"]


def test_no_access_log_by_default() -> None:
    config = Config.model_validate({})
    assert config.access_log is None
    assert AccessLog(to="stdout").fields == list(ACCESS_LOG_FIELDS)


def test_check_names_a_bad_access_log_key_with_its_line(tmp_path: Path) -> None:
    text = catch_all_config("http://127.0.0.1:9001") + (
        "access_log:\n  to: access.log\n  sample: 2\n  rotate: {size: 1MB, kept: 3}\n"
    )
    path = write_config(tmp_path, text)
    result = run_quiver("check", "-c", str(path))
    assert result.returncode == 1
    assert f"{path}:11: access_log.sample:" in result.stderr
    assert f"{path}:12: access_log.rotate.kept: unknown key 'kept'" in result.stderr
