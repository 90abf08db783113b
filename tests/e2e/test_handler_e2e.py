"""The real handler, invoked like Lambda does, against the simulated cluster over TLS, with
eks:DescribeCluster served by moto. Every line it writes is checked against the metric contract, and
the values against what the simulator's counters did (worked out here from the simulated pods)."""

from __future__ import annotations

import dataclasses
import json
import math
import time

import pytest

from fargate_insights import kube_api
from fargate_sim import ManualClock, SimulatedCluster

from .conftest import (
    CLUSTER,
    POD_DIMENSION_SETS,
    POD_UNITS,
    REGION,
    LambdaContext,
    emf_documents,
    pod_documents,
)

DIMENSION_SETS = POD_DIMENSION_SETS
UNITS = POD_UNITS


@pytest.fixture
def sim(request, credentials):
    # Near the real time: a sample timestamp far from the function's clock is (rightly) not trusted.
    clock = ManualClock(float(int(time.time())))
    # Indirect parameter: whether the kubelets honour `name[]` (client_golang >= 1.24) or ignore it.
    name_filter = getattr(request, "param", False)
    cluster = SimulatedCluster(
        cluster_name=CLUSTER, pods=24, seed=11, clock=clock, credentials=credentials, name_filter=name_filter
    )
    with cluster:
        yield cluster


def _invoke(handler_module, capsys) -> tuple[dict, list[str]]:
    summary = handler_module.lambda_handler({}, LambdaContext(timeout_s=30))
    return summary, capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("sim", [False, True], indirect=True, ids=["kubelets-send-all", "kubelets-filter"])
def test_two_invocations_emit_the_contract(sim, describe_cluster_serves, handler_module, capsys):
    describe_cluster_serves(sim)
    first_summary, first_lines = _invoke(handler_module, capsys)
    sim.clock.advance(60.0)
    second_summary, second_lines = _invoke(handler_module, capsys)

    # The collector always asks for its eight families only; kubelets that can, send just those.
    assert sim.stats.filtered_responses == (2 * len(sim.pods) if sim.name_filter else 0)

    assert first_summary["nodes_discovered"] == len(sim.pods)
    assert first_summary["nodes_scraped"] == len(sim.pods)
    assert second_summary["pods_emitted"] == len(sim.pods)
    assert second_summary["nodes_failed"] == 0

    for line in second_lines:
        json.loads(line)  # every line the function writes is JSON (logs and EMF alike)
    documents = {doc["PodName"]: doc for doc in pod_documents(second_lines)}
    assert set(documents) == {pod.name for pod in sim.pods}

    for pod in sim.pods:
        doc = documents[pod.name]
        directive = doc["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "ContainerInsights"
        assert directive["Dimensions"] == DIMENSION_SETS
        for metric in directive["Metrics"]:
            assert metric["Unit"] == UNITS[metric["Name"]]
            assert math.isfinite(doc[metric["Name"]])
        assert doc["ClusterName"] == CLUSTER
        assert doc["LaunchType"] == "fargate"
        assert doc["Namespace"] == pod.namespace
        assert doc["Type"] == "Pod"
        assert doc["NodeName"] == pod.hostname
        assert doc["kubernetes"]["host"] == pod.hostname
        assert doc["kubernetes"]["namespace_name"] == pod.namespace
        assert doc["kubernetes"]["pod_name"] == pod.name
        assert "Version" in doc
        assert abs(doc["_aws"]["Timestamp"] - sim.clock.now() * 1000) <= 60_000

        # Rates: the simulator's counters advanced at these steady rates over the minute.
        assert doc["pod_cpu_usage_total"] == pytest.approx(pod.cpu_cores * 1000, rel=1e-6)
        assert doc["pod_network_rx_bytes"] == pytest.approx(sum(pod.rx_bytes_per_s.values()), rel=1e-6)
        assert doc["pod_network_tx_bytes"] == pytest.approx(sum(pod.tx_bytes_per_s.values()), rel=1e-6)
        assert doc["pod_memory_working_set"] == pod.memory_working_set_bytes
        if pod.cpu_limit_millicores is None:
            assert "pod_cpu_limit" not in doc
            assert "pod_cpu_utilization_over_pod_limit" not in doc
        else:
            assert doc["pod_cpu_limit"] == pytest.approx(pod.cpu_limit_millicores)
            assert doc["pod_cpu_utilization_over_pod_limit"] == pytest.approx(
                pod.cpu_cores * 1000 / pod.cpu_limit_millicores * 100, rel=1e-6
            )
        if pod.memory_limit_bytes is None:
            assert "pod_memory_limit" not in doc
            assert "pod_memory_utilization_over_pod_limit" not in doc
        else:
            assert doc["pod_memory_limit"] == pod.memory_limit_bytes
            assert doc["pod_memory_utilization_over_pod_limit"] == pytest.approx(
                pod.memory_working_set_bytes / pod.memory_limit_bytes * 100, rel=1e-9
            )

    # The first cycle has no previous sample: no rates yet, but memory and limits already.
    first = {doc["PodName"]: doc for doc in pod_documents(first_lines)}
    assert len(first) == len(sim.pods)
    assert all("pod_cpu_usage_total" not in doc for doc in first.values())
    assert all("pod_memory_working_set" in doc for doc in first.values())

    # The mix the simulator generates covers both branches of every "only when" rule.
    assert any(p.cpu_limit_millicores for p in sim.pods) and any(
        p.cpu_limit_millicores is None for p in sim.pods
    )
    assert any(p.memory_limit_bytes for p in sim.pods) and any(p.memory_limit_bytes is None for p in sim.pods)


def test_health_metrics_and_summary_log(sim, describe_cluster_serves, handler_module, capsys):
    describe_cluster_serves(sim)
    _, lines = _invoke(handler_module, capsys)
    health = [
        d for d in emf_documents(lines) if d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "FargateInsights"
    ]
    assert len(health) == 1
    doc = health[0]
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["ClusterName"]]
    assert doc["ClusterName"] == CLUSTER
    assert doc["NodesDiscovered"] == len(sim.pods)
    assert doc["NodesScraped"] == len(sim.pods)
    assert doc["ScrapeFailures"] == 0
    assert doc["PodsEmitted"] == len(sim.pods)
    assert doc["RunDuration"] > 0
    summaries = [json.loads(x) for x in lines if '"run summary"' in x]
    assert len(summaries) == 1
    assert summaries[0]["level"] == "INFO"
    assert summaries[0]["nodes_scraped"] == len(sim.pods)


