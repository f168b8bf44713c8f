"""A webhook receiver for tests: a threaded HTTP server on port 0 that verifies
every delivery with the ``standardwebhooks`` library and answers as told."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Received:
    msg_id: str
    event: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Receiver:
    secrets: list[str]
    url: str = ""
    #: statuses to answer, in turn; 200 once they run out
    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    refused: int = 0  # deliveries no secret verified
    #: when set, each request waits for it before answering (a held request)
    hold: threading.Event | None = None
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.received) >= count, timeout), (
                f"got {len(self.received)} of {count} deliveries"
            )
            return list(self.received)

    def ids(self) -> set[str]:
        return {item.msg_id for item in self.received}


@contextmanager
def receiving(*secrets: str) -> Iterator[Receiver]:
    receiver = Receiver(list(secrets))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["content-length"])
            body = self.rfile.read(length)
            if len(body) < length:  # the sender died mid-request: nothing was delivered
                return
            headers = {name.lower(): value for name, value in self.headers.items()}
            verified = False
            for secret in receiver.secrets:
                try:
                    Webhook(secret).verify(body, headers)
                    verified = True
                except Exception:
                    continue
            with receiver.arrived:
                status = receiver.answers.pop(0) if receiver.answers else 200
                if not verified:
                    receiver.refused += 1
                    status = 400
                else:
                    receiver.received.append(
                        Received(headers["webhook-id"], json.loads(body), headers)
                    )
                receiver.arrived.notify_all()
            if receiver.hold is not None:
                receiver.hold.wait(30)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield receiver
    finally:
        if receiver.hold is not None:
            receiver.hold.set()
        server.shutdown()
        server.server_close()
        thread.join()
