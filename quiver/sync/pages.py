"""The responses of one walk, in page order, each with where the walk stands after it.

When the paginator can tell every page from the first response (a total), the rest
are fetched ``concurrency`` at a time and still handed on in order: state after page
N then means "pages 1..N are in" whatever order they arrived in. At most
``concurrency`` responses are held, so memory stays bounded whatever the source's size.

The position stored with a page (``next`` in the state) is the next page's request
while walking, or ``{"parallel": n, "of": total}`` once n pages of a planned walk are in: a
resumed walk asks for the first page again to learn the plan, then skips n pages.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict
from typing import Any, Protocol

from quiver.client import Paginator, RequestSpec, Response
from quiver.client.pagination import repeats
from quiver.sync.select import Selector


class Client(Protocol):
    async def send(self, spec: RequestSpec) -> Response: ...


def request_of(position: dict[str, Any]) -> RequestSpec:
    return RequestSpec(**position)


def position_of(request: RequestSpec) -> dict[str, Any]:
    stored = asdict(request)
    stored.pop("headers")  # the resource's config says them again, secrets included
    return stored


async def walk(
    client: Client,
    paginator: Paginator,
    first: RequestSpec,
    selector: Selector,
    *,
    resume: dict[str, Any] | None,
    concurrency: int,
) -> AsyncIterator[tuple[Response, dict[str, Any] | None]]:
    """Each response with the position to store once it is loaded (None: the last)."""
    if resume is not None and "parallel" not in resume:
        request = request_of(resume)
        response = await client.send(request)
    else:
        request = paginator.first(first)
        response = await client.send(request)
        plan = paginator.parallel(response, selector.records(response.json()))
        if plan is not None:
            count, total = (resume["parallel"] if resume else 1), 1 + len(plan)
            if not resume:
                yield response, {"parallel": 1, "of": total} if plan else None
            async for response in _window(client, iter(plan[count - 1 :]), concurrency):
                count += 1
                yield response, {"parallel": count, "of": total} if count < total else None
            return
    while True:
        following = paginator.next(request, response, selector.records(response.json()))
        if following is not None and repeats(request, following, response):
            # the client's pages() stops the same way: asking again would never end
            message = "%s names itself as the next page: the walk ends"
            logging.getLogger("quiver.sync").warning(message, response.url)
            following = None
        yield response, None if following is None else position_of(following)
        if following is None:
            return
        request = following
        response = await client.send(request)


async def _window(
    client: Client, requests: Iterator[RequestSpec], size: int
) -> AsyncIterator[Response]:
    pending: deque[asyncio.Task[Response]] = deque()
    try:
        for request in requests:
            pending.append(asyncio.ensure_future(client.send(request)))
            if len(pending) >= size:
                break
        while pending:
            response = await pending.popleft()
            following = next(requests, None)
            if following is not None:
                pending.append(asyncio.ensure_future(client.send(following)))
            yield response
    finally:
        for task in pending:
            task.cancel()
