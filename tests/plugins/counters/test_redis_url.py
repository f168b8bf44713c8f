"""Redis URL forms: what each names, the client made for it, and masked passwords."""

from __future__ import annotations

import re

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection
from redis.asyncio.sentinel import SentinelConnectionPool

from quiver.plugins.counters.redis_url import RedisAddress, connect, masked, parse, reason

SECRET = "s3cr%40t"  # percent-encoded "s3cr@t"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://localhost", RedisAddress("server", nodes=(("localhost", 6379),))),
        ("redis://10.0.0.5:6380/3", RedisAddress("server", nodes=(("10.0.0.5", 6380),), db=3)),
        ("redis://[::1]:7000/", RedisAddress("server", nodes=(("::1", 7000),))),
        (
            f"redis://app:{SECRET}@cache:6379/1",
            RedisAddress(
                "server", nodes=(("cache", 6379),), db=1, username="app", password="s3cr@t"
            ),
        ),
        (
            f"redis://:{SECRET}@cache",
            RedisAddress("server", nodes=(("cache", 6379),), password="s3cr@t"),
        ),
        (  # left unencoded
            "redis://:pa/ss@w@rd@cache/2",
            RedisAddress("server", nodes=(("cache", 6379),), db=2, password="pa/ss@w@rd"),
        ),
        ("unix:///run/a@b.sock", RedisAddress("unix", path="/run/a@b.sock")),
        (
            "rediss://cache:6380?ssl_cert_reqs=none",
            RedisAddress(
                "server", tls=True, nodes=(("cache", 6380),), options={"ssl_cert_reqs": "none"}
            ),
        ),
        ("unix:///run/redis.sock", RedisAddress("unix", path="/run/redis.sock")),
        (
            f"unix://:{SECRET}@/run/redis.sock?db=2",
            RedisAddress("unix", path="/run/redis.sock", db=2, password="s3cr@t"),
        ),
        (
            "redis+cluster://a:7000,b:7001,[::1]:7002",
            RedisAddress("cluster", nodes=(("a", 7000), ("b", 7001), ("::1", 7002))),
        ),
        (
            "rediss+cluster://a:7000/",
            RedisAddress("cluster", tls=True, nodes=(("a", 7000),)),
        ),
        (
            "redis+sentinel://s1,s2:26380/mymaster",
            RedisAddress("sentinel", nodes=(("s1", 26379), ("s2", 26380)), service="mymaster"),
        ),
        (
            f"rediss+sentinel://u:{SECRET}@s1:26379/mymaster/4?sentinel_password=x",
            RedisAddress(
                "sentinel",
                tls=True,
                nodes=(("s1", 26379),),
                service="mymaster",
                db=4,
                username="u",
                password="s3cr@t",
                options={"sentinel_password": "x"},
            ),
        ),
    ],
)
def test_url_forms_name_their_servers(url: str, expected: RedisAddress) -> None:
    address = parse(url)
    assert address == expected
    assert address.password == expected.password
    assert address.options == expected.options


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://cache:6379", "unknown scheme"),
        ("redis://cache:port/0", "port must be a number"),
        ("redis://cache:70000", "port 70000 is out of range"),
        ("redis://cache/zero", "db must be a number"),
        ("redis://cache/0/1", "the path is /db"),
        ("redis://a:1,b:2", "use redis+cluster:// or redis+sentinel://"),
        ("redis://", "a host is missing"),
        ("redis://cache?timeout=1", "unknown option 'timeout'"),
        ("redis://cache?ssl_cert_reqs=none", "unknown option 'ssl_cert_reqs'"),
        ("unix://host/run/redis.sock", "socket path"),
        ("unix:///run/redis.sock?db=x", "db must be a number"),
        ("redis+cluster://a:7000/1", "database 0 only"),
        ("redis+sentinel://s1:26379", "names the service"),
        ("redis+sentinel://s1:26379/", "names the service"),
        ("redis+sentinel://s1/m/x", "db must be a number"),
        ("redis://[::1:6379", "bad address"),
    ],
)
def test_malformed_urls_are_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse(url)


