"""emf.PodDocumentBuilder: the EMF document of one pod, checked against the metric contract
(/work/shared/reference/container-insights-fargate.md) after a JSON round trip of dumps()."""

from __future__ import annotations

import json
import math
import time
import warnings
from typing import Any

import pytest

from fargate_insights.emf import PodContext, PodDocumentBuilder, dumps
from fargate_insights.pod_metrics import PodMetrics

CLUSTER = "prod-eks"
WHERE = PodContext(
    cluster_name=CLUSTER, node_name="fargate-ip-10-0-1-23.ec2.internal", host="ip-10-0-1-23.ec2.internal"
)

DIMENSIONS = [
    ["ClusterName", "LaunchType"],
    ["ClusterName", "Namespace", "LaunchType"],
    ["ClusterName", "Namespace", "PodName", "LaunchType"],
]
# The contract's table: metric -> EMF unit.
UNITS = {
    "pod_cpu_usage_total": "None",
    "pod_cpu_limit": "None",
    "pod_cpu_utilization_over_pod_limit": "Percent",
    "pod_memory_working_set": "Bytes",
    "pod_memory_limit": "Bytes",
    "pod_memory_utilization_over_pod_limit": "Percent",
    "pod_network_rx_bytes": "Bytes/Second",
    "pod_network_tx_bytes": "Bytes/Second",
}
FIELD_OF = {
    "pod_cpu_usage_total": "cpu_usage_millicores",
    "pod_cpu_limit": "cpu_limit_millicores",
    "pod_cpu_utilization_over_pod_limit": "cpu_utilization",
    "pod_memory_working_set": "memory_working_set_bytes",
    "pod_memory_limit": "memory_limit_bytes",
    "pod_memory_utilization_over_pod_limit": "memory_utilization",
    "pod_network_rx_bytes": "network_rx_bytes_per_second",
    "pod_network_tx_bytes": "network_tx_bytes_per_second",
}
ALL_VALUES = {
    "cpu_usage_millicores": 125.5,
    "cpu_limit_millicores": 500.0,
    "cpu_utilization": 25.1,
    "memory_working_set_bytes": 7_294_976.0,
    "memory_limit_bytes": 52_428_800.0,
    "memory_utilization": 13.914,
    "network_rx_bytes_per_second": 1050.0,
    "network_tx_bytes_per_second": 200.0,
}
NOW_MS = int(time.time() * 1000) - 7_000


def metrics(
    namespace: str = "shop", pod: str = "web-1", ts: int = NOW_MS, **values: float | None
) -> PodMetrics:
    return PodMetrics(
        namespace=namespace, pod=pod, uid="11111111-2222-3333-4444-555555555555", timestamp_ms=ts, **values
    )


def build(m: PodMetrics, builder: PodDocumentBuilder | None = None) -> dict[str, Any] | None:
    doc = (builder or PodDocumentBuilder(CLUSTER)).build(m, WHERE)
    if doc is None:
        return None
    line = dumps(doc)
    assert "\n" not in line
    return json.loads(line)


def _cw(doc: dict[str, Any]) -> dict[str, Any]:
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    return directive


def _value(doc: dict[str, Any], name: str) -> float:
    """A metric's value: EMF allows a number or an array of numbers; one value per metric here."""
    value = doc[name]
    if isinstance(value, list):
        assert len(value) == 1, value
        (value,) = value
    assert isinstance(value, (int, float))
    return value


def _metric_names(doc: dict[str, Any]) -> set[str]:
    return {d["Name"] for d in _cw(doc)["Metrics"]}


def test_full_document_matches_contract() -> None:
    doc = build(metrics(**ALL_VALUES))
    assert doc is not None
    cw = _cw(doc)
    assert cw["Namespace"] == "ContainerInsights"
    assert cw["Dimensions"] == DIMENSIONS
    assert {d["Name"]: d["Unit"] for d in cw["Metrics"]} == UNITS
    assert all(set(d) == {"Name", "Unit"} for d in cw["Metrics"])  # standard resolution
    for name, attribute in FIELD_OF.items():
        assert _value(doc, name) == ALL_VALUES[attribute]
    assert doc["_aws"]["Timestamp"] == NOW_MS
    assert doc["ClusterName"] == CLUSTER
    assert doc["LaunchType"] == "fargate"
    assert doc["Namespace"] == "shop"
    assert doc["PodName"] == "web-1"
    assert doc["NodeName"] == "ip-10-0-1-23.ec2.internal"  # the kubernetes.io/hostname label
    assert doc["Type"] == "Pod"
    assert isinstance(doc["Version"], str) and doc["Version"]
    k8s = doc["kubernetes"]
    assert k8s["host"] == "ip-10-0-1-23.ec2.internal"
    assert k8s["namespace_name"] == "shop"
    assert k8s["pod_name"] == "web-1"
    assert "service" not in doc


@pytest.mark.parametrize(
    "env", [{}, {"POWERTOOLS_SERVICE_NAME": "collector"}, {"POWERTOOLS_METRICS_NAMESPACE": "Other"}]
)
def test_dimensions_exact_whatever_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_SERVICE_NAME", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    builder = PodDocumentBuilder(CLUSTER)
    for _ in range(2):
        doc = build(metrics(memory_working_set_bytes=1.0), builder)
        assert doc is not None
        assert _cw(doc)["Dimensions"] == DIMENSIONS
        assert _cw(doc)["Namespace"] == "ContainerInsights"
        assert "service" not in doc
        assert [] not in _cw(doc)["Dimensions"]


