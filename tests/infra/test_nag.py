"""cdk-nag's AwsSolutions pack passes on every configuration, and every suppression says why.

cdk-nag 3 runs as a CDK policy-validation plugin: an unacknowledged finding makes synthesis raise
(so the fixtures themselves would fail), and the findings are written to validation-report.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match
from cdk_nag import AwsSolutionsChecks

from tests.infra.conftest import Synthesized

# Each acknowledgment the construct makes: rule id prefix -> where it may appear.
EXPECTED_ACKNOWLEDGMENTS = {
    "AwsSolutions::AwsSolutions-S1": "StateBucket",
    "AwsSolutions::AwsSolutions-L1": "Function",
    "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:": "Role",
    "AwsSolutions::AwsSolutions-IAM5[Resource::*]": "Role",
    "Annotation::@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones": "Vpc",
    "Annotation::@aws-cdk/aws-ec2:noSubnetRouteTableId": "Subnet",
}


def _acknowledgments(synth: Synthesized) -> list[tuple[str, str, str]]:
    """(construct path, rule id, reason) of every acknowledgment in the stack."""
    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    found: list[tuple[str, str, str]] = []
    for construct in synth.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == key:
                for rule_id, reason in dict(entry.data).items():
                    found.append((construct.node.path, rule_id, reason))
    return found


def test_no_unacknowledged_findings_in_the_validation_report(all_configs: list[Synthesized]) -> None:
    for synth in all_configs:
        report = json.loads((synth.outdir / "validation-report.json").read_text())
        violations = [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])]
        assert violations == [], json.dumps(violations, indent=1)[:3000]


def test_no_awssolutions_errors_or_warnings_annotated(all_configs: list[Synthesized]) -> None:
    for synth in all_configs:
        annotations = synth.annotations
        nag = Match.string_like_regexp("AwsSolutions-.*")
        assert annotations.find_error("*", nag) == []
        assert annotations.find_warning("*", nag) == []
        # Nor any other warning: `cdk synth --strict` must pass too.
        assert annotations.find_warning("*", Match.any_value()) == []
        assert annotations.find_error("*", Match.any_value()) == []


def test_every_acknowledgment_is_expected_and_has_a_real_reason(all_configs: list[Synthesized]) -> None:
    seen: set[str] = set()
    for synth in all_configs:
        for path, rule_id, reason in _acknowledgments(synth):
            matches = [prefix for prefix in EXPECTED_ACKNOWLEDGMENTS if rule_id.startswith(prefix)]
            assert matches, f"unexpected acknowledgment {rule_id} at {path}"
            assert EXPECTED_ACKNOWLEDGMENTS[matches[0]] in path, (rule_id, path)
            assert len(reason) >= 60, f"{rule_id} at {path}: the reason must explain, got {reason!r}"
            seen.add(matches[0])
    assert seen == set(EXPECTED_ACKNOWLEDGMENTS)


def test_wildcard_acknowledgments_name_the_exact_resource(all_configs: list[Synthesized]) -> None:
    """IAM5 is acknowledged per resource, never for a whole rule: the log streams of one log group only."""
    for synth in all_configs:
        for _, rule_id, _ in _acknowledgments(synth):
            if "IAM5" in rule_id and "logs:" in rule_id:
                assert rule_id.endswith(("/aws/lambda/fargate-insights-demo:*]", "/performance:*]")), rule_id
            if rule_id.endswith("IAM5[Resource::*]"):
                assert synth.resources("AWS::EC2::SecurityGroup") or "VpcConfig" in synth.only(
                    "AWS::Lambda::Function"
                )


def test_the_nag_plugin_does_fail_synthesis(tmp_path: Path) -> None:
    """A control: the same plugin set-up rejects a bucket without TLS enforcement or access logs."""
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Control")
    s3.Bucket(stack, "Plain")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for plugin in report["pluginReports"] for v in plugin["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules
