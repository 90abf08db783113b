"""The reusable construct: the collector function, its schedule, least-privilege access, alarms, dashboard.

One class so that a user can drop the collector into their own CDK app; ``FargateInsightsStack`` only
wraps it with settings read from context.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

from aws_cdk import (
    Acknowledgment,
    ArnFormat,
    AssetHashType,
    Aws,
    BundlingOptions,
    CfnOutput,
    DockerImage,
    Duration,
    Fn,
    ILocalBundling,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks as eks
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.bundling import LocalPythonBundler, package_hash
from infra.names import LAMBDA_SRC, names
from infra.settings import DEFAULT_KUBERNETES_GROUP, RETENTION_DAYS, CollectorSettings

HANDLER = "fargate_insights.handler.lambda_handler"
POWERTOOLS_SERVICE_NAME = "fargate-insights"
# A late asynchronous event must be dropped, not run into the next minute (60 s is Lambda's minimum).
MAX_EVENT_AGE = Duration.seconds(60)
# Alarm when runs use more than this share of the timeout: the next step is lost data.
DURATION_ALARM_SHARE = 0.8
# Alarms count runs: this many schedule periods are evaluated, each holding one run.
ALARM_EVALUATION_RUNS = 5
# The Container Insights dimension set that aggregates every Fargate pod of a cluster.
FARGATE_LAUNCH_TYPE = "fargate"
POD_METRICS = (
    ("pod_cpu_utilization_over_pod_limit", "CPU utilization over pod limit (%)"),
    ("pod_memory_utilization_over_pod_limit", "Memory utilization over pod limit (%)"),
    ("pod_cpu_usage_total", "CPU usage (millicores)"),
    ("pod_memory_working_set", "Memory working set (bytes)"),
    ("pod_network_rx_bytes", "Network received (bytes/s)"),
    ("pod_network_tx_bytes", "Network transmitted (bytes/s)"),
)
RBAC_APPLY_COMMAND = "kubectl apply -f infra/rbac.yaml"


class FargateInsightsCollector(Construct):
    """Everything the collector needs that CloudFormation can create; RBAC is the cluster's to grant."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: CollectorSettings) -> None:
        """Build the collector for one cluster from validated settings."""
        super().__init__(scope, construct_id)
        self.settings = settings
        self.log_group = self._log_group()
        self.state_bucket = self._state_bucket() if settings.state_store else None
        self.vpc_config = self._vpc()
        self.role = self._role()
        self.function = self._function()
        self.rule = self._schedule()
        self.access_entry = self._access_entry() if settings.create_access_entry else None
        self.alarm_topic = (
            sns.Topic.from_topic_arn(self, "AlarmTopic", settings.alarm_topic_arn)
            if settings.alarm_topic_arn
            else None
        )
        self.alarms = self._alarms()
        self.dashboard = self._dashboard()
        self._outputs()

    # Storage -------------------------------------------------------------------------------------------

    def _log_group(self) -> logs.ILogGroup:
        """The function's own log group, or Container Insights' performance log group for its log views."""
        s = self.settings
        if s.import_log_group:
            # A previous ADOT/CloudWatch agent install may already own it: reference, never recreate.
            return logs.LogGroup.from_log_group_name(self, "LogGroup", s.log_group_name)
        return logs.LogGroup(
            self,
            "LogGroup",
            log_group_name=s.log_group_name,
            retention=RETENTION_DAYS[s.log_retention_days],
            # The performance log group holds Container Insights data worth keeping past this stack;
            # the function's own group has nothing a new deployment could not produce again.
            removal_policy=RemovalPolicy.RETAIN
            if s.log_destination == "performance"
            else RemovalPolicy.DESTROY,
        )

    def _state_bucket(self) -> s3.Bucket:
        """Where counter samples survive cold starts, so a new execution environment loses no rates."""
        bucket = s3.Bucket(
            self,
            "StateBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=False,
            lifecycle_rules=[
                # The object is rewritten every minute: anything a week old belongs to a cluster
                # that is no longer collected.
                s3.LifecycleRule(
                    id="expire-stale-state",
                    expiration=Duration.days(7),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            # RETAIN: CloudFormation cannot delete a non-empty bucket, and emptying it needs a custom
            # resource (another function with a managed policy). What is left behind is one small object
            # of counter samples, worthless once the collector is gone.
            removal_policy=RemovalPolicy.RETAIN,
            auto_delete_objects=False,
        )
        Validations.of(bucket).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-S1",
                reason=(
                    "Server access logs would record one PutObject and at most one GetObject of a tiny "
                    "state object every minute, written only by the collector's own role; CloudTrail "
                    "data events can be enabled account-wide if that audit is needed."
                ),
            )
        )
        return bucket

    # Network and identity ------------------------------------------------------------------------------

    def _vpc(self) -> tuple[ec2.IVpc, list[ec2.ISubnet], ec2.ISecurityGroup] | None:
        """Subnets and security group for a private cluster endpoint; no lookups, so no account needed."""
        s = self.settings
        if s.vpc_id is None:
            return None
        # The subnets are given explicitly, so nothing needs the VPC's zones or subnet lists.
        vpc = ec2.Vpc.from_vpc_attributes(self, "Vpc", vpc_id=s.vpc_id, availability_zones=Fn.get_azs())
        Validations.of(vpc).acknowledge(
            Acknowledgment(
                id="Annotation::@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones",
                reason="The function gets explicit subnets; nothing selects subnets by zone from this VPC.",
            )
        )
        subnets: list[ec2.ISubnet] = []
        for index, subnet_id in enumerate(s.subnet_ids):
            subnet = ec2.Subnet.from_subnet_id(self, f"Subnet{index}", subnet_id)
            Validations.of(subnet).acknowledge(
                Acknowledgment(
                    id="Annotation::@aws-cdk/aws-ec2:noSubnetRouteTableId",
                    reason="Only the subnet ID is needed to place the function's ENIs; no route is managed.",
                )
            )
            subnets.append(subnet)
        if s.security_group_id:
            group = ec2.SecurityGroup.from_security_group_id(
                self, "SecurityGroup", s.security_group_id, mutable=False
            )
        else:
            created = ec2.SecurityGroup(
                self,
                "SecurityGroup",
                vpc=vpc,
                description="Fargate Insights collector: HTTPS to the EKS API, S3 and AWS APIs only",
                allow_all_outbound=False,
            )
            created.add_egress_rule(
                ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to the EKS API and AWS APIs"
            )
            group = created
        return vpc, subnets, group

    def _role(self) -> iam.Role:
        """A dedicated role with inline statements scoped to this cluster, log group and state object."""
        s = self.settings
        statements: list[iam.PolicyStatement] = [
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                # CreateLogStream is authorized on the group, PutLogEvents on its streams (":*").
                resources=[self._log_group_arn(), f"{self._log_group_arn()}:*"],
            )
        ]
        if s.uses_describe_cluster:
            statements.append(
                iam.PolicyStatement(
                    sid="DescribeTheCluster",
                    actions=["eks:DescribeCluster"],
                    resources=[self.cluster_arn],
                )
            )
        if self.state_bucket is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="ReadWriteCounterState",
                    actions=["s3:GetObject", "s3:PutObject"],
                    resources=[self.state_bucket.arn_for_objects(s.state_key)],
                )
            )
            statements.append(
                iam.PolicyStatement(
                    sid="FindCounterState",
                    # Without it S3 answers a missing state object (the first run) with 403 AccessDenied
                    # instead of 404; listing is limited to the state key itself.
                    actions=["s3:ListBucket"],
                    resources=[self.state_bucket.bucket_arn],
                    conditions={"StringEquals": {"s3:prefix": s.state_key}},
                )
            )
        if self.vpc_config is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="LambdaVpcNetworkInterfaces",
                    # What AWSLambdaVPCAccessExecutionRole grants, without attaching a managed policy.
                    actions=[
                        "ec2:CreateNetworkInterface",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DeleteNetworkInterface",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    resources=["*"],
                )
            )
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Fargate Insights collector for EKS cluster {s.cluster_name}",
            inline_policies={"collector": iam.PolicyDocument(statements=statements)},
        )
        acknowledgments = [
            Acknowledgment(
                id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{self._log_group_arn_text()}:*]",
                reason=(
                    "Lambda names its log streams per execution environment at run time "
                    "(date/[version]id), so PutLogEvents needs every stream of this one log group."
                ),
            )
        ]
        if self.vpc_config is not None:
            acknowledgments.append(
                Acknowledgment(
                    id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                    reason=(
                        "Lambda creates and deletes the function's ENIs in the VPC; EC2 does not support "
                        "resource-level permissions for these network interface actions at creation time "
                        "(the same statement as the AWSLambdaVPCAccessExecutionRole managed policy)."
                    ),
                )
            )
        Validations.of(role).acknowledge(*acknowledgments)
        return role

    @property
    def cluster_arn(self) -> str:
        """The one cluster the role may describe."""
        return Stack.of(self).format_arn(
            service="eks", resource="cluster", resource_name=self.settings.cluster_name
        )

    def _log_group_arn(self) -> str:
        """The log group's ARN without the ``:*`` that ``LogGroup.logGroupArn`` carries."""
        return Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=self.settings.log_group_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _log_group_arn_text(self) -> str:
        """How cdk-nag prints the log group ARN in a finding id (pseudo parameters as placeholders)."""
        return (
            "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
            f"{self.settings.log_group_name}"
        )

    # The function and its schedule ---------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        """The function's configuration; names come from fargate_insights.names so both sides agree."""
        s = self.settings
        env = {
            names.ENV_CLUSTER_NAME: s.cluster_name,
            names.ENV_MAX_IN_FLIGHT: str(s.max_in_flight),
            names.ENV_REQUEST_TIMEOUT: str(s.request_timeout_seconds),
            "POWERTOOLS_SERVICE_NAME": POWERTOOLS_SERVICE_NAME,
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        if s.cluster_endpoint is not None and s.cluster_ca_data is not None:
            env[names.ENV_CLUSTER_ENDPOINT] = s.cluster_endpoint
            env[names.ENV_CLUSTER_CA_DATA] = s.cluster_ca_data
        if self.state_bucket is not None:
            env[names.ENV_STATE_BUCKET] = self.state_bucket.bucket_name
            env[names.ENV_STATE_KEY] = s.state_key
        return env

    def _function(self) -> lambda_.Function:
        """Python 3.13 on arm64, one run at a time, no retries, JSON logs that keep the EMF lines."""
        s = self.settings
        vpc_props: dict[str, object] = {}
        if self.vpc_config is not None:
            vpc, subnets, group = self.vpc_config
            vpc_props = {
                "vpc": vpc,
                "vpc_subnets": ec2.SubnetSelection(subnets=subnets),
                "security_groups": [group],
            }
        function = lambda_.Function(
            self,
            "Function",
            description=f"Container Insights for EKS Fargate pods of cluster {s.cluster_name}",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=lambda_code(LAMBDA_SRC),
            memory_size=s.memory_size,
            timeout=Duration.seconds(s.timeout_seconds),
            # Two runs at once could only come from a late event (the timeout is below the period); the
            # state's conditional writes merge them if they do (singleRun=false).
            reserved_concurrent_executions=1 if s.single_run else None,
            retry_attempts=0,
            max_event_age=MAX_EVENT_AGE,
            role=self.role,
            environment=self._environment(),
            logging_format=lambda_.LoggingFormat.JSON,
            # EMF lines carry no "level": Lambda counts them as INFO, so INFO must pass.
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            log_group=self.log_group,
            **vpc_props,  # type: ignore[arg-type]
        )
        Validations.of(function).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-L1",
                reason=(
                    "Python 3.13 is deliberate: the package's arm64 wheels and precompiled bytecode are "
                    "built for CPython 3.13, and the runtime is supported by Lambda; moving to a newer "
                    "runtime is a tested change of the build, not a template edit."
                ),
            )
        )
        return function

    def _schedule(self) -> events.Rule:
        """EventBridge every N minutes; the target drops late events instead of retrying them."""
        minutes = self.settings.schedule_minutes
        return events.Rule(
            self,
            "Schedule",
            description=f"Collect Fargate pod metrics of {self.settings.cluster_name}",
            schedule=events.Schedule.rate(Duration.minutes(minutes)),
            targets=[
                targets.LambdaFunction(self.function, retry_attempts=0, max_event_age=MAX_EVENT_AGE),
            ],
        )

    def _access_entry(self) -> eks.CfnAccessEntry:
        """Maps the role to the Kubernetes group that infra/rbac.yaml binds (no EKS access policy)."""
        return eks.CfnAccessEntry(
            self,
            "AccessEntry",
            cluster_name=self.settings.cluster_name,
            principal_arn=self.role.role_arn,
            kubernetes_groups=[self.settings.kubernetes_group],
            type="STANDARD",
        )

    # Operations ----------------------------------------------------------------------------------------

    @property
    def run_period(self) -> Duration:
        """The schedule interval: one run, so one data point, per period (a shorter one is mostly empty)."""
        return Duration.minutes(self.settings.schedule_minutes)

    def health_metric(self, name: str, statistic: str = "Sum") -> cloudwatch.Metric:
        """One of the function's own health metrics for this cluster, one run per period."""
        return cloudwatch.Metric(
            namespace=names.HEALTH_NAMESPACE,
            metric_name=name,
            dimensions_map={names.HEALTH_DIMENSION: self.settings.cluster_name},
            statistic=statistic,
            period=self.run_period,
        )

    def pod_metric(self, name: str, statistic: str = "Average") -> cloudwatch.Metric:
        """A Container Insights pod metric aggregated over the cluster's Fargate pods, one run per period."""
        return cloudwatch.Metric(
            namespace=names.CI_NAMESPACE,
            metric_name=name,
            dimensions_map={"ClusterName": self.settings.cluster_name, "LaunchType": FARGATE_LAUNCH_TYPE},
            statistic=statistic,
            period=self.run_period,
        )

    def _alarms(self) -> list[cloudwatch.Alarm]:
        """Failing, silent, dropped or slow runs, persistent scrape failures (and, opt-in, no pods).

        Every period is one schedule interval, so "3 of 5" means three of the last five runs whatever
        scheduleMinutes is.
        """
        s = self.settings
        runs = ALARM_EVALUATION_RUNS
        alarms = [
            self._alarm(
                "ErrorsAlarm",
                f"Fargate Insights collector for {s.cluster_name} failed in 3 of the last {runs} runs: "
                "no pod metrics are being written. See the function's logs.",
                self.function.metric_errors(period=self.run_period, statistic="Sum"),
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                datapoints=3,
            ),
            self._alarm(
                "NotReportingAlarm",
                f"No run of the Fargate Insights collector for {s.cluster_name} reported its health in "
                f"the last {runs} schedule periods ({runs * s.schedule_minutes} min): check that its "
                "schedule rule is enabled, the function's Invocations and Errors, and that the log group "
                f"it writes to ({s.log_group_name}) exists: without it every line is lost, health "
                "metrics included, while runs succeed.",
                self.health_metric(names.METRIC_RUN_DURATION, "SampleCount"),
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                datapoints=runs,
                missing=cloudwatch.TreatMissingData.BREACHING,
            ),
            self._alarm(
                "AsyncEventsDroppedAlarm",
                f"Scheduled runs of the Fargate Insights collector for {s.cluster_name} were dropped in "
                f"3 of the last {runs} schedule periods: a run was still going when the next was due, or "
                "the function was throttled. Check the DurationAlarm and the function's Throttles.",
                self.function.metric("AsyncEventsDropped", period=self.run_period, statistic="Sum"),
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                datapoints=3,
            ),
            self._alarm(
                "ScrapeFailuresAlarm",
                f"Nodes of {s.cluster_name} failed to scrape in each of the last {runs} runs "
                f"(more than {s.scrape_failure_alarm_threshold} a run): check RBAC (nodes/proxy) "
                "and the API server.",
                self.health_metric(names.METRIC_SCRAPE_FAILURES),
                threshold=s.scrape_failure_alarm_threshold,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                datapoints=runs,
            ),
            self._alarm(
                "DurationAlarm",
                f"Collector runs for {s.cluster_name} used more than {DURATION_ALARM_SHARE:.0%} of the "
                f"{s.timeout_seconds} s timeout in 3 of the last {runs} runs: raise memorySize or "
                "maxInFlight before runs time out.",
                self.function.metric_duration(period=self.run_period, statistic="Maximum"),
                threshold=s.timeout_seconds * 1000 * DURATION_ALARM_SHARE,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                datapoints=3,
            ),
        ]
        if s.no_pods_alarm:
            alarms.append(
                self._alarm(
                    "NoPodsAlarm",
                    f"No Fargate pod of {s.cluster_name} was reported in the last {runs} runs "
                    "(or the collector stopped reporting).",
                    self.health_metric(names.METRIC_PODS_EMITTED),
                    threshold=1,
                    comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                    datapoints=runs,
                    missing=cloudwatch.TreatMissingData.BREACHING,
                )
            )
        if self.alarm_topic is not None:
            action = cloudwatch_actions.SnsAction(self.alarm_topic)
            for alarm in alarms:
                alarm.add_alarm_action(action)
                alarm.add_ok_action(action)
        return alarms

    def _alarm(
        self,
        construct_id: str,
        description: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        datapoints: int,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> cloudwatch.Alarm:
        """An alarm over the last ALARM_EVALUATION_RUNS periods of its metric (one run each)."""
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=ALARM_EVALUATION_RUNS,
            datapoints_to_alarm=datapoints,
            treat_missing_data=missing,
        )

    def _dashboard(self) -> cloudwatch.Dashboard:
        """Pod metrics of the cluster's Fargate pods next to the collector's own health."""
        s = self.settings
        pod_widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(title=title, left=[self.pod_metric(metric)], width=8, height=6)
            for metric, title in POD_METRICS
        ]
        per_namespace: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title=f"{title} by namespace",
                left=[
                    cloudwatch.SearchExpression(
                        expression=(
                            "SEARCH('{" + names.CI_NAMESPACE + ",ClusterName,LaunchType,Namespace} "
                            f'MetricName="{metric}" ClusterName="{s.cluster_name}" '
                            f"LaunchType=\"{FARGATE_LAUNCH_TYPE}\"', 'Average', "
                            f"{self.run_period.to_seconds():.0f})"
                        ),
                        label="",
                        period=self.run_period,
                    )
                ],
                width=12,
                height=6,
            )
            for metric, title in POD_METRICS[2:4]
        ]
        health_widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title="Collector: nodes",
                left=[
                    self.health_metric(names.METRIC_NODES_DISCOVERED, "Maximum"),
                    self.health_metric(names.METRIC_NODES_SCRAPED, "Maximum"),
                    self.health_metric(names.METRIC_NODES_SKIPPED, "Maximum"),
                    self.health_metric(names.METRIC_NODES_GONE, "Maximum"),
                    self.health_metric(names.METRIC_SCRAPE_FAILURES),
                ],
                width=8,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title="Collector: pods emitted",
                left=[self.health_metric(names.METRIC_PODS_EMITTED, "Maximum")],
                width=8,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title="Collector: run duration (ms)",
                left=[
                    self.health_metric(names.METRIC_RUN_DURATION, "Maximum"),
                    self.function.metric_duration(period=self.run_period, statistic="Maximum"),
                ],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=s.timeout_seconds * 1000, label="timeout"),
                ],
                width=8,
                height=6,
            ),
            cloudwatch.GraphWidget(
                title="Collector: Lambda errors and throttles",
                left=[
                    self.function.metric_errors(period=self.run_period, statistic="Sum"),
                    self.function.metric_throttles(period=self.run_period, statistic="Sum"),
                ],
                width=12,
                height=6,
            ),
            cloudwatch.AlarmStatusWidget(
                title="Collector alarms", alarms=list(self.alarms), width=12, height=6
            ),
        ]
        return cloudwatch.Dashboard(
            self,
            "Dashboard",
            # Dashboard names are global to the account: the region keeps two regions' clusters apart.
            dashboard_name=f"FargateInsights-{s.cluster_name}-{Aws.REGION}",
            default_interval=Duration.hours(3),
            widgets=[
                [cloudwatch.TextWidget(markdown=f"# Fargate pods of {s.cluster_name}", width=24, height=1)],
                pod_widgets[:3],
                pod_widgets[3:],
                per_namespace,
                [cloudwatch.TextWidget(markdown="# Collector health", width=24, height=1)],
                health_widgets[:3],
                health_widgets[3:],
            ],
        )

    def _outputs(self) -> None:
        """What the user runs after deploying: the RBAC for the group, or aws-auth on CONFIG_MAP clusters."""
        s = self.settings
        CfnOutput(self, "RoleArn", value=self.role.role_arn, description="The collector function's IAM role")
        CfnOutput(
            self, "FunctionName", value=self.function.function_name, description="The collector function"
        )
        CfnOutput(
            self,
            "RbacCommand",
            value=rbac_command(s.kubernetes_group),
            description="Run once against the cluster: the ClusterRole and binding for the collector's group",
        )
        if self.state_bucket is not None:
            CfnOutput(
                self,
                "StateBucketName",
                value=self.state_bucket.bucket_name,
                description="The counter state's bucket, kept when the stack is deleted (README: Remove)",
            )
        if self.vpc_config is not None and s.security_group_id is None:
            CfnOutput(
                self,
                "SecurityGroupId",
                value=self.vpc_config[2].security_group_id,
                description="Allow TCP 443 from this group on the cluster security group",
            )
        if not s.create_access_entry:
            CfnOutput(
                self,
                "AwsAuthCommand",
                value=Fn.join(
                    "",
                    [
                        f"eksctl create iamidentitymapping --cluster {s.cluster_name} "
                        f"--region {Aws.REGION} --arn ",
                        self.role.role_arn,
                        f" --group {s.kubernetes_group} --username fargate-insights",
                    ],
                ),
                description="For clusters in CONFIG_MAP authentication mode: map the role in aws-auth",
            )


