"""Context parsing and validation: mistakes fail synthesis with a message that says how to fix them."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from typing import Any, cast

import pytest
from aws_cdk import App
from constructs import Node

from infra.settings import (
    CONTEXT_KEYS,
    MISSING_CLUSTER_MESSAGE,
    CollectorSettings,
    SettingsError,
    check_context_keys,
)
from infra.stack import FargateInsightsStack, stack_name_for
from tests.infra.conftest import CA_DATA, ENDPOINT, REPO, app_context

# What the CDK CLI (2.1148) adds to the app's context besides cdk.json's and the -c values.
CLI_CONTEXT = {
    "aws:cdk:bundling-stacks": ["**"],
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:version-reporting": True,
}


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
        (
            {"clusterEndpoint": "http://x", "clusterCaData": CA_DATA},
            "clusterEndpoint='http://x' is not an https",
        ),
        ({"clusterEndpoint": "https://", "clusterCaData": CA_DATA}, "is not an https URL"),
        (
            {"clusterEndpoint": "https://x.eks.amazonaws.com:port", "clusterCaData": CA_DATA},
            "not an https URL",
        ),
        ({"clusterEndpoint": ENDPOINT, "clusterCaData": "abc"}, "clusterCaData is not valid base64"),
        (
            {"clusterEndpoint": ENDPOINT, "clusterCaData": base64.b64encode(b"not a cert").decode()},
            "clusterCaData does not decode to a PEM certificate",
        ),
        (  # the PEM header alone: base64 of it passes a prefix check, but no certificate loads
            {"clusterEndpoint": ENDPOINT, "clusterCaData": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="},
            "clusterCaData does not decode to a PEM certificate",
        ),
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


def test_endpoint_and_ca_the_function_accepts() -> None:
    s = _from(clusterName="c", clusterEndpoint=ENDPOINT, clusterCaData=CA_DATA)
    assert (s.cluster_endpoint, s.cluster_ca_data) == (ENDPOINT, CA_DATA)


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("vpcID", "vpcId"),
        ("clustername", "clusterName"),
        ("timeout", "timeoutSeconds"),
        ("subnetId", "subnetIds"),
        ("noPodAlarm", "noPodsAlarm"),
    ],
)
def test_misspelled_context_key_fails_with_the_closest_key(key: str, suggestion: str) -> None:
    context = {"clusterName": "c", "vpcId": "vpc-1", "subnetIds": "subnet-a", key: "x"}
    with pytest.raises(SettingsError, match=f"unknown context key '{key}': did you mean '{suggestion}'"):
        _from(**context)


def test_misspelled_key_is_named_even_without_the_cluster_name() -> None:
    with pytest.raises(SettingsError, match="did you mean 'clusterName'"):
        _from(clustername="demo")


def test_unknown_key_without_a_close_one_lists_the_known_keys() -> None:
    with pytest.raises(SettingsError, match="unknown context key 'banana': known keys: clusterName, "):
        _from(clusterName="c", banana="yes")


def test_stack_rejects_a_misspelled_key_in_the_apps_context() -> None:
    app = App(context=app_context(clusterName="demo", vpcID="vpc-1"))
    with pytest.raises(SettingsError, match="did you mean 'vpcId'"):
        FargateInsightsStack(app, "FargateInsights-test")


def test_cdk_keys_and_other_shapes_are_not_ours() -> None:
    context = app_context(clusterName="demo") | CLI_CONTEXT
    context |= {"acknowledged-issue-numbers": [1], "Owner": "x", "my/key": 1, "vpc-id": "x"}
    check_context_keys(context)
    assert _from(**context) == CollectorSettings(cluster_name="demo")


def test_context_keys_are_exactly_the_keys_read() -> None:
    class Recorder:
        """A node that records every key read and has only the cluster name set."""

        def __init__(self) -> None:
            self.read: list[str] = []

        def get_all_context(self) -> dict[str, Any]:
            return {"clusterName": "c"}

        def try_get_context(self, key: str) -> Any:
            self.read.append(key)
            return "c" if key == "clusterName" else None

    node = Recorder()
    CollectorSettings.from_context(cast(Node, node))
    assert sorted(set(node.read)) == sorted(CONTEXT_KEYS)
