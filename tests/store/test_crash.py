"""kill -9 of the admin process in the middle of a large apply leaves the store at the
old revision or the new one, never between."""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from quiver.store import open_store
from tests.support.catalog import built_in
from tests.support.process import QuiverProcess

TOKEN = "qv_" + "k" * 43
ADMIN = re.compile(r"admin API listening on (http://[^\s]+)")
RUN_ADMIN = (
    "import sys; from quiver.admin.process import AdminSettings, run_admin; "
    "from quiver.target_types import default_catalog; "
    "from quiver.logconfig import configure_logging; configure_logging(); "
    "run_admin(AdminSettings(store_url=sys.argv[1], listen='127.0.0.1:0'), default_catalog())"
)
#: seconds after the request is sent when the admin process is killed
DELAYS = (0.1, 0.3, 0.5, 0.7, 0.9, 1.2)


def declaration(variant: str, routes: int = 3000) -> dict[str, Any]:
    return {
        "targets": [{"name": f"t{i}", "url": f"http://127.0.0.1:{9000 + i}"} for i in range(20)],
        "routes": [
            {"name": f"r{i}", "paths": [f"/{variant}/{i}"], "target": f"t{i % 20}"}
            | ({"plugins": {"acl": {"allow": [variant]}}} if i % 4 == 0 else {})
            for i in range(routes)
        ],
    }


def apply_killed_after(url: str, document: dict[str, Any], delay: float) -> object:
    """POST the apply to an admin process killed ``delay`` seconds later; what the
    client got: a status code, or the error of a cut connection."""
    command = [sys.executable, "-c", RUN_ADMIN, url]
    answered: list[object] = []
    with QuiverProcess([], env={"QUIVER_ADMIN_TOKEN": TOKEN}, command=command) as proc:
        [match] = proc.wait_for(ADMIN)
        sent = threading.Event()

        def apply() -> None:
            try:
                with httpx.Client(timeout=60) as client:
                    request = client.build_request(
                        "POST",
                        f"{match.group(1)}/config/apply",
                        json={"document": document, "message": "large"},
                        headers={"Authorization": f"Bearer {TOKEN}"},
                    )
                    sent.set()
                    answered.append(client.send(request).status_code)
            except httpx.HTTPError as exc:
                answered.append(exc)

        thread = threading.Thread(target=apply)
        thread.start()
        sent.wait(10)
        # not a wait for something to happen: where in the apply the kill lands is the test
        threading.Event().wait(delay)
        proc.kill()
        thread.join(60)
    return answered[0]


def test_a_killed_apply_leaves_the_old_or_the_new_revision(tmp_path: Path) -> None:
    old, new = declaration("old"), declaration("new")
    outcomes = []
    for attempt, delay in enumerate(DELAYS):
        url = str(tmp_path / f"quiver-{attempt}.db")
        with_old = open_store(url, built_in())
        with_old.apply(old, author="setup")
        before = with_old.current()
        with_old.close()

        answer = apply_killed_after(url, new, delay)

        store = open_store(url, built_in())
        try:
            head = store.head()
            assert head in (1, 2), f"after a kill at {delay}s"
            if head == 1:
                assert store.current() == before, f"a cut apply left rows behind ({delay}s)"
            else:
                routes = store.current()["routes"]
                assert [r["paths"] for r in routes] == [r["paths"] for r in new["routes"]]
                assert store.revision(2).message == "large"
            again = store.apply(new, author="after")  # no lock or half-written row left over
            assert (again is None) if head == 2 else (again is not None and again.number == 2)
        finally:
            store.close()
        outcomes.append((delay, head, answer))
    cut = [outcome for outcome in outcomes if isinstance(outcome[2], httpx.HTTPError)]
    assert cut, f"no kill landed inside an apply: {outcomes}"
