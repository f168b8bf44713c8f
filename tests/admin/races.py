"""Two writers replacing one entity with the ETag both read: no update may be lost."""

from __future__ import annotations

import threading

import httpx

TARGET = {"name": "orders", "url": "http://127.0.0.1:9001"}


def concurrent_replaces(admin: httpx.Client) -> list[int]:
    """Create ``orders``, then PUT it from two clients at once with its first ETag:
    the two statuses, sorted."""
    tag = admin.post("/targets", json=TARGET).headers["etag"]
    start = threading.Barrier(2, timeout=30)
    results: list[int] = []

    def writer(port: int) -> None:
        with httpx.Client(
            base_url=str(admin.base_url), headers=admin.headers, timeout=30
        ) as client:
            start.wait()
            doc = {"name": "orders", "url": f"http://127.0.0.1:{port}"}
            results.append(
                client.put("/targets/orders", json=doc, headers={"If-Match": tag}).status_code
            )

    threads = [threading.Thread(target=writer, args=(port,)) for port in (9101, 9102)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return sorted(results)
