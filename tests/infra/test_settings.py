"""Context parsing and validation: mistakes fail synthesis with a message that says how to fix them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from aws_cdk import App

from infra.settings import MISSING_CLUSTER_MESSAGE, CollectorSettings, SettingsError
from infra.stack import stack_name_for
from tests.infra.conftest import REPO


def _from(**context: object) -> CollectorSettings:
    return CollectorSettings.from_context(App(context=context).node)


def test_defaults() -> None:
    s = _from(clusterName="demo")
    assert s == CollectorSettings(cluster_name="demo")
    assert (s.schedule_minutes, s.memory_size, s.timeout_seconds) == (1, 1024, 50)
    assert (s.max_in_flight, s.request_timeout_seconds, s.log_retention_days) == (64, 10, 30)
    assert (s.log_destination, s.kubernetes_group, s.create_access_entry, s.state_store) == (
        "function",
        "fargate-insights",
        True,
        True,
    )
    assert s.alarm_topic_arn is None and s.vpc_id is None and s.cluster_endpoint is None
    assert (s.scrape_failure_alarm_threshold, s.no_pods_alarm, s.import_log_group) == (0, False, False)
    assert s.state_key == "state/demo.json"
    assert s.log_group_name == "/aws/lambda/fargate-insights-demo"


@pytest.mark.parametrize("context", [{}, {"clusterName": ""}, {"clusterName": "  "}])
def test_missing_cluster_name_says_how_to_pass_it(context: dict[str, object]) -> None:
    with pytest.raises(SettingsError) as err:
        _from(**context)
    assert "make deploy CLUSTER=<name>" in str(err.value)
    assert "-c clusterName=<name>" in str(err.value)


def test_app_without_cluster_name_fails_with_the_message() -> None:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1", "CDK_CONTEXT_JSON": "{}"}
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert MISSING_CLUSTER_MESSAGE in result.stderr


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("subnet-a,subnet-b", ("subnet-a", "subnet-b")),
        (" subnet-a , subnet-b ,", ("subnet-a", "subnet-b")),
        ('["subnet-a","subnet-b"]', ("subnet-a", "subnet-b")),
        (["subnet-a", "subnet-b"], ("subnet-a", "subnet-b")),
    ],
)
def test_subnet_lists(value: object, expected: tuple[str, ...]) -> None:
    assert _from(clusterName="c", vpcId="vpc-1", subnetIds=value).subnet_ids == expected


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("False", False), (False, False), ("1", True)]
)
def test_booleans(value: object, expected: bool) -> None:
    assert _from(clusterName="c", createAccessEntry=value).create_access_entry is expected


def test_numbers_from_strings_and_json() -> None:
    s = _from(clusterName="c", memorySize="1024", timeoutSeconds=100, scheduleMinutes="2", logRetentionDays=7)
    assert (s.memory_size, s.timeout_seconds, s.schedule_minutes, s.log_retention_days) == (1024, 100, 2, 7)


@pytest.mark.parametrize(
    ("context", "fragment"),
    [
        ({"timeoutSeconds": "60"}, "below the schedule period"),
        ({"timeoutSeconds": "119", "scheduleMinutes": "1"}, "below the schedule period"),
        ({"requestTimeout": "50"}, "must be below timeoutSeconds"),
        ({"memorySize": "64"}, "between 128 and 10240"),
        ({"memorySize": "lots"}, "expected a whole number"),
        ({"logRetentionDays": "10"}, "CloudWatch accepts"),
        ({"logDestination": "s3"}, "logDestination"),
        ({"importLogGroup": "true"}, "only applies with logDestination=performance"),
        ({"clusterEndpoint": "https://x.eks.amazonaws.com"}, "go together"),
        ({"clusterCaData": "abc"}, "go together"),
        ({"clusterEndpoint": "http://x", "clusterCaData": "abc"}, "https://"),
        ({"subnetIds": "subnet-a"}, "need vpcId"),
        ({"vpcId": "vpc-1"}, "needs subnetIds"),
        ({"kubernetesGroup": "system:masters"}, "kubernetesGroup"),
        ({"createAccessEntry": "maybe"}, "expected true or false"),
        ({"clusterName": "bad name!"}, "not a valid EKS cluster name"),
    ],
)
def test_invalid_context_fails_with_a_fix(context: dict[str, object], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment.replace("(", r"\(")):
        _from(**{"clusterName": "c", **context})


def test_stack_name_is_valid_for_any_cluster_name() -> None:
    assert stack_name_for("prod_eu-1") == "FargateInsights-prod-eu-1"
