"""Delivery through real sockets: signed posts a standard receiver verifies,
retries on the schedule (a clock moved by hand), dead letters, replay, rotation,
ordering and disabling an endpoint that keeps failing."""

from __future__ import annotations

import random
import threading

from quiver.config.webhooks import WebhookSettings
from quiver.store import Store
from quiver.webhooks import endpoints, queue
from quiver.webhooks.queue import Policy
from quiver.webhooks.sender import DeliverySettings, Sender
from tests.webhooks.receiver import receiving

START = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def ms(self) -> int:
        return int(self.now * 1000)


def _made(store: Store, url: str, clock: Clock, ordered: bool = False) -> str:
    """An endpoint ``h`` posting to ``url``; its secret."""
    return endpoints.create_endpoint(store.engine, "h", url, now_ms=clock.ms(), ordered=ordered)


def _sender(store: Store, clock: Clock, batch: int = 50, **policy: object) -> Sender:
    settings = DeliverySettings(policy=Policy(jitter=0, **policy), batch=batch)  # type: ignore[arg-type]
    return Sender(store.engine, settings, clock=clock, rng=random.Random(1))


def test_an_event_reaches_the_subscribed_endpoints_signed(store: Store) -> None:
    clock = Clock()
    with receiving() as orders, receiving() as audit:
        orders.secrets.append(
            endpoints.create_endpoint(
                store.engine, "orders", orders.url, now_ms=clock.ms(), event_types=["consumer.*"]
            )
        )
        audit.secrets.append(
            endpoints.create_endpoint(
                store.engine, "audit", audit.url, now_ms=clock.ms(), event_types=["key.rotated"]
            )
        )
        msg = queue.publish(store.engine, "consumer.created", {"name": "alice"}, now_ms=clock.ms())
        sender = _sender(store, clock)
        try:
            assert sender.run_once() == ["delivered"]
        finally:
            sender.stop()
        [got] = orders.received
        assert got.msg_id == msg
        assert got.event["type"] == "consumer.created"
        assert got.event["data"] == {"name": "alice"}
        assert audit.received == []
        [attempt] = queue.attempts(store.engine, "orders")
        assert attempt["status"] == 200
        assert attempt["msg_id"] == msg


def test_a_failed_delivery_is_retried_on_the_schedule(store: Store) -> None:
    clock = Clock()
    with receiving() as hook:
        hook.answers = [500, 503]
        hook.secrets.append(
            endpoints.create_endpoint(store.engine, "h", hook.url, now_ms=clock.ms())
        )
        msg = queue.publish(store.engine, "thing.happened", {"n": 1}, now_ms=clock.ms())
        sender = _sender(store, clock, schedule=(5, 300))
        try:
            assert sender.run_once() == ["pending"]
            clock.now += 4
            assert sender.run_once() == []  # not due yet
            clock.now += 1
            assert sender.run_once() == ["pending"]
            clock.now += 300
            assert sender.run_once() == ["delivered"]
        finally:
            sender.stop()
        assert [item.msg_id for item in hook.received] == [msg] * 3
        log = queue.attempts(store.engine, "h")
        assert [entry["status"] for entry in log] == [200, 503, 500]
        assert all(entry["latency_ms"] >= 0 for entry in log)


def test_after_the_schedule_a_message_is_dead_and_can_be_replayed(store: Store) -> None:
    clock = Clock()
    with receiving() as hook:
        hook.answers = [500, 500]
        hook.secrets.append(
            endpoints.create_endpoint(store.engine, "h", hook.url, now_ms=clock.ms())
        )
        msg = queue.publish(store.engine, "thing.happened", {}, now_ms=clock.ms())
        sender = _sender(store, clock, schedule=(5,))
        try:
            assert sender.run_once() == ["pending"]
            clock.now += 5
            assert sender.run_once() == ["dead"]
            clock.now += 86400
            assert sender.run_once() == []
            [dead] = queue.deliveries(store.engine, "h", state="dead")
            assert dead["msg_id"] == msg
            queue.replay(store.engine, "h", msg, now_ms=clock.ms())
            assert sender.run_once() == ["delivered"]
        finally:
            sender.stop()
        assert queue.deliveries(store.engine, "h", state="dead") == []
        assert {item.msg_id for item in hook.received} == {msg}


