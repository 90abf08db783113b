"""Turn one pod's cAdvisor series (and the previous cycle's counters) into the eight pod metrics.

Pure functions: the caller owns the counter state and its persistence. Every value produced is finite;
anything that cannot be computed exactly as the metric contract says is left out (None), never guessed.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping
from dataclasses import dataclass

from .cadvisor import PodSeries, Sample

# A counter sample kept between cycles: (value, timestamp in ms).
CounterSample = tuple[float, int]
CounterState = MutableMapping[str, CounterSample]


@dataclass(slots=True, frozen=True)
class PodMetrics:
    """The contract's eight pod metrics (None = not computable this cycle) and the pod's identity."""

    namespace: str
    pod: str
    uid: str
    timestamp_ms: int
    cpu_usage_millicores: float | None = None
    cpu_limit_millicores: float | None = None
    cpu_utilization: float | None = None
    memory_working_set_bytes: float | None = None
    memory_limit_bytes: float | None = None
    memory_utilization: float | None = None
    network_rx_bytes_per_second: float | None = None
    network_tx_bytes_per_second: float | None = None


def compute(
    pod: PodSeries,
    state: CounterState,
    scrape_time_ms: int,
    counters_born_after_ms: int | None = None,
) -> PodMetrics:
    """Compute a pod's metrics and record its counters in `state` for the next cycle.

    State keys include the pod UID, so a pod recreated under the same name never reuses old samples.
    `counters_born_after_ms`: when the previous successful cycle ran. A pod whose cgroup was created
    after it has a CPU counter that started at zero at its start time, so its first CPU rate can be
    computed from there (see `_born_at_ms` for its precision). Its network counters get no such rate:
    they belong to the sandbox's interfaces, whose counters need not have been zero when the pod's
    cgroup was created (a network namespace shared with the node counts the node's traffic).
    """
    born_at_ms = _born_at_ms(pod, counters_born_after_ms)
    cpu_rate = _rate(state, _cpu_key(pod.uid), pod.cpu_usage_seconds, scrape_time_ms, born_at_ms)
    cpu_usage = _finite(cpu_rate * 1000.0) if cpu_rate is not None else None
    cpu_limit = _cpu_limit_millicores(pod)
    memory = _finite(pod.memory_working_set.value) if pod.memory_working_set is not None else None
    if memory is not None and memory < 0:
        memory = None
    memory_limit = _finite(pod.memory_limit) if pod.memory_limit is not None else None
    if memory_limit is not None and memory_limit <= 0:
        memory_limit = None  # cAdvisor prints 0 for "no limit"
    rx = _network_rate(state, pod, "rx", scrape_time_ms)
    tx = _network_rate(state, pod, "tx", scrape_time_ms)
    return PodMetrics(
        namespace=pod.namespace,
        pod=pod.pod,
        uid=pod.uid,
        timestamp_ms=_document_timestamp(pod, scrape_time_ms),
        cpu_usage_millicores=cpu_usage,
        cpu_limit_millicores=cpu_limit,
        cpu_utilization=_percent(cpu_usage, cpu_limit),
        memory_working_set_bytes=memory,
        memory_limit_bytes=memory_limit,
        memory_utilization=_percent(memory, memory_limit),
        network_rx_bytes_per_second=rx,
        network_tx_bytes_per_second=tx,
    )


def _cpu_key(uid: str) -> str:
    return f"{uid}|cpu"


def _network_key(uid: str, direction: str, cgroup: str, interface: str) -> str:
    return f"{uid}|{direction}|{cgroup.rsplit('/', 1)[-1]}|{interface}"


def _born_at_ms(pod: PodSeries, counters_born_after_ms: int | None) -> int | None:
    """When the pod's cgroup was created, as the middle of the second cAdvisor prints (it truncates).

    The true start lies within that second, so a rate from it is off by at most half a second over the
    pod's age; `_rate` uses it only for a pod at least `_MIN_BORN_AGE_MS` old (at most 1.7% off).
    """
    if counters_born_after_ms is None or pod.start_time_seconds is None:
        return None
    start = pod.start_time_seconds
    if not math.isfinite(start) or start <= 0:
        return None
    start_ms = int(start) * 1000 + 500
    return start_ms if start_ms > counters_born_after_ms else None


def _rate(
    state: CounterState,
    key: str,
    sample: Sample | None,
    scrape_time_ms: int,
    born_at_ms: int | None = None,
) -> float | None:
    """Per-second rate since the previous sample of this counter; None on a reset or no history."""
    if sample is None or not math.isfinite(sample.value) or sample.value < 0:
        state.pop(key, None)
        return None
    now_ms = sample.timestamp_ms if sample.timestamp_ms is not None else scrape_time_ms
    if not _plausible(now_ms, scrape_time_ms):
        # A node clock far off: neither this sample nor the one held can be put on one time line.
        state.pop(key, None)
        return None
    previous = state.get(key)
    state[key] = (sample.value, now_ms)
    if previous is None:
        if born_at_ms is None or now_ms - born_at_ms < _MIN_BORN_AGE_MS:
            return None
        previous = (0.0, born_at_ms)
    previous_value, previous_ms = previous
    if now_ms <= previous_ms:
        # The same sample again gives no rate. An older one means the node's clock went back: the
        # history starts again from it, since holding the newer sample would give no rate until the
        # clock caught up with it.
        return None
    if sample.value < previous_value:
        return None  # counter reset (container restarted): no value this cycle, never a negative one
    return _finite((sample.value - previous_value) * 1000.0 / (now_ms - previous_ms))


def _plausible(sample_ms: int, scrape_time_ms: int) -> bool:
    """Whether a sample's time can be "now" for a scrape at `scrape_time_ms` (see the limits below)."""
    return scrape_time_ms - _MAX_SAMPLE_AGE_MS <= sample_ms <= scrape_time_ms + _MAX_CLOCK_SKEW_MS


def _network_rate(state: CounterState, pod: PodSeries, direction: str, scrape_time_ms: int) -> float | None:
    """Sum over the sandbox's interfaces; None unless every interface has a rate (a partial sum is wrong)."""
    counters = pod.network_rx if direction == "rx" else pod.network_tx
    if not counters:
        return None
    total = 0.0
    complete = True
    for (cgroup, interface), sample in counters.items():
        key = _network_key(pod.uid, direction, cgroup, interface)
        rate = _rate(state, key, sample, scrape_time_ms)
        if rate is None:
            complete = False
        else:
            total += rate
    return _finite(total) if complete else None


def _cpu_limit_millicores(pod: PodSeries) -> float | None:
    quota, period = pod.cpu_quota, pod.cpu_period
    if quota is None or period is None or not quota > 0 or not period > 0:
        return None
    if not (math.isfinite(quota) and math.isfinite(period)):
        return None  # quota/inf would read as a 0 m limit: no limit value is honest, a wrong one is not
    return _finite(quota / period * 1000.0)


def _percent(usage: float | None, limit: float | None) -> float | None:
    if usage is None or limit is None or limit <= 0:
        return None
    return _finite(usage / limit * 100.0)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _document_timestamp(pod: PodSeries, scrape_time_ms: int) -> int:
    """The samples' own time: the newest timestamp cAdvisor printed for this pod, else the scrape time."""
    stamps = [
        s.timestamp_ms
        for s in (
            pod.cpu_usage_seconds,
            pod.memory_working_set,
            *pod.network_rx.values(),
            *pod.network_tx.values(),
        )
        if s is not None and s.timestamp_ms is not None and _plausible(s.timestamp_ms, scrape_time_ms)
    ]
    return max(stamps) if stamps else scrape_time_ms


# Sample times further from the scrape than this are not plausible as "now": not for a document's
# timestamp, and not for a rate. cAdvisor's samples are seconds to a few minutes old.
_MAX_SAMPLE_AGE_MS = 60 * 60 * 1000
_MAX_CLOCK_SKEW_MS = 10 * 60 * 1000
# A pod younger than this at its first sample gets no rate from its start time yet (see `_born_at_ms`).
_MIN_BORN_AGE_MS = 30 * 1000


def prune(state: CounterState, now_ms: int, max_age_ms: int = 15 * 60 * 1000) -> int:
    """Forget counters not refreshed for `max_age_ms` (pods gone, nodes removed); returns how many.

    Age, not absence from this cycle: a node whose scrape failed once keeps its history, so its next
    successful cycle still gets an exact rate over the longer interval.
    """
    cutoff = now_ms - max_age_ms
    stale = [key for key, (_, ts) in state.items() if ts < cutoff]
    for key in stale:
        del state[key]
    return len(stale)
