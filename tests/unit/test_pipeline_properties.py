"""Property: whatever names and numbers a kubelet payload carries, the pure pipeline (extract, compute,
build, dumps) writes only valid JSON and valid EMF, names round-trip exactly, and no value is ever
non-finite, a negative rate, or different from what the counters say."""

from __future__ import annotations

import json
import math
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fargate_insights.cadvisor import extract
from fargate_insights.emf import PodContext, PodDocumentBuilder, dumps, valid_dimension_value
from fargate_insights.pod_metrics import compute

UID = "0f1e2d3c-4b5a-4697-8877-665544332211"
POD_CGROUP = f"/kubepods/burstable/pod{UID}"
SANDBOX = f"{POD_CGROUP}/5475c18c3e8240996eea83399fd390c929effbb97fca5a0b9e0e7f2e1b0c4d11"
T0_MS = int(time.time()) * 1000  # near now: CloudWatch drops documents older than 14 days
DIMENSIONS = [
    ["ClusterName", "LaunchType"],
    ["ClusterName", "Namespace", "LaunchType"],
    ["ClusterName", "Namespace", "PodName", "LaunchType"],
]
UNITS = {"None", "Percent", "Bytes", "Bytes/Second"}


def _escape(value: str) -> str:
    """A label value as the text format writes it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _payload(namespace: str, pod: str, cpu: float, memory: float, limit: float, rx: float, ms: int) -> bytes:
    who = f'namespace="{_escape(namespace)}",pod="{_escape(pod)}"'
    total = f'container="",id="{POD_CGROUP}",image="",name="",{who}'
    sandbox = (
        f'container="",id="{SANDBOX}",image="602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/pause:3.5"'
    )
    lines = [
        "# TYPE container_cpu_usage_seconds_total counter",
        f'container_cpu_usage_seconds_total{{container="",cpu="total",id="{POD_CGROUP}",image="",name="",{who}}} '
        f"{_number(cpu)} {ms}",
        f"container_memory_working_set_bytes{{{total}}} {_number(memory)} {ms}",
        f'container_network_receive_bytes_total{{{sandbox},interface="eth0",name="abc",{who}}} {_number(rx)} {ms}',
        f'container_network_transmit_bytes_total{{{sandbox},interface="eth0",name="abc",{who}}} {_number(rx)} {ms}',
        f"container_spec_memory_limit_bytes{{{total}}} {_number(limit)}",
        f"container_spec_cpu_quota{{{total}}} 50000",
        f"container_spec_cpu_period{{{total}}} 100000",
    ]
    return ("\n".join(lines) + "\n").encode()


names = st.text(min_size=1, max_size=40)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=1e12),
    st.integers(min_value=0, max_value=2**53).map(float),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    namespace=names,
    pod=names,
    first=st.tuples(numbers, numbers, numbers, numbers),
    second=st.tuples(numbers, numbers, numbers, numbers),
    step_ms=st.integers(min_value=1, max_value=120_000),
)
def test_any_names_and_numbers_give_valid_emf_and_honest_values(
    namespace: str,
    pod: str,
    first: tuple[float, float, float, float],
    second: tuple[float, float, float, float],
    step_ms: int,
) -> None:
    state: dict = {}
    builder = PodDocumentBuilder("cluster")
    where = PodContext(cluster_name="cluster", node_name="fargate-node", host="fargate-node")
    for (cpu, memory, limit, rx), ms in ((first, T0_MS), (second, T0_MS + step_ms)):
        extraction = extract(_payload(namespace, pod, cpu, memory, limit, rx, ms))
        assert extraction.malformed_lines == 0
        series = extraction.pods[UID]
        assert (series.namespace, series.pod) == (namespace, pod)  # escapes decoded exactly
        metrics = compute(series, state, ms)
        raw = builder.build(metrics, where)
        if raw is None:
            continue
        assert valid_dimension_value(namespace) and valid_dimension_value(pod)
        line = dumps(raw)
        assert "\n" not in line
        doc = json.loads(line)
        directive = doc["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "ContainerInsights"
        assert directive["Dimensions"] == DIMENSIONS
        assert (doc["Namespace"], doc["PodName"]) == (namespace, pod)
        assert doc["kubernetes"]["pod_name"] == pod and doc["kubernetes"]["namespace_name"] == namespace
        for metric in directive["Metrics"]:
            assert metric["Unit"] in UNITS
            value = doc[metric["Name"]]
            value = value[0] if isinstance(value, list) else value
            assert isinstance(value, float | int) and math.isfinite(value) and value >= 0
        if "pod_memory_working_set" in doc:
            assert doc["pod_memory_working_set"] in (memory, [memory])
        if "pod_cpu_usage_total" in doc:
            (cpu0, *_), (cpu1, *_) = first, second
            expected = (cpu1 - cpu0) / (step_ms / 1000) * 1000
            got = doc["pod_cpu_usage_total"]
            got = got[0] if isinstance(got, list) else got
            assert cpu1 >= cpu0 and math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9)