def test_refusals_never_show_the_password() -> None:
    with pytest.raises(ValueError) as caught:
        parse("redis://user:hunter2@cache:port/0")
    assert "hunter2" not in str(caught.value)
    assert "redis://user:***@cache:port/0" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("redis://user:hunter2@cache/0", "redis://user:***@cache/0"),
        ("redis://:hunter2@cache", "redis://:***@cache"),
        ("redis://user@cache", "redis://user@cache"),
        ("redis://u:p@ss@cache", "redis://u:***@cache"),
        ("redis://:pa/ss@cache:6379/0", "redis://:***@cache:6379/0"),
        ("unix:///run/a@b.sock", "unix:///run/a@b.sock"),
        ("unix://:hunter2@/run/r.sock?db=1", "unix://:***@/run/r.sock?db=1"),
        (
            "redis+sentinel://:pw@s1/m?sentinel_password=hunter2",
            "redis+sentinel://:***@s1/m?sentinel_password=***",
        ),
    ],
)
def test_masked_hides_passwords(url: str, shown: str) -> None:
    assert masked(url) == shown


@pytest.mark.parametrize(
    ("url", "cls", "connection_class"),
    [
        ("redis://127.0.0.1:6379/2", Redis, None),
        ("rediss://127.0.0.1:6380/0", Redis, SSLConnection),
        ("unix:///run/redis.sock?db=1", Redis, UnixDomainSocketConnection),
        ("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", RedisCluster, None),
        ("redis+sentinel://127.0.0.1:26379/mymaster/1", Redis, None),
    ],
)
def test_each_form_gets_its_client_with_timeouts_and_no_retries(
    url: str, cls: type, connection_class: type | None
) -> None:
    client, others = connect(parse(url), 0.25)
    kind = type(client)
    assert kind is cls
    if isinstance(client, RedisCluster):
        seeds = list(client.nodes_manager.startup_nodes.values())
        kwargs = seeds[0].connection_kwargs
        assert {(node.host, node.port) for node in seeds} == {
            ("127.0.0.1", 7000),
            ("127.0.0.1", 7001),
        }
        assert client.retry.get_retries() == 0
    else:
        pool = client.connection_pool
        kwargs = pool.connection_kwargs
        if connection_class is not None:
            assert pool.connection_class is connection_class
        assert kwargs["retry"].get_retries() == 0
        if url.startswith("redis+sentinel"):
            assert isinstance(pool, SentinelConnectionPool)
            assert pool.service_name == "mymaster"
            assert [s.connection_pool.connection_kwargs["port"] for s in others] == [26379]
        else:
            assert kwargs["db"] == int(url[-1])
    assert kwargs["socket_timeout"] == 0.25
    if connection_class is not UnixDomainSocketConnection:
        assert kwargs["socket_connect_timeout"] == 0.25


def test_reason_names_sentinels_by_address_in_one_line() -> None:
    """A Sentinel that cannot be asked for the master is named by redis-py as the repr
    of its client (over a thousand characters): the reason shows its address."""
    from redis.asyncio.sentinel import MasterNotFoundError
    from redis.exceptions import ConnectionError as RedisConnectionError

    sentinels = [Redis(host="127.0.0.1", port=port, password="s3cret") for port in (26379, 26380)]
    failure = RedisConnectionError("Error 111 connecting to 127.0.0.1:26379.\nRefused.")
    errors = ", ".join(f"{sentinel} - {failure!r}: {failure}" for sentinel in sentinels)
    assert len(errors) > 500  # what redis-py's message holds
    text = reason(MasterNotFoundError(f"No master found for 'quiver' : {errors}"))
    assert text.startswith("MasterNotFoundError: No master found for 'quiver' : 127.0.0.1:26379 - ")
    assert "127.0.0.1:26380 - " in text
    assert "<redis" not in text and "\n" not in text and "s3cret" not in text
    assert len(text) < 300


def test_reason_of_a_plain_error_is_its_class_and_message() -> None:
    assert reason(TimeoutError()) == "TimeoutError"
    assert reason(OSError("no route to host")) == "OSError: no route to host"
