"""The synthesized template has every property the issue asks for, in each configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra import bundling
from infra.collector import HANDLER, POD_METRICS
from infra.names import LAMBDA_SRC, names
from tests.infra.conftest import (
    CA_DATA,
    ENDPOINT,
    SECURITY_GROUP_ID,
    SUBNET_IDS,
    TOPIC_ARN,
    VPC_ID,
    Synthesized,
    synthesize,
)


def _arn(service: str, rest: str) -> dict[str, Any]:
    """How CDK renders an ARN of this stack's partition, region and account."""
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                f":{service}:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":{rest}",
            ],
        ]
    }


def _statements(synth: Synthesized) -> list[dict[str, Any]]:
    """Every IAM statement of the stack, whatever resource holds it."""
    found: list[dict[str, Any]] = []
    for role in synth.resources("AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            found.extend(policy["PolicyDocument"]["Statement"])
    for policy in synth.resources("AWS::IAM::Policy").values():
        found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# The function ---------------------------------------------------------------------------------------


def test_function_runtime_architecture_and_limits(default: Synthesized) -> None:
    fn = default.only("AWS::Lambda::Function")
    assert fn["Runtime"] == "python3.13"
    assert fn["Architectures"] == ["arm64"]
    assert fn["Handler"] == HANDLER == "fargate_insights.handler.lambda_handler"
    assert fn["MemorySize"] == 1024
    assert fn["Timeout"] == 50
    assert fn["ReservedConcurrentExecutions"] == 1
    assert "VpcConfig" not in fn


def test_single_run_can_be_turned_off_for_accounts_that_cannot_reserve_concurrency(tmp_path: Path) -> None:
    """A new account's concurrency quota is 10, all of which Lambda keeps unreserved: reserving 1 fails."""
    synth = synthesize(tmp_path, clusterName="demo", singleRun="false")
    assert "ReservedConcurrentExecutions" not in synth.only("AWS::Lambda::Function")


def test_code_asset_changes_with_what_the_build_reads(
    default: Synthesized, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CDK's default hash covers lambda_src only: a change to the build (infra/bundling.py, the pins)
    # must give a new S3 key too, or the old package stays deployed.
    real = bundling.package_hash
    hashed: list[Path] = []

    def changed_build(source_dir: Path) -> str:
        hashed.append(source_dir)
        return real(source_dir) + "-changed"

    monkeypatch.setattr("infra.collector.package_hash", changed_build)
    before = default.only("AWS::Lambda::Function")["Code"]["S3Key"]
    after = synthesize(tmp_path, clusterName="demo").only("AWS::Lambda::Function")["Code"]["S3Key"]
    assert hashed == [LAMBDA_SRC]
    assert after != before


def test_function_logging_keeps_emf_lines(default: Synthesized) -> None:
    logging = default.only("AWS::Lambda::Function")["LoggingConfig"]
    assert logging["LogFormat"] == "JSON"
    assert logging["ApplicationLogLevel"] == "INFO"
    assert logging["SystemLogLevel"] == "WARN"
    group_id = next(iter(default.resources("AWS::Logs::LogGroup")))
    assert logging["LogGroup"] == {"Ref": group_id}


def test_async_invocations_are_never_retried_or_late(default: Synthesized) -> None:
    config = default.only("AWS::Lambda::EventInvokeConfig")
    assert config["MaximumRetryAttempts"] == 0
    assert config["MaximumEventAgeInSeconds"] == 60
    assert config["Qualifier"] == "$LATEST"


def test_function_environment_defaults(default: Synthesized) -> None:
    env = default.only("AWS::Lambda::Function")["Environment"]["Variables"]
    bucket_id = next(iter(default.resources("AWS::S3::Bucket")))
    assert env == {
        names.ENV_CLUSTER_NAME: "demo",
        names.ENV_MAX_IN_FLIGHT: "64",
        names.ENV_REQUEST_TIMEOUT: "10",
        names.ENV_STATE_BUCKET: {"Ref": bucket_id},
        names.ENV_STATE_KEY: "state/demo.json",
        "POWERTOOLS_SERVICE_NAME": "fargate-insights",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_function_environment_from_context(private: Synthesized) -> None:
    fn = private.only("AWS::Lambda::Function")
    assert fn["MemorySize"] == 1024
    assert fn["Timeout"] == 100
    env = fn["Environment"]["Variables"]
    assert env[names.ENV_CLUSTER_NAME] == "prod_eu"
    assert env[names.ENV_CLUSTER_ENDPOINT] == ENDPOINT
    assert env[names.ENV_CLUSTER_CA_DATA] == CA_DATA
    assert env[names.ENV_MAX_IN_FLIGHT] == "16"
    assert env[names.ENV_REQUEST_TIMEOUT] == "5"
    assert names.ENV_STATE_BUCKET not in env
    assert names.ENV_STATE_KEY not in env


def test_log_group_is_the_functions_own_with_retention(default: Synthesized) -> None:
    (group,) = default.resources("AWS::Logs::LogGroup").values()
    assert group["Properties"] == {"LogGroupName": "/aws/lambda/fargate-insights-demo", "RetentionInDays": 30}


def test_performance_log_group_created_and_retained(given_group: Synthesized) -> None:
    (group,) = given_group.resources("AWS::Logs::LogGroup").values()
    assert group["Properties"]["LogGroupName"] == "/aws/containerinsights/demo/performance"
    assert group["DeletionPolicy"] == "Retain"


def test_performance_log_group_imported(private: Synthesized) -> None:
    assert private.resources("AWS::Logs::LogGroup") == {}
    logging = private.only("AWS::Lambda::Function")["LoggingConfig"]
    assert logging["LogGroup"] == "/aws/containerinsights/prod_eu/performance"


# The schedule ---------------------------------------------------------------------------------------


def test_schedule_every_minute_without_retries(default: Synthesized) -> None:
    rule = default.only("AWS::Events::Rule")
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    assert rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    fn_id = next(iter(default.resources("AWS::Lambda::Function")))
    assert target["Arn"] == {"Fn::GetAtt": [fn_id, "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}
    default.template.has_resource_properties(
        "AWS::Lambda::Permission",
        {"Action": "lambda:InvokeFunction", "Principal": "events.amazonaws.com"},
    )


def test_schedule_period_from_context(private: Synthesized) -> None:
    assert private.only("AWS::Events::Rule")["ScheduleExpression"] == "rate(10 minutes)"


# Least privilege ------------------------------------------------------------------------------------


def test_role_is_dedicated_without_managed_policies(all_configs: list[Synthesized]) -> None:
    for synth in all_configs:
        (role,) = synth.resources("AWS::IAM::Role").values()
        props = role["Properties"]
        assert "ManagedPolicyArns" not in props
        assert props["AssumeRolePolicyDocument"]["Statement"] == [
            {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
        ]
        assert synth.resources("AWS::IAM::ManagedPolicy") == {}
        fn = synth.only("AWS::Lambda::Function")
        assert fn["Role"] == {"Fn::GetAtt": [next(iter(synth.resources("AWS::IAM::Role"))), "Arn"]}


def test_default_statements_exactly(default: Synthesized) -> None:
    bucket_id = next(iter(default.resources("AWS::S3::Bucket")))
    log_group = "log-group:/aws/lambda/fargate-insights-demo"
    by_actions = {tuple(sorted(_as_list(s["Action"]))): s for s in _statements(default)}
    assert set(by_actions) == {
        ("logs:CreateLogStream", "logs:PutLogEvents"),
        ("eks:DescribeCluster",),
        ("s3:GetObject", "s3:PutObject"),
        ("s3:ListBucket",),
    }
    for actions, statement in by_actions.items():
        assert statement["Effect"] == "Allow"
        assert ("Condition" in statement) == (actions == ("s3:ListBucket",))
    logs = by_actions[("logs:CreateLogStream", "logs:PutLogEvents")]
    assert logs["Resource"] == [_arn("logs", log_group), _arn("logs", f"{log_group}:*")]
    assert by_actions[("eks:DescribeCluster",)]["Resource"] == _arn("eks", "cluster/demo")
    assert by_actions[("s3:GetObject", "s3:PutObject")]["Resource"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/state/demo.json"]]
    }
    # So that a missing state object (the first run) is a 404, not a 403: only the state key is listed.
    listing = by_actions[("s3:ListBucket",)]
    assert listing["Resource"] == {"Fn::GetAtt": [bucket_id, "Arn"]}
    assert listing["Condition"] == {"StringEquals": {"s3:prefix": "state/demo.json"}}


def test_no_describe_cluster_when_endpoint_given_and_vpc_eni_permissions(private: Synthesized) -> None:
    by_actions = {tuple(sorted(_as_list(s["Action"]))): s for s in _statements(private)}
    assert set(by_actions) == {
        ("logs:CreateLogStream", "logs:PutLogEvents"),
        (
            "ec2:AssignPrivateIpAddresses",
            "ec2:CreateNetworkInterface",
            "ec2:DeleteNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:UnassignPrivateIpAddresses",
        ),
    }
    logs = by_actions[("logs:CreateLogStream", "logs:PutLogEvents")]
    group = "log-group:/aws/containerinsights/prod_eu/performance"
    assert logs["Resource"] == [_arn("logs", group), _arn("logs", f"{group}:*")]
    text = json.dumps(_statements(private))
    assert "eks:" not in text and "s3:" not in text


def test_only_eni_actions_use_a_wildcard_resource(all_configs: list[Synthesized]) -> None:
    for synth in all_configs:
        for statement in _statements(synth):
            actions = _as_list(statement["Action"])
            assert all("*" not in action for action in actions), actions
            if "*" in _as_list(statement["Resource"]):
                assert all(action.startswith("ec2:") for action in actions), actions


def test_access_entry_maps_role_to_group(default: Synthesized) -> None:
    entry = default.only("AWS::EKS::AccessEntry")
    role_id = next(iter(default.resources("AWS::IAM::Role")))
    assert entry == {
        "ClusterName": "demo",
        "PrincipalArn": {"Fn::GetAtt": [role_id, "Arn"]},
        "KubernetesGroups": ["fargate-insights"],
        "Type": "STANDARD",
    }


def test_no_access_entry_for_config_map_clusters(private: Synthesized) -> None:
    assert private.resources("AWS::EKS::AccessEntry") == {}
    outputs = private.template_json["Outputs"]
    (aws_auth,) = [o for key, o in outputs.items() if "AwsAuthCommand" in key]
    role_id = next(iter(private.resources("AWS::IAM::Role")))
    parts = aws_auth["Value"]["Fn::Join"][1]
    assert parts[0] == "eksctl create iamidentitymapping --cluster prod_eu --region "
    assert {"Fn::GetAtt": [role_id, "Arn"]} in parts
    assert parts[-1] == " --group metrics-collectors --username fargate-insights"


def test_outputs_role_arn_and_rbac_command(default: Synthesized, private: Synthesized) -> None:
    outputs = default.template_json["Outputs"]
    values = {key: output["Value"] for key, output in outputs.items()}
    role_id = next(iter(default.resources("AWS::IAM::Role")))
    assert {"Fn::GetAtt": [role_id, "Arn"]} in values.values()
    assert "kubectl apply -f infra/rbac.yaml" in values.values()
    assert not any("AwsAuthCommand" in key for key in outputs)
    custom = [o["Value"] for k, o in private.template_json["Outputs"].items() if "RbacCommand" in k]
    assert custom == [
        "sed 's/^    name: fargate-insights$/    name: metrics-collectors/' infra/rbac.yaml | kubectl apply -f -"
    ]


# State store ----------------------------------------------------------------------------------------


def test_the_retained_state_bucket_is_an_output(default: Synthesized, private: Synthesized) -> None:
    """Its name is what a user needs to delete it after the stack (the bucket is retained)."""
    (bucket_id,) = default.resources("AWS::S3::Bucket")
    outputs = default.template_json["Outputs"]
    assert [o["Value"] for k, o in outputs.items() if "StateBucketName" in k] == [{"Ref": bucket_id}]
    assert not any("StateBucketName" in key for key in private.template_json["Outputs"])  # stateStore=false


def test_state_bucket_is_private_encrypted_and_tls_only(default: Synthesized) -> None:
    (bucket,) = default.resources("AWS::S3::Bucket").values()
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert "VersioningConfiguration" not in props
    assert bucket["DeletionPolicy"] == "Retain"
    policy = default.only("AWS::S3::BucketPolicy")["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy
    )


def test_no_state_bucket_when_disabled(private: Synthesized) -> None:
    assert private.resources("AWS::S3::Bucket") == {}


# VPC ------------------------------------------------------------------------------------------------


def test_vpc_config_with_created_security_group(private: Synthesized) -> None:
    vpc_config = private.only("AWS::Lambda::Function")["VpcConfig"]
    assert vpc_config["SubnetIds"] == list(SUBNET_IDS)
    (group_id,) = private.resources("AWS::EC2::SecurityGroup")
    assert vpc_config["SecurityGroupIds"] == [{"Fn::GetAtt": [group_id, "GroupId"]}]
    group = private.only("AWS::EC2::SecurityGroup")
    assert group["VpcId"] == VPC_ID
    assert group["SecurityGroupEgress"] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "HTTPS to the EKS API and AWS APIs",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]
    assert "SecurityGroupIngress" not in group
    assert private.resources("AWS::EC2::SecurityGroupIngress") == {}


def test_vpc_config_with_given_security_group(given_group: Synthesized) -> None:
    vpc_config = given_group.only("AWS::Lambda::Function")["VpcConfig"]
    assert vpc_config == {"SubnetIds": list(SUBNET_IDS), "SecurityGroupIds": [SECURITY_GROUP_ID]}
    assert given_group.resources("AWS::EC2::SecurityGroup") == {}
    assert given_group.resources("AWS::EC2::SecurityGroupEgress") == {}


def test_created_security_group_is_an_output(
    private: Synthesized, given_group: Synthesized, default: Synthesized
) -> None:
    (group_id,) = private.resources("AWS::EC2::SecurityGroup")
    (output,) = [o for key, o in private.template_json["Outputs"].items() if "SecurityGroupId" in key]
    assert output["Value"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    assert output["Description"] == "Allow TCP 443 from this group on the cluster security group"
    for synth in (given_group, default):  # the user's own group, or no VPC: nothing to print
        assert not any("SecurityGroupId" in key for key in synth.template_json["Outputs"])


# Operations -----------------------------------------------------------------------------------------


def _alarms(synth: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        props["MetricName"]: props
        for props in (a["Properties"] for a in synth.resources("AWS::CloudWatch::Alarm").values())
    }


DEFAULT_ALARM_METRICS = {
    "Errors",
    names.METRIC_SCRAPE_FAILURES,
    "Duration",
    names.METRIC_RUN_DURATION,
    "AsyncEventsDropped",
}


def test_alarms(default: Synthesized) -> None:
    alarms = _alarms(default)
    assert set(alarms) == DEFAULT_ALARM_METRICS
    fn_ref = {"Ref": next(iter(default.resources("AWS::Lambda::Function")))}

    errors = alarms["Errors"]
    assert errors["Namespace"] == "AWS/Lambda"
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": fn_ref}]
    assert (errors["Statistic"], errors["Period"], errors["Threshold"]) == ("Sum", 60, 1)
    assert errors["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert (errors["DatapointsToAlarm"], errors["EvaluationPeriods"]) == (3, 5)

    failures = alarms[names.METRIC_SCRAPE_FAILURES]
    assert failures["Namespace"] == names.HEALTH_NAMESPACE == "FargateInsights"
    assert failures["Dimensions"] == [{"Name": names.HEALTH_DIMENSION, "Value": "demo"}]
    assert (failures["Statistic"], failures["Period"], failures["Threshold"]) == ("Sum", 60, 0)
    assert failures["ComparisonOperator"] == "GreaterThanThreshold"
    assert (failures["DatapointsToAlarm"], failures["EvaluationPeriods"]) == (5, 5)
    assert failures["TreatMissingData"] == "notBreaching"

    duration = alarms["Duration"]
    assert duration["Dimensions"] == [{"Name": "FunctionName", "Value": fn_ref}]
    assert duration["Statistic"] == "Maximum"
    assert duration["Threshold"] == 40_000  # 80 % of the 50 s timeout, in milliseconds
    assert duration["ComparisonOperator"] == "GreaterThanThreshold"

    for alarm in alarms.values():
        assert "AlarmActions" not in alarm
        assert "minute" not in alarm["AlarmDescription"]


def test_not_reporting_alarm_fires_when_runs_or_their_metrics_stop(default: Synthesized) -> None:
    alarm = _alarms(default)[names.METRIC_RUN_DURATION]
    assert alarm["Namespace"] == names.HEALTH_NAMESPACE
    assert alarm["Dimensions"] == [{"Name": names.HEALTH_DIMENSION, "Value": "demo"}]
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("SampleCount", 60, 1)
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert (alarm["DatapointsToAlarm"], alarm["EvaluationPeriods"]) == (5, 5)
    assert alarm["TreatMissingData"] == "breaching"  # no run at all writes no data point
    description = alarm["AlarmDescription"]
    assert "schedule rule is enabled" in description
    assert "Invocations and Errors" in description
    assert "/aws/lambda/fargate-insights-demo" in description


def test_async_events_dropped_alarm(default: Synthesized) -> None:
    alarm = _alarms(default)["AsyncEventsDropped"]
    fn_ref = {"Ref": next(iter(default.resources("AWS::Lambda::Function")))}
    assert alarm["Namespace"] == "AWS/Lambda"
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": fn_ref}]
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Sum", 60, 1)
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert (alarm["DatapointsToAlarm"], alarm["EvaluationPeriods"]) == (3, 5)
    assert alarm["TreatMissingData"] == "notBreaching"


def test_alarm_periods_are_the_schedule_interval(private: Synthesized) -> None:
    # Every 10 minutes: with 60 s periods, "5 of 5" could never fire and "less than 1" would flap.
    alarms = _alarms(private)
    assert alarms
    for name, alarm in alarms.items():
        assert alarm["Period"] == 600, name
        assert alarm["EvaluationPeriods"] == 5, name
        assert "minute" not in alarm["AlarmDescription"], name
    assert "50 min" in alarms[names.METRIC_RUN_DURATION]["AlarmDescription"]
    metrics = [
        m for w in _dashboard_body(private)["widgets"] for m in w.get("properties", {}).get("metrics", [])
    ]
    periods = {m[-1]["period"] for m in metrics if isinstance(m[-1], dict) and "period" in m[-1]}
    assert periods == {600}
    searches = [m[0]["expression"] for m in metrics if isinstance(m[0], dict) and "expression" in m[0]]
    assert searches and all(search.endswith("'Average', 600)") for search in searches)


def test_alarms_from_context_notify_the_topic(private: Synthesized) -> None:
    alarms = _alarms(private)
    assert set(alarms) == DEFAULT_ALARM_METRICS | {names.METRIC_PODS_EMITTED}
    assert alarms[names.METRIC_SCRAPE_FAILURES]["Threshold"] == 3
    assert alarms["Duration"]["Threshold"] == 80_000
    pods = alarms[names.METRIC_PODS_EMITTED]
    assert pods["ComparisonOperator"] == "LessThanThreshold"
    assert pods["Threshold"] == 1
    assert pods["TreatMissingData"] == "breaching"
    assert pods["Dimensions"] == [{"Name": names.HEALTH_DIMENSION, "Value": "prod_eu"}]
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [TOPIC_ARN]
        assert alarm["OKActions"] == [TOPIC_ARN]


def _dashboard_body(synth: Synthesized) -> dict[str, Any]:
    """The dashboard JSON with the stack's tokens replaced by placeholders."""
    body = synth.only("AWS::CloudWatch::Dashboard")["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    text = "".join(p if isinstance(p, str) else "TOKEN" for p in parts)
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def test_dashboard_pod_metrics_and_health(default: Synthesized) -> None:
    widgets = _dashboard_body(default)["widgets"]
    metrics = [m for w in widgets for m in w.get("properties", {}).get("metrics", [])]
    # A metric is [namespace, name, dim, value, ..., {options}]: keep its leading strings.
    plain = {tuple(x for x in m if isinstance(x, str)) for m in metrics if isinstance(m[0], str)}
    for metric, _ in POD_METRICS:
        assert ("ContainerInsights", metric, "ClusterName", "demo", "LaunchType", "fargate") in plain, metric
    for metric in (
        names.METRIC_NODES_DISCOVERED,
        names.METRIC_NODES_SCRAPED,
        names.METRIC_SCRAPE_FAILURES,
        names.METRIC_NODES_SKIPPED,
        names.METRIC_NODES_GONE,
        names.METRIC_PODS_EMITTED,
        names.METRIC_RUN_DURATION,
    ):
        assert (names.HEALTH_NAMESPACE, metric, names.HEALTH_DIMENSION, "demo") in plain, metric
    lambda_metrics = {m[1] for m in plain if m[0] == "AWS/Lambda"}
    assert {"Duration", "Errors"} <= lambda_metrics
    searches = [m[0]["expression"] for m in metrics if isinstance(m[0], dict) and "expression" in m[0]]
    assert searches
    for search in searches:
        assert search.startswith("SEARCH('{ContainerInsights,ClusterName,LaunchType,Namespace}")
        assert 'ClusterName="demo"' in search and 'LaunchType="fargate"' in search
    assert any(w["type"] == "alarm" for w in widgets)


def test_dashboard_name_is_per_cluster_and_region(default: Synthesized) -> None:
    name = default.only("AWS::CloudWatch::Dashboard")["DashboardName"]
    assert name == {"Fn::Join": ["", ["FargateInsights-demo-", {"Ref": "AWS::Region"}]]}


def test_template_has_no_unexpected_resource_types(all_configs: list[Synthesized]) -> None:
    allowed = {
        "AWS::Lambda::Function",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::Lambda::Permission",
        "AWS::Logs::LogGroup",
        "AWS::IAM::Role",
        "AWS::S3::Bucket",
        "AWS::S3::BucketPolicy",
        "AWS::Events::Rule",
        "AWS::EKS::AccessEntry",
        "AWS::CloudWatch::Alarm",
        "AWS::CloudWatch::Dashboard",
        "AWS::EC2::SecurityGroup",
        "CDK::Metadata",
    }
    for synth in all_configs:
        types = {r["Type"] for r in synth.template_json["Resources"].values()}
        assert types <= allowed, types - allowed
    default_types = {r["Type"] for r in all_configs[0].template_json["Resources"].values()}
    assert "AWS::EC2::SecurityGroup" not in default_types
