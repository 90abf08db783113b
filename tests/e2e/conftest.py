"""Fixtures for end-to-end runs: fake AWS credentials, moto's EKS, and a fresh handler module state."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

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
