"""The running sender (``start``): posts in flight shared out between endpoints, a
retry posted when it falls due, a published event posted at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from quiver.store import Store
from quiver.webhooks import endpoints, queue
from quiver.webhooks.queue import Policy
from quiver.webhooks.sender import DeliverySettings, Sender
from tests.webhooks.receiver import receiving

# far longer than any wait below: a sender that only looks at the queue this often
# would fail them
POLL_S = 60.0


def _now_ms() -> int:
    return int(time.time() * 1000)


@contextmanager
def running(store: Store, settings: DeliverySettings) -> Iterator[Sender]:
    sender = Sender(store.engine, settings)
    sender.start()
    try:
        yield sender
    finally:
        sender.stop()


def test_a_slow_endpoint_holds_only_its_share_of_the_posts(store: Store) -> None:
    with receiving() as slow, receiving() as fast:
        slow.hold = threading.Event()  # its posts get no answer until the end
        for name, hook in (("slow", slow), ("fast", fast)):
            hook.secrets.append(
                endpoints.create_endpoint(
                    store.engine, name, hook.url, now_ms=_now_ms(), event_types=[f"{name}.*"]
                )
            )
        for n in range(20):
            queue.publish(store.engine, "slow.thing", {"n": n}, now_ms=_now_ms())
        queue.publish(store.engine, "fast.thing", {}, now_ms=_now_ms())
        settings = DeliverySettings(timeout_s=120, poll_s=POLL_S, concurrency=8, per_endpoint=4)
        with running(store, settings):
            [got] = fast.wait_for(1)  # while the slow endpoint's posts hang
            assert got.event["type"] == "fast.thing"
            slow.wait_for(4)
            assert len(slow.received) == 4  # its share: no fifth post while they hang
            slow.hold.set()
            assert len(slow.wait_for(20)) == 20


def test_a_retry_is_posted_when_it_falls_due(store: Store) -> None:
    with receiving() as hook:
        hook.answers = [500]
        hook.secrets.append(
            endpoints.create_endpoint(store.engine, "h", hook.url, now_ms=_now_ms())
        )
        queue.publish(store.engine, "thing.happened", {}, now_ms=_now_ms())
        settings = DeliverySettings(policy=Policy(schedule=(0.5,), jitter=0), poll_s=POLL_S)
        with running(store, settings):
            first, second = hook.wait_for(2)
        assert first.msg_id == second.msg_id
        [state] = [item["state"] for item in queue.deliveries(store.engine, "h")]
        assert state == "delivered"


def test_an_event_published_in_the_process_is_posted_at_once(store: Store) -> None:
    with receiving() as hook:
        hook.secrets.append(
            endpoints.create_endpoint(store.engine, "h", hook.url, now_ms=_now_ms())
        )
        with running(store, DeliverySettings(poll_s=POLL_S)):
            # the sender found nothing to do and waits; a publish wakes it
            queue.publish(store.engine, "thing.happened", {"n": 1}, now_ms=_now_ms())
            [got] = hook.wait_for(1)
        assert got.event["data"] == {"n": 1}
