"""pod_metrics.compute() and prune() on hand-built PodSeries: every expected number is worked out by hand
in the test (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import pytest

from fargate_insights.cadvisor import PodSeries, Sample
from fargate_insights.pod_metrics import PodMetrics, compute, prune

T0 = 1_700_000_000_000  # ms
SANDBOX = "/kubepods/burstable/pod11111111-2222-3333-4444-555555555555/" + "ab" * 32
UID = "11111111-2222-3333-4444-555555555555"

METRIC_FIELDS = (
    "cpu_usage_millicores",
    "cpu_limit_millicores",
    "cpu_utilization",
    "memory_working_set_bytes",
    "memory_limit_bytes",
    "memory_utilization",
    "network_rx_bytes_per_second",
    "network_tx_bytes_per_second",
)


def pod(
    *,
    uid: str = UID,
    name: str = "web-1",
    cpu: Sample | None = None,
    quota: float | None = None,
    period: float | None = None,
    mem: Sample | None = None,
    mem_limit: float | None = None,
    start: float | None = None,
    rx: dict[str, Sample] | None = None,
    tx: dict[str, Sample] | None = None,
    sandbox: str = SANDBOX,
) -> PodSeries:
    return PodSeries(
        namespace="shop",
        pod=name,
        uid=uid,
        cpu_usage_seconds=cpu,
        cpu_quota=quota,
        cpu_period=period,
        memory_working_set=mem,
        memory_limit=mem_limit,
        start_time_seconds=start,
        network_rx={(sandbox, i): s for i, s in (rx or {}).items()},
        network_tx={(sandbox, i): s for i, s in (tx or {}).items()},
    )


def _values(m: PodMetrics) -> list[float]:
    return [v for f in METRIC_FIELDS if (v := getattr(m, f)) is not None]


def _all_finite(m: PodMetrics) -> bool:
    return all(math.isfinite(v) for v in _values(m))


# ----------------------------------------------------------------------------------------- CPU


def test_cpu_rate_from_sample_timestamps() -> None:
    state: dict = {}
    first = compute(pod(cpu=Sample(10.0, T0)), state, scrape_time_ms=T0 + 5_000)
    assert first.cpu_usage_millicores is None  # first sight: no rate
    # scrape 55 s later, but the samples are 10 s apart: (10.5 - 10.0) s / 10 s * 1000 = 50 millicores
    second = compute(pod(cpu=Sample(10.5, T0 + 10_000)), state, scrape_time_ms=T0 + 60_000)
    assert second.cpu_usage_millicores == pytest.approx(50.0)


def test_cpu_rate_falls_back_to_scrape_time_without_sample_timestamp() -> None:
    state: dict = {}
    assert compute(pod(cpu=Sample(10.0, None)), state, T0).cpu_usage_millicores is None
    # (12.0 - 10.0) s over 20 s of scrape time -> 0.1 cores = 100 millicores
    m = compute(pod(cpu=Sample(12.0, None)), state, T0 + 20_000)
    assert m.cpu_usage_millicores == pytest.approx(100.0)


def test_counter_reset_gives_none_then_rates_from_new_value() -> None:
    state: dict = {}
    compute(pod(cpu=Sample(10.0, T0)), state, T0)
    reset = compute(pod(cpu=Sample(5.0, T0 + 10_000)), state, T0 + 10_000)
    assert reset.cpu_usage_millicores is None
    # from 5.0 at T0+10s to 6.0 at T0+20s: 1 s / 10 s = 100 millicores (not from the old 10.0)
    after = compute(pod(cpu=Sample(6.0, T0 + 20_000)), state, T0 + 20_000)
    assert after.cpu_usage_millicores == pytest.approx(100.0)


def test_equal_and_older_timestamps_give_none_and_an_older_one_restarts_the_history() -> None:
    state: dict = {}
    compute(pod(cpu=Sample(10.0, T0)), state, T0)
    assert compute(
        pod(cpu=Sample(11.0, T0 + 10_000)), state, T0 + 10_000
    ).cpu_usage_millicores == pytest.approx(100.0)
    assert (
        compute(pod(cpu=Sample(11.0, T0 + 10_000)), state, T0 + 20_000).cpu_usage_millicores is None
    )  # same ts
    assert (
        compute(pod(cpu=Sample(10.8, T0 + 5_000)), state, T0 + 30_000).cpu_usage_millicores is None
    )  # older ts: the node's clock went back
    # the next sample rates against that older one (10.8 at T0+5s): 1.2 s / 15 s = 80 millicores
    m = compute(pod(cpu=Sample(12.0, T0 + 20_000)), state, T0 + 40_000)
    assert m.cpu_usage_millicores == pytest.approx(80.0)


def test_a_clock_that_stepped_back_costs_one_cycle_not_until_it_catches_up() -> None:
    # One sample stamped 5 minutes ahead (within the skew allowed), then the node's clock is fixed.
    state: dict = {}
    ahead = T0 + 5 * 60_000
    compute(pod(cpu=Sample(10.0, T0 - 60_000)), state, T0 - 60_000)
    compute(pod(cpu=Sample(10.6, ahead)), state, T0)
    # back on time a minute later: older than the sample held, so no rate, and the history restarts
    assert compute(pod(cpu=Sample(16.6, T0 + 60_000)), state, T0 + 60_000).cpu_usage_millicores is None
    # the next minute has a rate again: 6 s / 60 s = 100 millicores (not None until T0 + 5 min)
    m = compute(pod(cpu=Sample(22.6, T0 + 120_000)), state, T0 + 120_000)
    assert m.cpu_usage_millicores == pytest.approx(100.0)


@pytest.mark.parametrize(
    "stamp",
    [T0 + 11 * 60_000, T0 - 61 * 60_000, 5],  # beyond 10 min ahead, beyond an hour old, near 1970
    ids=["ahead", "old", "epoch"],
)
def test_an_implausible_sample_time_gives_no_rate_and_is_not_kept(stamp: int) -> None:
    state: dict = {}
    compute(pod(cpu=Sample(10.0, T0 - 60_000)), state, T0 - 60_000)
    assert compute(pod(cpu=Sample(11.0, stamp)), state, T0).cpu_usage_millicores is None
    assert _cpu_state(state) == []  # neither the bad sample nor the one before it
    compute(pod(cpu=Sample(12.0, T0 + 60_000)), state, T0 + 60_000)
    # rates resume from the first good sample after it: 6 s / 60 s = 100 millicores
    m = compute(pod(cpu=Sample(18.0, T0 + 120_000)), state, T0 + 120_000)
    assert m.cpu_usage_millicores == pytest.approx(100.0)


def _cpu_state(state: dict) -> list:
    return [value for key, value in state.items() if key.endswith("|cpu")]


@pytest.mark.parametrize(
    ("quota", "period", "expected"),
    [
        (50_000.0, 100_000.0, 500.0),  # 0.5 core
        (25_000.0, 50_000.0, 500.0),  # same limit, another period
        (30_000.0, 200_000.0, 150.0),  # 30000/200000*1000; assuming 100000 would give 300
        (200_000.0, 100_000.0, 2000.0),
        (None, 100_000.0, None),  # no quota row: unlimited
        (0.0, 100_000.0, None),
        (-1.0, 100_000.0, None),
        (50_000.0, None, None),
        (50_000.0, 0.0, None),
    ],
)
def test_cpu_limit(quota, period, expected) -> None:
    m = compute(pod(quota=quota, period=period), {}, T0)
    if expected is None:
        assert m.cpu_limit_millicores is None
    else:
        assert m.cpu_limit_millicores == pytest.approx(expected)


def test_cpu_utilization_needs_usage_and_limit() -> None:
    state: dict = {}
    first = compute(pod(cpu=Sample(1.0, T0), quota=50_000.0, period=100_000.0), state, T0)
    assert first.cpu_limit_millicores == pytest.approx(500.0)
    assert first.cpu_utilization is None  # no usage yet
    # usage: 0.5 s over 10 s = 50 millicores; limit 500 -> 10 %
    m = compute(pod(cpu=Sample(1.5, T0 + 10_000), quota=50_000.0, period=100_000.0), state, T0 + 10_000)
    assert m.cpu_usage_millicores == pytest.approx(50.0)
    assert m.cpu_utilization == pytest.approx(10.0)
    # no limit: usage alone, no utilization
    state2: dict = {}
    compute(pod(cpu=Sample(1.0, T0)), state2, T0)
    m2 = compute(pod(cpu=Sample(1.5, T0 + 10_000), period=100_000.0), state2, T0 + 10_000)
    assert m2.cpu_usage_millicores == pytest.approx(50.0)
    assert m2.cpu_limit_millicores is None and m2.cpu_utilization is None


# -------------------------------------------------------------------------------------- memory


def test_memory_without_limit() -> None:
    m = compute(pod(mem=Sample(7_294_976.0, T0), mem_limit=0.0), {}, T0)
    assert m.memory_working_set_bytes == 7_294_976.0
    assert m.memory_limit_bytes is None  # cAdvisor's 0 means unlimited
    assert m.memory_utilization is None


def test_memory_utilization() -> None:
    # 1 MiB of 4 MiB = 25 %
    m = compute(pod(mem=Sample(1_048_576.0, T0), mem_limit=4_194_304.0), {}, T0)
    assert m.memory_working_set_bytes == 1_048_576.0
    assert m.memory_limit_bytes == 4_194_304.0
    assert m.memory_utilization == pytest.approx(25.0)


def test_memory_limit_without_working_set() -> None:
    m = compute(pod(mem_limit=4_194_304.0), {}, T0)
    assert m.memory_limit_bytes == 4_194_304.0
    assert m.memory_working_set_bytes is None and m.memory_utilization is None


# ------------------------------------------------------------------------------------- network


def test_network_summed_over_interfaces() -> None:
    state: dict = {}
    first = compute(
        pod(rx={"eth0": Sample(1_000.0, T0), "tunl0": Sample(0.0, T0)}, tx={"eth0": Sample(0.0, T0)}),
        state,
        T0,
    )
    assert first.network_rx_bytes_per_second is None and first.network_tx_bytes_per_second is None
    m = compute(
        pod(
            rx={"eth0": Sample(11_000.0, T0 + 10_000), "tunl0": Sample(500.0, T0 + 10_000)},
            tx={"eth0": Sample(2_000.0, T0 + 10_000)},
        ),
        state,
        T0 + 10_000,
    )
    # rx: eth0 10000 B / 10 s = 1000 B/s, tunl0 500 B / 10 s = 50 B/s -> 1050; tx: 2000 B / 10 s = 200
    assert m.network_rx_bytes_per_second == pytest.approx(1050.0)
    assert m.network_tx_bytes_per_second == pytest.approx(200.0)


def test_network_none_when_one_interface_has_no_rate() -> None:
    state: dict = {}
    compute(pod(rx={"eth0": Sample(1_000.0, T0)}), state, T0)
    # sit0 appears for the first time: a partial sum (eth0 only) would be wrong
    m = compute(
        pod(rx={"eth0": Sample(11_000.0, T0 + 10_000), "sit0": Sample(7.0, T0 + 10_000)}), state, T0 + 10_000
    )
    assert m.network_rx_bytes_per_second is None
    # one interface reset: also no value
    m = compute(
        pod(rx={"eth0": Sample(5.0, T0 + 20_000), "sit0": Sample(17.0, T0 + 20_000)}), state, T0 + 20_000
    )
    assert m.network_rx_bytes_per_second is None
    # both have history now: eth0 (105-5)/10 = 10, sit0 (37-17)/10 = 2 -> 12 B/s
    m = compute(
        pod(rx={"eth0": Sample(105.0, T0 + 30_000), "sit0": Sample(37.0, T0 + 30_000)}), state, T0 + 30_000
    )
    assert m.network_rx_bytes_per_second == pytest.approx(12.0)


def test_new_sandbox_is_a_new_series() -> None:
    state: dict = {}
    compute(pod(rx={"eth0": Sample(1_000.0, T0)}), state, T0)
    other = "/kubepods/burstable/pod11111111-2222-3333-4444-555555555555/" + "cd" * 32
    m = compute(pod(rx={"eth0": Sample(50_000.0, T0 + 10_000)}, sandbox=other), state, T0 + 10_000)
    assert m.network_rx_bytes_per_second is None


# ------------------------------------------------------------------------------ NaN / Inf inputs

BAD = [math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("bad", BAD)
def test_non_finite_counter_never_produces_a_value(bad: float) -> None:
    state: dict = {}
    compute(pod(cpu=Sample(1.0, T0), rx={"eth0": Sample(1.0, T0)}, tx={"eth0": Sample(1.0, T0)}), state, T0)
    m = compute(
        pod(
            cpu=Sample(bad, T0 + 10_000),
            rx={"eth0": Sample(bad, T0 + 10_000)},
            tx={"eth0": Sample(bad, T0 + 10_000)},
        ),
        state,
        T0 + 10_000,
    )
    assert m.cpu_usage_millicores is None
    assert m.network_rx_bytes_per_second is None and m.network_tx_bytes_per_second is None
    assert _all_finite(m)
    # and a NaN/Inf in the history never leaks into a later value
    m = compute(pod(cpu=Sample(2.0, T0 + 20_000)), state, T0 + 20_000)
    assert m.cpu_usage_millicores is None or math.isfinite(m.cpu_usage_millicores)


@pytest.mark.parametrize("bad", BAD)
def test_non_finite_gauges_never_produce_a_value(bad: float) -> None:
    m = compute(pod(mem=Sample(bad, T0), mem_limit=4_194_304.0, quota=bad, period=100_000.0), {}, T0)
    assert m.memory_working_set_bytes is None and m.memory_utilization is None
    assert m.cpu_limit_millicores is None
    m = compute(pod(mem=Sample(1_048_576.0, T0), mem_limit=bad), {}, T0)
    assert m.memory_limit_bytes is None and m.memory_utilization is None
    assert m.memory_working_set_bytes == 1_048_576.0
    assert _all_finite(m)


@pytest.mark.parametrize("bad", [math.nan, -math.inf])
def test_non_finite_or_negative_period_gives_no_cpu_limit(bad: float) -> None:
    m = compute(pod(quota=50_000.0, period=bad), {}, T0)
    assert m.cpu_limit_millicores is None


def test_infinite_period_gives_no_cpu_limit() -> None:
    m = compute(pod(quota=50_000.0, period=math.inf), {}, T0)
    assert m.cpu_limit_millicores is None


def test_overflowing_rate_is_dropped() -> None:
    state: dict = {}
    compute(pod(cpu=Sample(0.0, T0)), state, T0)
    # 1e308 s in 1 ms: the rate overflows to inf -> no value
    m = compute(pod(cpu=Sample(1e308, T0 + 1)), state, T0 + 1)
    assert m.cpu_usage_millicores is None
    assert _all_finite(m)


def test_negative_memory_is_dropped() -> None:
    m = compute(pod(mem=Sample(-5.0, T0), mem_limit=-1.0), {}, T0)
    assert (
        m.memory_working_set_bytes is None and m.memory_limit_bytes is None and m.memory_utilization is None
    )


# ------------------------------------------------------------------------------ pod identity


def test_pod_recreated_with_same_name_never_uses_old_samples() -> None:
    state: dict = {}
    old_uid, new_uid = "aaaaaaaa-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000002"
    compute(pod(uid=old_uid, cpu=Sample(0.1, T0), rx={"eth0": Sample(10.0, T0)}), state, T0)
    # same name and namespace, same sandbox path by construction; new uid: would be 490 mc / 499 B/s if mixed
    m = compute(
        pod(uid=new_uid, cpu=Sample(5.0, T0 + 10_000), rx={"eth0": Sample(5_000.0, T0 + 10_000)}),
        state,
        T0 + 10_000,
    )
    assert m.uid == new_uid and m.pod == "web-1"
    assert m.cpu_usage_millicores is None
    assert m.network_rx_bytes_per_second is None
    # ...and the new pod then rates from its own first sample: (6.0 - 5.0) / 10 s = 100 mc
    m = compute(pod(uid=new_uid, cpu=Sample(6.0, T0 + 20_000)), state, T0 + 20_000)
    assert m.cpu_usage_millicores == pytest.approx(100.0)


def test_identity_fields_copied() -> None:
    m = compute(pod(mem=Sample(1.0, T0)), {}, T0)
    assert (m.namespace, m.pod, m.uid) == ("shop", "web-1", UID)


# --------------------------------------------------------------------- counters_born_after_ms


def test_pod_born_after_last_cycle_rates_cpu_from_zero_since_start_but_not_network() -> None:
    last_cycle = T0
    start_s = (T0 + 5_000) // 1000  # cAdvisor prints whole seconds; the start is taken as mid-second
    sample_ms = T0 + 5_000 + 40_500
    p = pod(
        cpu=Sample(8.0, sample_ms),
        rx={"eth0": Sample(5_000.0, sample_ms)},
        tx={"eth0": Sample(1_000.0, sample_ms)},
        start=float(start_s),
    )
    m = compute(p, {}, sample_ms + 2_000, counters_born_after_ms=last_cycle)
    # from 0 at its start (T0 + 5.5 s): 8 s / 40 s = 200 mc
    assert m.cpu_usage_millicores == pytest.approx(200.0)
    # the sandbox's interfaces may have counted before the pod's cgroup existed: no first network rate
    assert m.network_rx_bytes_per_second is None and m.network_tx_bytes_per_second is None


def test_network_of_a_pod_sharing_the_nodes_counters_gets_no_made_up_first_rate() -> None:
    # The review's case: a sandbox whose eth0 counter is the node's (563 MB), pod born 5 s after the
    # last cycle. Rating it from zero would claim megabytes a second.
    p = pod(
        cpu=Sample(0.5, T0 + 60_000),
        rx={"eth0": Sample(563_000_000.0, T0 + 60_000)},
        start=(T0 + 5_000) / 1000,
    )
    m = compute(p, {}, T0 + 60_000, counters_born_after_ms=T0)
    assert m.network_rx_bytes_per_second is None


def test_pod_born_too_recently_for_a_precise_rate_gets_none_until_its_second_sample() -> None:
    start_s = (T0 + 5_000) // 1000
    sample_ms = T0 + 5_000 + 10_000  # 9.5 s after the mid-second start: half a second is 5% of it
    state: dict = {}
    p = pod(cpu=Sample(1.0, sample_ms), start=float(start_s))
    assert compute(p, state, sample_ms, counters_born_after_ms=T0).cpu_usage_millicores is None
    p = pod(cpu=Sample(7.0, sample_ms + 60_000), start=float(start_s))
    m = compute(p, state, sample_ms + 60_000, counters_born_after_ms=sample_ms)
    assert m.cpu_usage_millicores == pytest.approx(100.0)  # 6 s / 60 s


def test_pod_started_before_last_cycle_gets_no_rate_on_first_sight() -> None:
    p = pod(
        cpu=Sample(2.0, T0 + 10_000), rx={"eth0": Sample(5_000.0, T0 + 10_000)}, start=(T0 - 1_000) / 1000
    )
    m = compute(p, {}, T0 + 12_000, counters_born_after_ms=T0)
    assert m.cpu_usage_millicores is None and m.network_rx_bytes_per_second is None


def test_born_after_without_start_time_or_without_last_cycle_gives_none() -> None:
    p = pod(cpu=Sample(2.0, T0 + 10_000))
    assert compute(p, {}, T0 + 12_000, counters_born_after_ms=T0).cpu_usage_millicores is None
    p = pod(cpu=Sample(2.0, T0 + 10_000), start=(T0 + 5_000) / 1000)
    assert compute(p, {}, T0 + 12_000).cpu_usage_millicores is None


# ----------------------------------------------------------------------------------------- prune


def test_prune_drops_only_entries_older_than_max_age() -> None:
    now = T0
    state = {
        "old": (1.0, now - 60_001),
        "edge": (1.0, now - 60_000),
        "fresh": (1.0, now - 1),
        "future": (1.0, now + 5_000),
    }
    assert prune(state, now, max_age_ms=60_000) == 1
    assert set(state) == {"edge", "fresh", "future"}


def test_prune_default_max_age_is_fifteen_minutes() -> None:
    state = {"a": (1.0, T0 - 15 * 60_000 - 1), "b": (1.0, T0 - 15 * 60_000 + 1)}
    assert prune(state, T0) == 1
    assert set(state) == {"b"}


def test_prune_keeps_history_used_by_compute() -> None:
    state: dict = {}
    compute(pod(cpu=Sample(1.0, T0)), state, T0)
    prune(state, T0 + 60_000)
    m = compute(pod(cpu=Sample(2.0, T0 + 100_000)), state, T0 + 100_000)
    assert m.cpu_usage_millicores == pytest.approx(10.0)  # 1 s / 100 s


# ---------------------------------------------------------------------------- document timestamp


def test_document_timestamp_is_newest_plausible_sample() -> None:
    scrape = T0
    p = pod(
        cpu=Sample(1.0, scrape - 3_000),
        mem=Sample(1.0, scrape - 1_000),
        rx={"eth0": Sample(1.0, scrape - 2_000)},
    )
    assert compute(p, {}, scrape).timestamp_ms == scrape - 1_000


def test_document_timestamp_ignores_implausible_samples() -> None:
    scrape = T0
    p = pod(
        cpu=Sample(1.0, scrape - 2 * 3_600_000),  # two hours old
        mem=Sample(1.0, scrape + 3_600_000),  # an hour in the future
        rx={"eth0": Sample(1.0, scrape - 4_000)},
    )
    assert compute(p, {}, scrape).timestamp_ms == scrape - 4_000


def test_document_timestamp_falls_back_to_scrape_time() -> None:
    assert compute(pod(cpu=Sample(1.0, None), mem=Sample(1.0, None)), {}, T0).timestamp_ms == T0
    assert compute(pod(), {}, T0).timestamp_ms == T0
    assert compute(pod(cpu=Sample(1.0, 5)), {}, T0).timestamp_ms == T0


def test_document_timestamp_considers_transmit_samples() -> None:
    scrape = T0
    p = pod(
        cpu=Sample(1.0, scrape - 3_000),
        rx={"eth0": Sample(1.0, scrape - 3_000)},
        tx={"eth0": Sample(1.0, scrape - 500)},
    )
    assert compute(p, {}, scrape).timestamp_ms == scrape - 500


def test_all_metrics_together() -> None:
    state: dict = {}
    kw = {"quota": 100_000.0, "period": 100_000.0, "mem_limit": 2_000.0}
    compute(
        pod(
            cpu=Sample(1.0, T0),
            mem=Sample(500.0, T0),
            rx={"eth0": Sample(0.0, T0)},
            tx={"eth0": Sample(0.0, T0)},
            **kw,
        ),
        state,
        T0,
    )
    m = compute(
        pod(
            cpu=Sample(3.0, T0 + 20_000),
            mem=Sample(500.0, T0 + 20_000),
            rx={"eth0": Sample(4_000.0, T0 + 20_000)},
            tx={"eth0": Sample(2_000.0, T0 + 20_000)},
            **kw,
        ),
        state,
        T0 + 21_000,
    )
    # cpu: 2 s / 20 s = 100 mc; limit 1000 mc -> 10 %; memory 500/2000 = 25 %; rx 200 B/s, tx 100 B/s
    assert m.cpu_usage_millicores == pytest.approx(100.0)
    assert m.cpu_limit_millicores == pytest.approx(1000.0)
    assert m.cpu_utilization == pytest.approx(10.0)
    assert m.memory_working_set_bytes == 500.0
    assert m.memory_limit_bytes == 2_000.0
    assert m.memory_utilization == pytest.approx(25.0)
    assert m.network_rx_bytes_per_second == pytest.approx(200.0)
    assert m.network_tx_bytes_per_second == pytest.approx(100.0)
    assert m.timestamp_ms == T0 + 20_000
