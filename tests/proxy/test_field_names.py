"""The per-worker memory of request field names (quiver.proxy.request.FieldNames)."""

from __future__ import annotations

import pytest

from quiver.proxy.request import (
    CONSUMER,
    FORWARD,
    HOST,
    LOOKALIKE,
    SPECIAL,
    UNDERSCORE,
    FieldNames,
)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        (b"Accept", FORWARD),
        (b"X-Consumerism", FORWARD),
        (b"HOST", HOST),
        (b"Content-Length", SPECIAL),
        (b"X-Consumer-Username", CONSUMER),
        (b"x-CONSUMER-anything", CONSUMER),
        (b"X_Custom", UNDERSCORE),
        (b"Transfer_Encoding", LOOKALIKE),
        (b"X_Consumer_ID", LOOKALIKE),
        (b"x_forwarded-for", LOOKALIKE),
    ],
)
def test_each_name_is_classified_as_spelled(name: bytes, kind: int) -> None:
    names = FieldNames()
    assert names.classify(name) == kind
    assert names.kinds[name] == kind


def test_names_made_up_by_the_thousand_do_not_grow_the_memory_without_bound() -> None:
    names = FieldNames()
    for index in range(10_000):
        assert names.classify(b"X-Made-Up-%d" % index) == FORWARD
    assert len(names.kinds) <= 4096
    assert names.classify(b"X-Consumer-ID") == CONSUMER