def test_while_a_secret_rotates_both_old_and_new_verify(store: Store) -> None:
    clock = Clock()
    with receiving() as old_side, receiving() as new_side:
        old = endpoints.create_endpoint(store.engine, "h", old_side.url, now_ms=clock.ms())
        old_side.secrets.append(old)
        new = endpoints.rotate_secret(store.engine, "h", now_ms=clock.ms(), grace_ms=3_600_000)
        new_side.secrets.append(new)
        assert endpoints.get_endpoint(store.engine, "h", clock.ms()).secrets == 2
        sender = _sender(store, clock)
        try:
            for receiver in (old_side, new_side):
                endpoints.update_endpoint(store.engine, "h", clock.ms(), url=receiver.url)
                queue.publish(store.engine, "a.b", {}, now_ms=clock.ms())
                assert sender.run_once() == ["delivered"]
            clock.now += 3601  # the old secret has expired: only the new one signs
            new_side.secrets = [old]
            queue.publish(store.engine, "a.b", {}, now_ms=clock.ms())
            assert sender.run_once() == ["pending"]
        finally:
            sender.stop()
        assert len(old_side.received) == 1
        assert len(new_side.received) == 1
        assert new_side.refused == 1


def test_an_ordered_endpoint_gets_its_messages_one_after_the_other(store: Store) -> None:
    clock = Clock()
    with receiving() as hook:
        hook.answers = [500]
        secret = endpoints.create_endpoint(
            store.engine, "h", hook.url, now_ms=clock.ms(), ordered=True
        )
        hook.secrets.append(secret)
        first = queue.publish(store.engine, "a.b", {"n": 1}, now_ms=clock.ms())
        second = queue.publish(store.engine, "a.b", {"n": 2}, now_ms=clock.ms())
        sender = _sender(store, clock, schedule=(5,))
        try:
            assert sender.run_once() == ["pending"]  # the second waits behind the first
            clock.now += 5
            assert sender.run_once() == ["delivered"]
            assert sender.run_once() == ["delivered"]
        finally:
            sender.stop()
        assert [item.msg_id for item in hook.received] == [first, first, second]


def test_an_endpoint_failing_for_long_is_disabled_and_an_event_says_so(store: Store) -> None:
    clock = Clock()
    with receiving() as broken, receiving() as ops:
        broken.answers = [500] * 10
        broken.secrets.append(
            endpoints.create_endpoint(store.engine, "broken", broken.url, now_ms=clock.ms())
        )
        ops.secrets.append(
            endpoints.create_endpoint(
                store.engine,
                "ops",
                ops.url,
                now_ms=clock.ms(),
                event_types=[queue.ENDPOINT_DISABLED],
            )
        )
        queue.publish(store.engine, "a.b", {}, now_ms=clock.ms())
        sender = _sender(store, clock, schedule=(3600,) * 5, disable_after_s=3 * 3600)
        try:
            for _ in range(4):
                assert sender.run_once() == ["pending"]
                clock.now += 3600
            assert sender.run_once() == ["delivered"]  # the event, to ops
        finally:
            sender.stop()
        endpoint = endpoints.get_endpoint(store.engine, "broken", clock.ms())
        assert not endpoint.enabled
        assert endpoint.disabled_reason == "every attempt failed for 3h"
        [event] = ops.received
        assert event.event["type"] == "webhook.endpoint.disabled"
        assert event.event["data"]["endpoint"] == "broken"
        assert len(broken.received) == 4


