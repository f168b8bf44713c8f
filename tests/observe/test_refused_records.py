"""Requests the gateway refuses before routing (a malformed head, limits, framing)
are recorded like any other answered request: an access log line, a count in the
request counters and a call, under the request id their answer carried."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from quiver.config.access_log import AccessLog
from quiver.config.models import CallLogSettings
from quiver.observe.metrics import MetricsOutput
from quiver.observe.writer import writer_for
from tests.observe.support import line_for
from tests.support.nodes import wait_until
from tests.support.proxy import RunningProxy, exchange, make_config
from tests.support.upstream import Upstream, echo

pytestmark = pytest.mark.timeout(30)

_MANY_FIELDS = b"".join(b"X-F%d: v\r\n" % n for n in range(101))

#: what is sent, the status answered, and the method and path the record keeps
#: (empty: what the refusal left unread)
REFUSED = {
    "malformed field": (
        b"GET /bad HTTP/1.1\r\nHost: a\r\nNo colon here\r\n\r\n", 400, "GET", "/bad"
    ),
    "malformed request line": (b"\x01\x02 what\r\n\r\n", 400, "", ""),
    "request line too long": (
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414, "GET", ""
    ),
    "too many fields": (
        b"GET /many HTTP/1.1\r\nHost: a\r\nUser-Agent: probe/2\r\n" + _MANY_FIELDS + b"\r\n",
        431, "GET", "/many",
    ),
    "no host": (b"GET /nohost HTTP/1.1\r\nUser-Agent: probe/2\r\n\r\n", 400, "GET", "/nohost"),
    "length and chunked": (
        b"POST /both?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400, "POST", "/both",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_request_is_logged_counted_and_spooled(tmp_path: Path, case: str) -> None:
    sent, status, method, path = REFUSED[case]
    log_path, calls = tmp_path / "access.log", tmp_path / "calls"
    counters = MetricsOutput()
    writer = writer_for(AccessLog(to=str(log_path)), CallLogSettings(), calls, counters)
    with Upstream(echo) as node:
        config = make_config({"backend": node.url})
        with RunningProxy(config, record_writer=writer) as proxy:
            response = exchange(proxy.port, sent)
            assert response.status == status
            request_id = response.header("x-request-id")
            assert request_id
            line = line_for(log_path, "request_id", request_id)
            wait_until(lambda: counters.counted == 1, "the refusal counted")
            wait_until(lambda: any(calls.glob("*.jsonl.done")), "the call spooled")
    assert (line["status"], line["method"], line["path"]) == (status, method, path)
    assert (line["route"], line["target"], line["node"]) == (None, None, None)
    assert line["client_ip"] == "127.0.0.1"
    if method:
        assert line["user_agent"] in ("probe/2", None)
    assert counters.snapshot()["routes"][""]["status"] == {f"{status // 100}xx": 1}
    [spooled] = [
        json.loads(text) for p in calls.glob("*.jsonl.done") for text in p.read_text().splitlines()
    ]
    assert spooled["request_id"] == request_id and spooled["status"] == status


def test_the_fields_read_before_a_refusal_are_kept(tmp_path: Path) -> None:
    log_path = tmp_path / "access.log"
    writer = writer_for(AccessLog(to=str(log_path)), CallLogSettings(), None)
    config = make_config({"backend": "http://127.0.0.1:9"})
    with RunningProxy(config, record_writer=writer) as proxy:
        response = exchange(proxy.port, REFUSED["no host"][0])
        line: dict[str, Any] = line_for(log_path, "request_id", response.header("x-request-id"))
    assert line["user_agent"] == "probe/2"
