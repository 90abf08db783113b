"""Capped gzip inflation, shared by the kubelet answers and the stored counter state."""

from __future__ import annotations

import gzip
import tracemalloc

import pytest

from fargate_insights import kube_api, state_store
from fargate_insights.gzip_body import MAX_MEMBERS, InflateError, inflate
from fargate_insights.kube_api import KubeApiError

TEXT = b'container_cpu_usage_seconds_total{container="",pod="p"} 1.5 1700000000000\n' * 200


def _reason(body: bytes, cap: int) -> str:
    with pytest.raises(InflateError) as raised:
        inflate(body, cap)
    return raised.value.reason


def test_one_member() -> None:
    assert inflate(gzip.compress(TEXT), len(TEXT)) == TEXT


def test_every_member_in_order() -> None:
    body = gzip.compress(b"first\n") + gzip.compress(b"") + gzip.compress(TEXT)
    assert inflate(body, 10 * len(TEXT)) == b"first\n" + TEXT


def test_at_most_max_members_are_read() -> None:
    """Each member costs a copy of the rest of the body: a body of many tiny members is refused at the
    limit, after MAX_MEMBERS copies, instead of costing the square of its size."""
    empty = gzip.compress(b"")
    assert inflate(empty * (MAX_MEMBERS - 1) + gzip.compress(TEXT), len(TEXT)) == TEXT
    assert _reason(empty * MAX_MEMBERS + gzip.compress(TEXT), len(TEXT)) == "invalid"
    assert _reason(empty * (4 * 1024 * 1024 // len(empty)), 1024) == "invalid"  # a 4 MB body of them


def test_an_empty_body_is_empty() -> None:
    assert inflate(b"", 10) == b""


def test_the_cap_counts_every_member() -> None:
    body = gzip.compress(TEXT) + gzip.compress(TEXT)
    assert inflate(body, 2 * len(TEXT)) == TEXT + TEXT  # exactly the cap: accepted
    assert _reason(body, 2 * len(TEXT) - 1) == "too_large"
    assert _reason(gzip.compress(TEXT), len(TEXT) - 1) == "too_large"


def test_a_bomb_is_refused_without_inflating_it() -> None:
    cap = 1024 * 1024
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MB from about 64 KB
    tracemalloc.start()
    try:
        assert _reason(bomb, cap) == "too_large"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * cap


@pytest.mark.parametrize(
    "body",
    [
        gzip.compress(TEXT)[:-9],  # cut inside the trailer
        gzip.compress(TEXT)[: len(gzip.compress(TEXT)) // 2],  # cut inside the data
        gzip.compress(b"first\n") + gzip.compress(TEXT)[:-4],  # the second member cut short
    ],
    ids=["trailer", "data", "second-member"],
)
def test_a_body_cut_short_is_truncated(body: bytes) -> None:
    assert _reason(body, 10 * len(TEXT)) == "truncated"


@pytest.mark.parametrize(
    "body",
    [
        b"not gzip at all",
        gzip.compress(TEXT) + b"trailing garbage",  # read as a second member, which is not one
        bytes([*gzip.compress(TEXT)[:-8], 0, 0, 0, 0, *gzip.compress(TEXT)[-4:]]),  # a wrong CRC
    ],
    ids=["not-gzip", "trailing-garbage", "bad-crc"],
)
def test_a_body_that_is_not_gzip_is_invalid(body: bytes) -> None:
    assert _reason(body, 10 * len(TEXT)) == "invalid"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (gzip.compress(TEXT), None),
        (gzip.compress(TEXT)[:-9], "truncated"),
        (gzip.compress(TEXT * 2), "too_large"),
        (b"not gzip", "bad_response"),
    ],
)
def test_kubelet_answers_map_to_the_api_errors(body: bytes, reason: str | None) -> None:
    cap = len(TEXT) + 1
    if reason is None:
        assert kube_api._decode_body(body, "gzip", cap) == TEXT
        return
    with pytest.raises(KubeApiError) as raised:
        kube_api._decode_body(body, "x-gzip", cap)
    assert raised.value.reason == reason


def test_a_stored_state_of_several_members_is_read_whole() -> None:
    """gzip tools write several members when appending; each one's text belongs to the state."""
    document = b'{"version": 2, "counters": {"k": [1.0, 5]}, "last_run_ms": 7}'
    body = gzip.compress(document[:20]) + gzip.compress(document[20:])
    state = state_store.decode(body)
    assert state is not None and state.counters == {"k": (1.0, 5)} and state.last_run_ms == 7
    assert state_store.decode(body[:-3]) is None  # cut short: never a half-trusted history
