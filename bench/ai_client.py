#!/usr/bin/env python3
"""One HTTP/1.1 client connection that times chat-completion requests, one at a time.

The AI benchmark (``bench/ai_bench.py``) runs it on the load core against the fake
OpenAI backend directly and through each gateway::

    python3 ai_client.py --port P --path /v1/chat/completions --key K \\
        --model gpt-bench-stream --stream --seconds 5 --max 5000 --warmup 50

It sends POST requests back to back on one keep-alive connection (a new one only if
the server closes it), reads each response to its last byte (``Content-Length`` or
chunked framing) and writes one JSON object to stdout: the time from sending each
request to the end of its response and to the first byte of its body, in
microseconds, and the responses that failed. Raw sockets keep the client's own cost
small and the same for every server; ``exchange`` is also what the benchmark uses to
check answers before measuring.

Standard library only: this runs before anything else is installed.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from dataclasses import dataclass


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated header keeps its last value
    body: bytes  # de-chunked
    ttfb_ns: int  # from sending the request to the first byte of the body
    total_ns: int  # from sending the request to the last byte of the response


class Connection:
    """A keep-alive HTTP/1.1 connection to 127.0.0.1:port with a read buffer."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.port = port
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = sock, b""
        return sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _more(self) -> None:
        assert self.sock is not None
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection mid-response")
        self.buf += data

    def _line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            self._more()
        line, self.buf = self.buf[:end], self.buf[end + 2 :]
        return line

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._more()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def exchange(self, path: str, headers: dict[str, str], body: bytes) -> Response:
        """POST ``body`` to ``path`` and read the whole response."""
        head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        sock = self.sock or self._connect()
        t0 = time.perf_counter_ns()
        sock.sendall(request)
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._more()
        status_line, *lines = self.buf[:end].decode("latin-1").split("\r\n")
        self.buf = self.buf[end + 4 :]
        status = int(status_line.split()[1])
        fields = {}
        for line in lines:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if not self.buf:
            self._more()
        ttfb = time.perf_counter_ns() - t0
        if "content-length" in fields:
            data = self._exactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while size := int(self._line().split(b";")[0], 16):
                parts.append(self._exactly(size))
                self._exactly(2)
            while self._line():  # trailers, up to the empty line
                pass
            data = b"".join(parts)
        else:  # delimited by the end of the connection
            while True:
                assert self.sock is not None
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
            data, self.buf = self.buf, b""
            fields["connection"] = "close"
        total = time.perf_counter_ns() - t0
        if fields.get("connection", "").lower() == "close":
            self.close()
        return Response(status, fields, data, ttfb, total)


def request_body(model: str, stream: bool) -> bytes:
    """The chat request every measured call sends (streaming asks for the usage chunk)."""
    doc: dict[str, object] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Say hello to the benchmark in one sentence."},
        ],
    }
    if stream:
        doc["stream"] = True
        doc["stream_options"] = {"include_usage": True}
    return json.dumps(doc, separators=(",", ":")).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--key", default="", help="sent as Authorization: Bearer KEY")
    parser.add_argument("--model", required=True)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--seconds", type=float, required=True, help="measuring time")
    parser.add_argument("--max", type=int, default=5000, help="at most this many requests")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests first")
    args = parser.parse_args()

    headers = {"Content-Type": "application/json"}
    if args.key:
        headers["Authorization"] = f"Bearer {args.key}"
    body = request_body(args.model, args.stream)
    conn = Connection(args.port)
    total: list[int] = []
    ttfb: list[int] = []
    errors: dict[str, int] = {}
    done_marker = b"data: [DONE]"
    for _ in range(args.warmup):
        conn.exchange(args.path, headers, body)
    deadline = time.monotonic() + args.seconds
    while len(total) < args.max and time.monotonic() < deadline:
        try:
            r = conn.exchange(args.path, headers, body)
        except OSError as exc:
            conn.close()
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            continue
        if r.status != 200:
            errors[f"status {r.status}"] = errors.get(f"status {r.status}", 0) + 1
        elif args.stream and done_marker not in r.body[-64:]:
            errors["stream without [DONE]"] = errors.get("stream without [DONE]", 0) + 1
        else:
            total.append(r.total_ns // 1000)
            ttfb.append(r.ttfb_ns // 1000)
    conn.close()
    json.dump({"total_us": total, "ttfb_us": ttfb, "errors": errors}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
