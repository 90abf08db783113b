"""Rows whose label set was read in an earlier payload are read again from their name, value and timestamp
only (`cadvisor._KNOWN_LABEL_SETS`). That must change nothing but the CPU: every payload, well-formed or not,
gives exactly what it gives with nothing remembered, whatever earlier payloads taught the extractor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fargate_insights import cadvisor
from fargate_insights.cadvisor import Extraction, Sample, extract

from .test_cadvisor_bad_input import CPU, UID_A, VALID, _mutated, _pod_row

REAL_PAYLOADS = (
    "kubelet-1.28-containerd.txt",
    "kubelet-1.18-docker-systemd.txt",
    "cadvisor-golden-synthetic.txt",
)


@pytest.fixture(autouse=True)
def _nothing_remembered() -> Iterator[None]:
    cadvisor.forget_label_sets()
    yield
    cadvisor.forget_label_sets()


def _as_read(result: Extraction) -> str:
    # repr: NaN equals itself there, and pods, samples, conflicts and the malformed count all show
    return repr(result)


def _cold(payload: bytes) -> Extraction:
    """The payload read with nothing remembered, not even its own earlier rows: every line read in full."""
    cadvisor.forget_label_sets()
    with patch.object(cadvisor, "_remember_label_set", lambda *_: None):
        return extract(payload)


def _same_cold_and_warm(payload: bytes, *teachers: bytes) -> Extraction:
    """The payload read with nothing remembered, then after `teachers` and itself were read."""
    cold = _cold(payload)
    for teacher in teachers:
        extract(teacher)
    assert _as_read(extract(payload)) == _as_read(cold)
    assert _as_read(extract(payload)) == _as_read(cold)  # its own heads remembered too
    return cold


def test_a_known_row_is_read_from_its_value_and_timestamp() -> None:
    first = extract(VALID)
    assert cadvisor._KNOWN_LABEL_SETS, "the valid payload's pod rows are remembered"
    later = VALID.replace(b"} 12.5 1700000000000", b"} 13.5 1700000060000")
    second = extract(later)
    assert first.pods[UID_A].cpu_usage_seconds == Sample(12.5, 1700000000000)
    assert second.pods[UID_A].cpu_usage_seconds == Sample(13.5, 1700000060000)
    assert _as_read(_cold(later)) == _as_read(second)


@pytest.mark.parametrize(
    "tail",
    [
        "1}2 1700000000000",  # a brace in the value
        "abc",
        "12.5 1700000000000 7",  # a token after the timestamp
        "12.5 17.5",  # a float timestamp
        "12.5  1700000000000",  # two blanks
        '12.5,image="" 1',
        "1e999",  # out of float64's range
        "12.5 99999999999999999999",  # past int64
        "",
        "NaN",
        "+Inf 1700000000000",
        "12.5 1700000000000\r",  # a CRLF line
        "12.5\r",
        "12.5 1700000000000 ",  # a trailing blank
        "12.5 ",
        "12.5\t1700000000000",
    ],
)
def test_a_known_head_with_any_tail_reads_as_with_nothing_remembered(tail: str) -> None:
    row = _pod_row(CPU, UID_A, "pod-a", tail, 'cpu="total",')
    payload = VALID + row.encode()
    _same_cold_and_warm(payload, VALID)


def test_a_known_pod_row_skips_the_full_read() -> None:
    """The memory is used at all: the second read of a payload parses none of its pod rows in full."""
    with patch.object(cadvisor, "_apply_line", wraps=cadvisor._apply_line) as full_reads:
        extract(VALID)
        first = full_reads.call_count
        extract(VALID.replace(b" 12.5 ", b" 13.5 "))
    # the first read parses each label set's first row in full (later rows of one already take the
    # shortcut); the next payload parses none
    assert first >= 4 and full_reads.call_count == first


def test_a_crlf_payload_reads_as_with_nothing_remembered() -> None:
    _same_cold_and_warm(VALID.replace(b"\n", b"\r\n"), VALID)


@pytest.mark.parametrize(
    "other",
    ['foo="a,image="', 'foo="a,container="', 'foo="{image="', 'foo="x,image=\\"y"'],
    ids=["image-in-a-value", "container-in-a-value", "brace-image-in-a-value", "escaped-quote"],
)
def test_a_label_set_taught_by_a_network_row_reads_as_with_nothing_remembered(other: str) -> None:
    """The row filters decide by family kind too (network or not): a label set a network row taught must
    not let another family's row skip them."""
    labels = f'container="",{other},id="/kubepods/pod{UID_A}",namespace="ns",pod="pod-a"'
    network = f"container_network_receive_bytes_total{{{labels}}} 1\n".encode()
    cpu = f"{CPU}{{{labels}}} 5 1700000000000\n".encode()
    _same_cold_and_warm(network + cpu)
    _same_cold_and_warm(cpu, network)
    _same_cold_and_warm(network, cpu)


@pytest.mark.parametrize(
    "row",
    [
        " " + _pod_row(CPU, UID_A, "pod-a", "13 1700000000000", 'cpu="total",'),  # a blank before the name
        _pod_row(CPU, UID_A, "pod-a", "13 1700000000000", 'cpu="total",').replace("{", " {", 1),
        _pod_row(CPU, UID_A, "pod-a", "13 1700000000000", 'cpu="total",').replace("{", "{ ", 1),
        _pod_row("container_spec_cpu_quota", UID_A, "pod-a", "70000", 'cpu="total",'),  # another family
        _pod_row("container_start_time_seconds", UID_A, "pod-a", "1700000000"),
        _pod_row("container_memory_working_set_bytes", UID_A, "pod-a", "7 1700000000000"),  # a conflict
    ],
    ids=[
        "blank-before-name",
        "blank-before-brace",
        "blank-after-brace",
        "other-family",
        "new-family",
        "conflict",
    ],
)
def test_a_known_label_set_in_another_row_reads_as_with_nothing_remembered(row: str) -> None:
    _same_cold_and_warm(VALID + row.encode(), VALID)


_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(_mutated())
def test_property_mutated_payloads_read_the_same_with_the_valid_ones_heads_known(payload: bytes) -> None:
    _same_cold_and_warm(payload, VALID)


@_SETTINGS
@given(st.lists(st.sampled_from(VALID.split(b"\n")), max_size=30), st.binary(max_size=40))
def test_property_recombined_lines_read_the_same_with_heads_known(lines: list[bytes], tail: bytes) -> None:
    _same_cold_and_warm(b"\n".join(lines) + b"\n" + tail, VALID)


@pytest.mark.parametrize("name", REAL_PAYLOADS)
def test_real_payloads_read_the_same_with_their_heads_known(shared_fixtures: Path, name: str) -> None:
    payload = (shared_fixtures / "cadvisor" / name).read_bytes()
    _same_cold_and_warm(payload)
    # and the next minute's payload, every value changed, read with the heads this one taught
    later = payload.replace(b" 1", b" 2")
    if extract(payload).pods:
        assert _as_read(extract(later)) != _as_read(extract(payload))
    warm = extract(later)
    assert _as_read(_cold(later)) == _as_read(warm)


def test_what_is_remembered_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cadvisor, "KNOWN_LABEL_SETS_MAX", 4)
    extract(VALID)
    assert 0 < len(cadvisor._KNOWN_LABEL_SETS) <= 4
    assert _as_read(extract(VALID)) == _as_read(_same_cold_and_warm(VALID))
