"""Fixtures for end-to-end runs: fake AWS credentials, moto's EKS, and a fresh handler module state."""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from fargate_sim.tls import generate, server_context

from .tls_servers import Handler, RawTlsServer, TlsServer

CLUSTER = "e2e"
REGION = "us-west-2"
# moto's mock_aws() replaces the environment's keys with these; the simulator must verify the same ones.
ACCESS_KEY = "FOOBARKEY"
SECRET_KEY = "FOOBARSECRET"


class LambdaContext:
    """The parts of Lambda's context object that the handler and Powertools read."""

    def __init__(self, timeout_s: float = 30.0) -> None:
        self._deadline = time.monotonic() + timeout_s
        self.function_name = "fargate-insights-test"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:fargate-insights-test"
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _unwrap(value: object) -> object:
    """Powertools writes each metric value as a one-element list; compare with the number itself."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def emf_documents(lines: list[str]) -> list[dict]:
    documents = [json.loads(line) for line in lines if line.startswith("{") and '"_aws"' in line]
    for doc in documents:
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                doc[metric["Name"]] = _unwrap(doc[metric["Name"]])
    return documents


def pod_documents(lines: list[str]) -> list[dict]:
    return [
        doc
        for doc in emf_documents(lines)
        if doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ContainerInsights"
    ]


@pytest.fixture
def credentials(monkeypatch) -> tuple[str, str]:
    """Fake keys: boto3 signs the EKS token with them and the simulator verifies that signature."""
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "CLUSTER_ENDPOINT",
        "CLUSTER_CA_DATA",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("CLUSTER_NAME", CLUSTER)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "fargate-insights")
    return ACCESS_KEY, SECRET_KEY


class _CurrentStdout:
    """Whatever sys.stdout is at the time of writing (pytest swaps it between setup and call)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def handler_module(credentials, capsys) -> Iterator[object]:
    """The handler module with no execution-environment state left from another test.

    Powertools' Logger keeps the stdout it saw when the module was imported; point it at this test's
    captured stdout, as Lambda's stdout is the one stream for both logs and EMF.
    """
    from fargate_insights import handler

    log_handler = handler.logger.registered_handler
    stream = log_handler.stream
    log_handler.stream = _CurrentStdout()  # not setStream(): that flushes the old stream, maybe closed now
    handler._environment = None
    yield handler
    log_handler.stream = stream
    if handler._environment is not None:
        handler._environment.kube.close()
    handler._environment = None


@pytest.fixture
def describe_cluster_serves(credentials):
    """moto serves eks:DescribeCluster; the cluster's endpoint and CA are the simulator's."""
    from moto import mock_aws

    with mock_aws():
        import boto3
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.eks.models import eks_backends

        def serve(sim) -> None:
            boto3.client("eks", region_name=REGION).create_cluster(
                name=CLUSTER,
                roleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/eks",
                resourcesVpcConfig={"subnetIds": ["subnet-1"]},
            )
            # moto makes up an endpoint and CA; point them at the simulator.
            cluster = eks_backends[DEFAULT_ACCOUNT_ID][REGION].clusters[CLUSTER]
            cluster.endpoint = sim.endpoint
            cluster.certificate_authority = {"data": sim.ca_data}

        yield serve


@pytest.fixture
def use_cluster(credentials, monkeypatch):
    """Point the function at a simulator through CLUSTER_ENDPOINT/CLUSTER_CA_DATA (no DescribeCluster)."""

    def use(sim, ca_data: str | None = None) -> None:
        monkeypatch.setenv("CLUSTER_ENDPOINT", sim.endpoint)
        monkeypatch.setenv("CLUSTER_CA_DATA", ca_data if ca_data is not None else sim.ca_data)

    return use


def invoke(handler_module, capsys, timeout_s: float = 30.0) -> tuple[dict, list[str]]:
    """One Lambda invocation: the summary it returned and every line it wrote to stdout."""
    summary = handler_module.lambda_handler({}, LambdaContext(timeout_s=timeout_s))
    return summary, capsys.readouterr().out.splitlines()


