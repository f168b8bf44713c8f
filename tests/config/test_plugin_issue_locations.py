"""A plugin's rules that read several keys report the key to change, at its line,
with its value as written, as the errors of a single key are reported."""

from __future__ import annotations

import pytest

from quiver.config import load_config_text
from quiver.errors import ConfigError, ConfigIssue
from tests.support.catalog import built_in

HEAD = """\
listen: 127.0.0.1:0
targets:
  - name: backend
    url: http://127.0.0.1:9001
routes:
  - name: items
    paths: ["/items"]
    target: backend
    plugins:
"""  # the plugins of routes[0] start on line 10


def only_issue(plugins: str) -> ConfigIssue:
    with pytest.raises(ConfigError) as caught:
        load_config_text(HEAD + plugins, source="bad.yaml", env={}, catalog=built_in())
    [issue] = caught.value.issues
    return issue


PLUGINS = "routes[0].plugins"


@pytest.mark.parametrize(
    ("plugins", "location", "line", "message"),
    [
        (
            """\
      rate-limit:
        by: consumer
        limits:
          - limit: 10
            window: 1s
          - limit: 1000
            window: 2d
""",
            "rate-limit.limits[1].window",
            16,
            "window 2d: windows go from 1s to 1d",
        ),
        (
            """\
      rate-limit:
        limits:
          - limit: 10
            window: 60
          - limit: 5
            window: 1m
""",
            "rate-limit.limits[1].window",
            15,
            "the same window as limits[0]; keep the lower limit",
        ),
        (
            """\
      rate-limit:
        limit: 10
        window: 1m
        burst: 20
""",
            "rate-limit.burst",
            13,
            "burst applies to algorithm token_bucket only",
        ),
        (
            """\
      rate-limit:
        limit: 10
        window: 1.5
""",
            "rate-limit.window",
            12,
            "window 1.5: a window is a whole number of seconds",
        ),
        (
            """\
      rate-limit:
        limit: 10
        window: 1m
        store: redis
        redis:
          url: redis://:secret@cache:6379/x
""",
            "rate-limit.redis.url",
            15,
            "redis://:***@cache:6379/x: db must be a number, not 'x'",
        ),
        (
            """\
      quota:
        limit: 100
        period: 7d
        time_zone: Europe/Paris
""",
            "quota.time_zone",
            13,
            "time_zone Europe/Paris: time zones apply to calendar periods (day, week, "
            "month) only, not to a rolling period",
        ),
        (
            """\
      proxy-cache:
        backend: redis
        redis:
          url: redis+cluster://cache:7000
""",
            "proxy-cache.redis.url",
            13,
            "the cache needs one Redis (or a Sentinel's master), not a Cluster",
        ),
        (
            """\
      proxy-cache:
        memory_size: 1MiB
        max_entry_size: 2MiB
""",
            "proxy-cache.max_entry_size",
            12,
            "max_entry_size 2MiB is more than memory_size 1MiB: entries that large could "
            "never be kept",
        ),
        (
            """\
      concurrency-limit:
        limit: 4
        queue_timeout: 2s
""",
            "concurrency-limit.queue_timeout",
            12,
            "queue_timeout applies with a queue; set queue: N",
        ),
        (
            """\
      concurrency-limit:
        limit: 4
        retry_after: 0
""",
            "concurrency-limit.retry_after",
            12,
            "retry_after 0s: at least 1 second",
        ),
    ],
)
def test_rules_across_keys_are_reported_at_the_key(
    plugins: str, location: str, line: int, message: str
) -> None:
    issue = only_issue(plugins)
    assert (issue.location, issue.line, issue.message) == (f"{PLUGINS}.{location}", line, message)
    assert "secret" not in str(issue)


def test_a_rule_about_a_missing_key_names_the_one_given() -> None:
    issue = only_issue("      rate-limit:\n        window: 1m\n")
    assert (issue.location, issue.line) == (f"{PLUGINS}.rate-limit.window", 11)
    assert issue.message == "limit and window go together"