def rbac_command(group: str) -> str:
    """The kubectl command that applies infra/rbac.yaml for the group the access entry uses."""
    if group == DEFAULT_KUBERNETES_GROUP:
        return RBAC_APPLY_COMMAND
    # Only the binding's subject sits at this indentation (the labels' "name:" keys do not start a line).
    substitution = f"s/^    name: {DEFAULT_KUBERNETES_GROUP}$/    name: {group}/"
    return f"sed '{substitution}' infra/rbac.yaml | kubectl apply -f -"


def lambda_code(source_dir: Path) -> lambda_.Code:
    """The function's package, built locally (see infra.bundling); the Docker image is never pulled.

    The asset hash covers what the build reads, not only lambda_src: CDK's default would keep shipping
    the old package after a change to the build itself.
    """
    return lambda_.Code.from_asset(
        str(source_dir),
        asset_hash=package_hash(source_dir),
        asset_hash_type=AssetHashType.CUSTOM,
        exclude=["**/__pycache__", "**/*.pyc", "**/.mypy_cache", "**/.pytest_cache"],
        bundling=BundlingOptions(
            # Required by the API, never used: LocalPythonBundler always builds, so CDK does not fall back.
            image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.13:latest-arm64"),
            local=cast(ILocalBundling, LocalPythonBundler(source_dir)),
        ),
    )