def health_document(lines: list[str]) -> dict:
    """The function's own health-metrics document (exactly one per invocation)."""
    documents = [
        doc
        for doc in emf_documents(lines)
        if doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "FargateInsights"
    ]
    assert len(documents) == 1, documents
    return documents[0]


POD_DIMENSION_SETS = [
    ["ClusterName", "LaunchType"],
    ["ClusterName", "Namespace", "LaunchType"],
    ["ClusterName", "Namespace", "PodName", "LaunchType"],
]
POD_UNITS = {
    "pod_cpu_usage_total": "None",
    "pod_cpu_limit": "None",
    "pod_cpu_utilization_over_pod_limit": "Percent",
    "pod_memory_working_set": "Bytes",
    "pod_memory_limit": "Bytes",
    "pod_memory_utilization_over_pod_limit": "Percent",
    "pod_network_rx_bytes": "Bytes/Second",
    "pod_network_tx_bytes": "Bytes/Second",
}


def check_pod_document(doc: dict, pod, rates: bool = True, born: bool = False) -> None:
    """A pod document follows the contract and every value in it is what the simulated pod did.

    `rates`: the CPU and network rates must be there (the pod had a sample one cycle earlier).
    `born`: the pod started since the previous run and this is its first sample: its CPU rate is
    counted from its start time, which cAdvisor prints in whole seconds (the collector takes the middle
    of that second and waits until the pod is 30 s old, so the rate is within 1.7%), and it has no
    network rate.
    """
    import math

    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "ContainerInsights"
    assert directive["Dimensions"] == POD_DIMENSION_SETS
    assert directive["Metrics"], doc
    for metric in directive["Metrics"]:
        assert metric["Unit"] == POD_UNITS[metric["Name"]]
        assert math.isfinite(doc[metric["Name"]]) and doc[metric["Name"]] >= 0, metric
    assert doc["ClusterName"] == CLUSTER
    assert doc["LaunchType"] == "fargate"
    assert doc["Type"] == "Pod"
    assert doc["Namespace"] == pod.namespace
    assert doc["PodName"] == pod.name
    assert doc["NodeName"] == pod.hostname
    assert doc["kubernetes"]["host"] == pod.hostname
    assert doc["kubernetes"]["namespace_name"] == pod.namespace
    assert doc["kubernetes"]["pod_name"] == pod.name
    assert doc["kubernetes"]["pod_id"] == pod.uid
    assert doc["pod_memory_working_set"] == pod.memory_working_set_bytes
    if born:
        assert "pod_cpu_usage_total" in doc, pod.name
        assert "pod_network_rx_bytes" not in doc and "pod_network_tx_bytes" not in doc, pod.name
        # the documented bound: half a second over an age of at least 30 s
        assert doc["pod_cpu_usage_total"] == pytest.approx(pod.cpu_cores * 1000, rel=0.5 / 29.5)
    elif rates:
        for name in ("pod_cpu_usage_total", "pod_network_rx_bytes", "pod_network_tx_bytes"):
            assert name in doc, (pod.name, name)
    if "pod_cpu_usage_total" in doc and not born:
        assert doc["pod_cpu_usage_total"] == pytest.approx(pod.cpu_cores * 1000, rel=1e-6)
    if "pod_network_rx_bytes" in doc:
        assert doc["pod_network_rx_bytes"] == pytest.approx(sum(pod.rx_bytes_per_s.values()), rel=1e-6)
    if "pod_network_tx_bytes" in doc:
        assert doc["pod_network_tx_bytes"] == pytest.approx(sum(pod.tx_bytes_per_s.values()), rel=1e-6)


# -- TLS servers for the transport tests ------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[tuple[TlsServer, str]]:
    ca, chain, key = generate()
    srv = TlsServer(("127.0.0.1", 0), Handler)
    srv.tls = server_context(chain, key)  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv, ca
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def raw() -> Iterator[RawTlsServer]:
    server = RawTlsServer()
    yield server
    server.stop()
