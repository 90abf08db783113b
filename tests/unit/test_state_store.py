"""The stored counter history's format: gzip-compressed JSON, the uncompressed version 1 still read, and
anything else (corrupt, cut short, inflating past its cap, odd values) read as no history at all."""

from __future__ import annotations

import gzip
import json

import pytest

from fargate_insights.collector import CollectorState
from fargate_insights.state_store import FORMAT_VERSION, MAX_STATE_BYTES, decode, encode


def _state() -> CollectorState:
    state = CollectorState(last_run_ms=1_700_000_000_000)
    state.counters["uid-1|cpu"] = (12.5, 1_700_000_000_000)
    state.counters["uid-1|rx|abc|eth0"] = (1e10, 1_700_000_000_001)
    return state


def test_a_state_round_trips_compressed() -> None:
    body = encode(_state())
    assert body[:2] == b"\x1f\x8b"  # gzip: `aws s3 cp s3://... - | gunzip` shows it
    assert json.loads(gzip.decompress(body))["version"] == FORMAT_VERSION == 2
    decoded = decode(body)
    assert decoded is not None
    assert decoded.last_run_ms == 1_700_000_000_000
    assert decoded.counters == _state().counters


def test_a_version_1_state_written_before_compression_is_still_read() -> None:
    body = json.dumps({"version": 1, "last_run_ms": 5, "counters": {"u|cpu": [1.0, 7]}}).encode()
    decoded = decode(body)
    assert decoded is not None and decoded.counters == {"u|cpu": (1.0, 7)} and decoded.last_run_ms == 5


@pytest.mark.parametrize(
    "body",
    [
        encode(_state())[:-12],  # cut short
        encode(_state())[:20] + b"\x00" * 40,  # corrupt
        gzip.compress(b"not json"),
        gzip.compress(json.dumps({"version": 3, "counters": {}}).encode()),  # a future format
        gzip.compress(json.dumps({"version": True, "counters": {}}).encode()),
        gzip.compress(b"[" * 100_000 + b"]" * 100_000),  # nested past the JSON parser's depth
        b"",
    ],
    ids=["cut-short", "corrupt", "not-json", "future-version", "version-true", "too-deep", "empty"],
)
def test_a_state_that_cannot_be_trusted_is_no_state(body: bytes) -> None:
    assert decode(body) is None


def test_a_state_inflating_past_its_cap_is_refused_without_inflating_it_all() -> None:
    bomb = gzip.compress(b" " * (MAX_STATE_BYTES + 1), compresslevel=1)
    assert len(bomb) < MAX_STATE_BYTES // 100
    assert decode(bomb) is None