def test_nodes_are_listed_as_metadata_and_a_full_list_reads_the_same(
    sim, describe_cluster_serves, handler_module, capsys, monkeypatch
):
    describe_cluster_serves(sim)
    summary, _ = _invoke(handler_module, capsys)
    assert summary["nodes_scraped"] == len(sim.pods)
    assert sim.stats.metadata_lists == 1
    kube = handler_module._environment.kube
    as_metadata = kube.list_fargate_nodes(time.monotonic() + 10)
    # An API server that cannot serve metadata lists answers the fallback type: a full NodeList.
    monkeypatch.setattr(kube_api, "NODE_LIST_ACCEPT", "application/json")
    as_nodes = kube.list_fargate_nodes(time.monotonic() + 10)
    assert sim.stats.metadata_lists == 2
    assert as_metadata == as_nodes
    assert sorted(node.name for node in as_nodes) == sorted(pod.node_name for pod in sim.pods)


def test_describe_cluster_is_cached_between_invocations(sim, describe_cluster_serves, handler_module, capsys):
    import boto3

    describe_cluster_serves(sim)
    _invoke(handler_module, capsys)
    boto3.client("eks", region_name=REGION).delete_cluster(name=CLUSTER)
    summary, _ = _invoke(handler_module, capsys)  # a second DescribeCluster would now fail
    assert summary["nodes_scraped"] == len(sim.pods)


def test_pod_recreated_with_same_name_is_a_new_series(sim, describe_cluster_serves, handler_module, capsys):
    describe_cluster_serves(sim)
    _invoke(handler_module, capsys)
    sim.clock.advance(60.0)
    victim = sim.pods[0]
    fresh = sim.recreate_pod(victim.name)
    # A busy new pod whose counter is already above the old pod's: a rate across the two pods' counters
    # would not read as a reset, it would be a (wrong) value.
    old_counter = victim.cpu_seconds_at(sim.clock.now() + 20.0)
    sim.remove_pod(victim.name)
    sim.add_pod(dataclasses.replace(fresh, cpu_cores=2 * old_counter / 20.0 + 1))
    sim.clock.advance(20.0)
    _, lines = _invoke(handler_module, capsys)
    doc = {d["PodName"]: d for d in pod_documents(lines)}[victim.name]
    new_uid = next(p.uid for p in sim.pods if p.name == victim.name)
    assert new_uid != victim.uid
    assert doc["kubernetes"]["pod_id"] == new_uid
    assert "pod_cpu_usage_total" not in doc  # 20 s old: too young for a rate from its start
    # A minute later the new pod has a rate from its own two samples.
    sim.clock.advance(60.0)
    _, lines = _invoke(handler_module, capsys)
    doc = {d["PodName"]: d for d in pod_documents(lines)}[victim.name]
    fresh = next(p for p in sim.pods if p.name == victim.name)
    assert doc["pod_cpu_usage_total"] == pytest.approx(fresh.cpu_cores * 1000, rel=1e-6)


def test_missing_cluster_name_fails_with_a_fix(handler_module, monkeypatch, capsys):
    monkeypatch.delenv("CLUSTER_NAME", raising=False)
    with pytest.raises(Exception, match="CLUSTER_NAME is not set"):
        handler_module.lambda_handler({}, LambdaContext(timeout_s=30))
    errors = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"collection failed"' in x]
    assert errors and errors[0]["level"] == "ERROR"


def test_unknown_cluster_fails_with_a_fix(handler_module, monkeypatch, describe_cluster_serves):
    monkeypatch.setenv("CLUSTER_NAME", "no-such-cluster")
    with pytest.raises(Exception, match=f"not found in region {REGION}"):
        handler_module.lambda_handler({}, LambdaContext(timeout_s=30))