@pytest.mark.parametrize("present", sorted(FIELD_OF))
def test_only_computable_metrics_present(present: str) -> None:
    doc = build(metrics(**{FIELD_OF[present]: 42.0}))
    assert doc is not None
    assert _metric_names(doc) == {present}
    assert _value(doc, present) == 42.0
    assert {d["Name"]: d["Unit"] for d in _cw(doc)["Metrics"]} == {present: UNITS[present]}
    for other in set(UNITS) - {present}:
        assert other not in doc
    assert _cw(doc)["Dimensions"] == DIMENSIONS


def test_zero_is_a_value() -> None:
    doc = build(metrics(network_rx_bytes_per_second=0.0, cpu_usage_millicores=0.0))
    assert doc is not None
    assert _metric_names(doc) == {"pod_network_rx_bytes", "pod_cpu_usage_total"}
    assert _value(doc, "pod_network_rx_bytes") == 0.0


def test_pod_without_metrics_gives_none() -> None:
    assert build(metrics()) is None


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_never_appear(bad: float) -> None:
    assert build(metrics(cpu_usage_millicores=bad, memory_utilization=bad)) is None
    builder = PodDocumentBuilder(CLUSTER)
    raw = builder.build(metrics(cpu_usage_millicores=bad, memory_working_set_bytes=10.0), WHERE)
    assert raw is not None
    line = dumps(raw)
    for token in ("NaN", "Infinity"):
        assert token not in line
    doc = json.loads(line)
    assert _metric_names(doc) == {"pod_memory_working_set"}
    assert "pod_cpu_usage_total" not in doc


def test_dumps_refuses_nan() -> None:
    with pytest.raises(ValueError):
        dumps({"x": math.nan})


@pytest.mark.parametrize(
    "bad_name",
    [
        "",
        " ",
        "a" * 1025,
        "web\t1",
        "web\n1",
        "web\x00",
        "web\x7f",
        "wéb-1",
        "ポッド",
    ],
)
@pytest.mark.parametrize("which", ["pod", "namespace"])
def test_invalid_dimension_values_give_none(bad_name: str, which: str) -> None:
    kwargs = {which: bad_name}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert build(metrics(**kwargs, cpu_usage_millicores=1.0)) is None


def test_longest_valid_name_is_accepted() -> None:
    doc = build(metrics(pod="a" * 1024, namespace="n", cpu_usage_millicores=1.0))
    assert doc is not None
    assert doc["PodName"] == "a" * 1024


@pytest.mark.parametrize("name", ['we"ird', "back\\slash", "</script>&'", "{braces}", "a b"])
def test_names_needing_json_escaping_produce_valid_json(name: str) -> None:
    builder = PodDocumentBuilder(CLUSTER)
    raw = builder.build(metrics(pod=name, namespace=name, memory_working_set_bytes=5.0), WHERE)
    assert raw is not None
    doc = json.loads(dumps(raw))  # valid JSON
    assert doc["PodName"] == name
    assert doc["Namespace"] == name
    assert doc["kubernetes"]["pod_name"] == name
    assert doc["kubernetes"]["namespace_name"] == name
    assert _cw(doc)["Dimensions"] == DIMENSIONS


def test_builder_reuse_does_not_leak_between_pods() -> None:
    builder = PodDocumentBuilder(CLUSTER)
    first = build(metrics(pod="first", namespace="ns-one", **ALL_VALUES), builder)
    second = build(
        metrics(pod="second", namespace="ns-two", ts=NOW_MS + 60_000, memory_working_set_bytes=99.0), builder
    )
    assert first is not None and second is not None
    assert _metric_names(second) == {"pod_memory_working_set"}
    assert _value(second, "pod_memory_working_set") == 99.0
    assert _cw(second)["Dimensions"] == DIMENSIONS
    assert (second["PodName"], second["Namespace"]) == ("second", "ns-two")
    assert second["kubernetes"]["pod_name"] == "second"
    assert second["_aws"]["Timestamp"] == NOW_MS + 60_000
    for name in set(UNITS) - {"pod_memory_working_set"}:
        assert name not in second
    # a pod without metrics in between does not disturb the next one either
    assert build(metrics(pod="empty"), builder) is None
    third = build(metrics(pod="third", cpu_usage_millicores=7.0), builder)
    assert third is not None
    assert _metric_names(third) == {"pod_cpu_usage_total"}
    assert third["PodName"] == "third"
    assert _cw(third)["Dimensions"] == DIMENSIONS
    # the first document was not changed by later builds
    assert first["PodName"] == "first" and _metric_names(first) == set(UNITS)


def test_timestamp_is_the_metrics_timestamp_not_now() -> None:
    ts = NOW_MS - 3_600_000
    doc = build(metrics(ts=ts, cpu_usage_millicores=1.0))
    assert doc is not None
    assert doc["_aws"]["Timestamp"] == ts


def test_document_is_one_compact_line() -> None:
    builder = PodDocumentBuilder(CLUSTER)
    raw = builder.build(metrics(**ALL_VALUES), WHERE)
    assert raw is not None
    line = dumps(raw)
    assert "\n" not in line and line.isascii()
    assert len(line.encode()) < 256 * 1024
