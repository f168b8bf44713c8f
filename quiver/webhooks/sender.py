"""The delivery engine: claims due deliveries from the store and posts them.

It runs in the admin sidecar (beside the call-log ingester), in a thread of its
own, with up to ``concurrency`` posts in flight: it claims more as each one ends,
and no endpoint holds more than ``per_endpoint`` of them, so an endpoint that
answers slowly (or never, until the timeout) delays only its own deliveries.
When nothing is due it waits until the soonest delivery falls due (a retry on
its schedule), an event is published in this process, or ``poll_s`` passed (what
other processes publish).  A message is marked delivered only after the endpoint
answered a 2xx, so a sender killed mid-delivery leaves it pending: once its lease
ends another sender (or this one restarted) posts it again with the same
``webhook-id``.  Delivery is at least once; receivers de-duplicate on ``webhook-id``.

``clock`` (epoch seconds) drives the schedule and can be injected by tests; the
``webhook-timestamp`` header is always the wall clock, which receivers check.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import httpx
from sqlalchemy import Engine

from quiver.config.webhooks import WebhookSettings
from quiver.webhooks.queue import Claim, Policy, State, claim, listen, next_due_ms, purge, record
from quiver.webhooks.signing import signed_headers

_log = logging.getLogger("quiver.webhooks")
_PURGE_EVERY_S = 3600.0


@dataclass(frozen=True)
class DeliverySettings:
    """How the admin sidecar delivers webhooks."""

    policy: Policy = field(default_factory=Policy)
    timeout_s: float = 15.0  # per attempt; longer is a failure
    lease_s: float = 60.0  # a claimed delivery is someone else's after this (> timeout_s)
    poll_s: float = 1.0  # the longest wait between looks at the queue
    batch: int = 50  # deliveries claimed at a time by ``run_once``
    concurrency: int = 8  # posts in flight at once
    per_endpoint: int = 4  # of which one endpoint holds at most this many
    retention_s: float = 30 * 86400  # delivered and dead messages older than this go

    @classmethod
    def of(cls, config: WebhookSettings) -> DeliverySettings:
        """What the config file's ``webhooks:`` section says."""
        policy = Policy(schedule=tuple(config.retry_schedule), disable_after_s=config.disable_after)
        return cls(
            policy=policy,
            timeout_s=config.timeout,
            lease_s=max(60.0, config.timeout * 2),
            retention_s=config.retention,
        )


class Sender:
    """Posts due webhook deliveries; ``run_once`` for one pass, ``start``/``stop``
    for a background thread."""

    def __init__(
        self,
        engine: Engine,
        settings: DeliverySettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings or DeliverySettings()
        self._clock = clock
        self._rng = rng or random.Random()
        self._client = httpx.Client(
            timeout=self._settings.timeout_s,
            follow_redirects=False,  # a redirect is a failure, as the spec advises
            transport=transport,
            headers={"user-agent": "Quiver-Webhooks/1"},
        )
        self._pool = ThreadPoolExecutor(self._settings.concurrency, "webhook-post")
        self._stop = threading.Event()
        self._wake = threading.Event()  # a post ended, an event was published, or stop
        self._thread: threading.Thread | None = None

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def run_once(self) -> list[State]:
        """Claim what is due now (up to ``batch``) and post it; the states the
        deliveries are left in.  (One pass, for tests and tools: the running sender
        is ``start``.)"""
        settings = self._settings
        jobs = claim(
            self._engine,
            now_ms=self._now_ms(),
            lease_ms=int(settings.lease_s * 1000),
            limit=settings.batch,
        )
        return list(self._pool.map(self._deliver, jobs))

    def purge(self) -> int:
        """Forget delivered and dead messages past the retention; how many went."""
        before = self._now_ms() - int(self._settings.retention_s * 1000)
        return purge(self._engine, before_ms=before)

    def _deliver(self, job: Claim) -> State:
        body = job.payload.encode()
        headers = signed_headers(job.secrets, job.msg_id, int(time.time()), body)
        headers["content-type"] = "application/json"
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            # (the answer's body is never read: only its status counts)
            with self._client.stream("POST", job.url, content=body, headers=headers) as answer:
                status = answer.status_code
            if not 200 <= status < 300:
                error = f"answered {status}"
        except httpx.TimeoutException:
            error = "timed out"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: could not post"
        latency = int((time.monotonic() - started) * 1000)
        state = record(
            self._engine,
            job,
            now_ms=self._now_ms(),
            status=status,
            latency_ms=latency,
            error=error,
            policy=self._settings.policy,
            rng=self._rng,
        )
        if state != "delivered":
            _log.info("webhook %s to %s: %s (%s)", job.msg_id, job.endpoint, error, state)
        return state

    def start(self) -> None:
        listen(self._wake)
        self._thread = threading.Thread(target=self._run, name="webhook-sender", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish the posts under way, then stop (again: nothing)."""
        self._stop.set()
        self._wake.set()
        listen(self._wake, stop=True)
        if self._thread is not None:
            self._thread.join()
        self._pool.shutdown()
        self._client.close()

    def _run(self) -> None:
        settings = self._settings
        in_flight: dict[Future[State], int] = {}  # post → its endpoint's id
        held: Counter[int] = Counter()  # endpoint id → its posts in flight
        purged = 0.0

        def ended(post: Future[State]) -> None:
            self._wake.set()

        while not self._stop.is_set():
            self._wake.clear()
            for post in [post for post in in_flight if post.done()]:
                held[in_flight.pop(post)] -= 1
                if post.exception() is not None:  # its outcome not recorded: the lease ends
                    _log.error("webhook delivery failed", exc_info=post.exception())
            wait_s = settings.poll_s
            try:
                if time.monotonic() - purged > _PURGE_EVERY_S:
                    purged = time.monotonic()
                    self.purge()
                free = settings.concurrency - len(in_flight)
                if free:
                    jobs = claim(
                        self._engine,
                        now_ms=self._now_ms(),
                        lease_ms=int(settings.lease_s * 1000),
                        limit=free,
                        per_endpoint=settings.per_endpoint,
                        held=+held,
                    )
                    for job in jobs:
                        post = self._pool.submit(self._deliver, job)
                        in_flight[post] = job.endpoint_id
                        held[job.endpoint_id] += 1
                        post.add_done_callback(ended)
                    if jobs and len(jobs) < free:
                        continue  # more may be due for endpoints not yet at their share
                    if not jobs:
                        wait_s = self._until_due(wait_s, held)
            except Exception:  # the store is down, say: log it, try again later
                _log.exception("webhook delivery pass failed")
            self._wake.wait(wait_s)
        wait(in_flight)

    def _until_due(self, longest: float, held: Counter[int]) -> float:
        """Seconds until the soonest delivery this sender may claim falls due, at
        most ``longest`` (what other processes publish is seen that late).  The
        endpoints at their share of the posts are left out: the end of one of their
        posts wakes the sender."""
        due = next_due_ms(self._engine, per_endpoint=self._settings.per_endpoint, held=held)
        if due is None:
            return longest
        seconds = (due - self._now_ms()) / 1000
        return longest if seconds <= 0 else min(longest, seconds)
