"""Synthesizes the stack once per configuration (bundling skipped) for every infra test to share.

Each configuration is synthesized the way ``cdk synth`` does it: with cdk.json's feature flags and the
cdk-nag AwsSolutions plugin, into a real cloud assembly directory that cfn-lint can read. A nag finding
that is not acknowledged makes the synthesis itself fail.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")

from aws_cdk import App, Validations
from aws_cdk.assertions import Annotations, Template
from cdk_nag import AwsSolutionsChecks

from fargate_sim.tls import generate
from infra.stack import FargateInsightsStack

REPO = Path(__file__).resolve().parents[2]
CDK_JSON = REPO / "cdk.json"

# Realistic IDs: CDK's CloudFormation validation checks their format.
VPC_ID = "vpc-0123456789abcdef0"
SUBNET_IDS = ("subnet-0123456789abcdef0", "subnet-0fedcba9876543210")
SECURITY_GROUP_ID = "sg-0123456789abcdef0"
TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:oncall"
ENDPOINT = "https://0123456789ABCDEF0123456789ABCDEF.gr7.eu-west-1.eks.amazonaws.com"
# A CA certificate that loads, as the function (and so synthesis) checks: the simulator's throwaway one.
CA_DATA = base64.b64encode(generate()[0].encode()).decode()


@dataclass(frozen=True)
class Synthesized:
    """One synthesized configuration: the objects tests look at."""

    stack: FargateInsightsStack
    template: Template
    template_json: dict[str, Any]
    template_path: Path
    outdir: Path

    @property
    def annotations(self) -> Annotations:
        return Annotations.from_stack(self.stack)

    def resources(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {
            key: value for key, value in self.template_json["Resources"].items() if value["Type"] == cfn_type
        }

    def only(self, cfn_type: str) -> dict[str, Any]:
        found = list(self.resources(cfn_type).values())
        assert len(found) == 1, f"expected one {cfn_type}, found {len(found)}"
        return found[0]["Properties"]


def app_context(bundle: bool = False, **context: object) -> dict[str, object]:
    """cdk.json's context (feature flags) plus the test's, with bundling skipped unless asked for."""
    merged: dict[str, object] = dict(json.loads(CDK_JSON.read_text())["context"])
    if not bundle:
        merged["aws:cdk:bundling-stacks"] = []
    merged.update(context)
    return merged


def synthesize(outdir: Path, bundle: bool = False, **context: object) -> Synthesized:
    """Synthesize the app's stack for the given context, with cdk-nag, into outdir."""
    app = App(context=app_context(bundle, **context), outdir=str(outdir))
    stack = FargateInsightsStack(app, "FargateInsights-test")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    assembly = app.synth()
    artifact = assembly.get_stack_by_name(stack.stack_name)
    template_json: dict[str, Any] = artifact.template
    return Synthesized(
        stack=stack,
        template=Template.from_json(template_json),
        template_json=template_json,
        template_path=outdir / artifact.template_file,
        outdir=outdir,
    )


@pytest.fixture(scope="session")
def default(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """Only the required context: what `make synth CLUSTER=demo` deploys."""
    return synthesize(tmp_path_factory.mktemp("default"), clusterName="demo")


@pytest.fixture(scope="session")
def private(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """A private-endpoint cluster: VPC without a security group, endpoint and CA given, every option on.

    Runs every 10 minutes, so alarm periods that ignore the schedule show.
    """
    return synthesize(
        tmp_path_factory.mktemp("private"),
        clusterName="prod_eu",
        vpcId=VPC_ID,
        subnetIds=",".join(SUBNET_IDS),
        clusterEndpoint=ENDPOINT,
        clusterCaData=CA_DATA,
        logDestination="performance",
        importLogGroup="true",
        alarmTopicArn=TOPIC_ARN,
        noPodsAlarm="true",
        createAccessEntry="false",
        stateStore="false",
        kubernetesGroup="metrics-collectors",
        scheduleMinutes="10",
        timeoutSeconds="100",
        memorySize="1024",
        maxInFlight="16",
        requestTimeout="5",
        logRetentionDays="7",
        scrapeFailureAlarmThreshold="3",
    )


@pytest.fixture(scope="session")
def given_group(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """A VPC with the user's security group (JSON list from cdk.json) and a created performance log group."""
    return synthesize(
        tmp_path_factory.mktemp("given_group"),
        clusterName="demo",
        vpcId=VPC_ID,
        subnetIds=list(SUBNET_IDS),
        securityGroupId=SECURITY_GROUP_ID,
        logDestination="performance",
    )


@pytest.fixture(scope="session")
def all_configs(default: Synthesized, private: Synthesized, given_group: Synthesized) -> list[Synthesized]:
    return [default, private, given_group]