def test_one_success_starts_the_failing_time_again(store: Store) -> None:
    clock = Clock()
    with receiving() as flaky:
        flaky.answers = [500, 500, 200, 500, 500, 500]
        flaky.secrets.append(
            endpoints.create_endpoint(store.engine, "flaky", flaky.url, now_ms=clock.ms())
        )
        for _ in range(2):
            queue.publish(store.engine, "a.b", {}, now_ms=clock.ms())
        sender = _sender(store, clock, batch=1, schedule=(3600,) * 5, disable_after_s=3 * 3600)
        try:
            # failing for 2 hours, one success, failing for 2 more: never 3 hours on end
            for expected in ("pending", "pending", "delivered", "pending", "pending", "pending"):
                assert sender.run_once() == [expected]
                clock.now += 3600
        finally:
            sender.stop()
        assert endpoints.get_endpoint(store.engine, "flaky", clock.ms()).enabled


def test_the_config_sets_the_schedule_and_the_failing_time_to_disable() -> None:
    default = DeliverySettings.of(WebhookSettings())
    assert default.policy.schedule == (5, 300, 1800, 7200, 18000, *(36000,) * 6)
    assert default.policy.disable_after_s == 5 * 86400  # as Svix: failing for 5 days
    section = {"retry_schedule": ["1s", "10s", "1m"], "disable_after": "12h", "timeout": "2s"}
    chosen = DeliverySettings.of(WebhookSettings.model_validate(section))
    assert chosen.policy.schedule == (1, 10, 60)
    assert chosen.policy.disable_after_s == 12 * 3600
    assert chosen.timeout_s == 2


def test_two_senders_never_post_the_same_delivery(store: Store) -> None:
    clock = Clock()
    with receiving() as hook:
        hook.secrets.append(
            endpoints.create_endpoint(store.engine, "h", hook.url, now_ms=clock.ms())
        )
        sent = {queue.publish(store.engine, "a.b", {"n": n}, now_ms=clock.ms()) for n in range(40)}
        # many small claims, interleaved
        senders = [_sender(store, clock, batch=3, schedule=(5,)) for _ in range(2)]
        results: list[list[str]] = [[], []]

        def drain(index: int) -> None:
            while done := senders[index].run_once():
                results[index].extend(done)

        threads = [threading.Thread(target=drain, args=(index,)) for index in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for sender in senders:
            sender.stop()
        assert sorted(item.msg_id for item in hook.received) == sorted(sent)
        assert len(results[0]) + len(results[1]) == 40


def test_old_messages_are_purged_once_nothing_waits_for_them(store: Store) -> None:
    clock = Clock()
    with receiving() as hook:
        hook.answers = [500]
        hook.secrets.append(
            endpoints.create_endpoint(store.engine, "h", hook.url, now_ms=clock.ms())
        )
        failing = queue.publish(store.engine, "a.b", {"n": 1}, now_ms=clock.ms())
        queue.publish(store.engine, "a.b", {"n": 2}, now_ms=clock.ms())
        sender = _sender(store, clock, batch=1, schedule=(86400 * 60,))
        try:
            assert sender.run_once() == ["pending"]  # the first fails: retried in 60 days
            assert sender.run_once() == ["delivered"]
            clock.now += 29 * 86400
            assert sender.purge() == 0  # within the retention
            clock.now += 2 * 86400
            assert sender.purge() == 1  # the delivered one; the other still waits
        finally:
            sender.stop()
        [left] = queue.deliveries(store.engine, "h")
        assert (left["msg_id"], left["state"]) == (failing, "pending")
        [attempt] = queue.attempts(store.engine, "h")
        assert (attempt["msg_id"], attempt["status"]) == (failing, 500)


def test_an_endpoint_deleted_during_a_delivery_is_no_fault(store: Store) -> None:
    clock = Clock()
    endpoints.create_endpoint(store.engine, "h", "http://127.0.0.1:9/", now_ms=clock.ms())
    queue.publish(store.engine, "a.b", {}, now_ms=clock.ms())
    [job] = queue.claim(store.engine, now_ms=clock.ms(), lease_ms=60_000)
    endpoints.delete_endpoint(store.engine, "h")
    state = queue.record(
        store.engine,
        job,
        now_ms=clock.ms(),
        status=200,
        latency_ms=1,
        error=None,
        policy=Policy(),
        rng=random.Random(1),
    )
    assert state == "delivered"
    assert endpoints.list_endpoints(store.engine, clock.ms()) == []
