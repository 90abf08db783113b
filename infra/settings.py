"""The collector's deployment settings, read from CDK context and validated before anything is built.

Context values arrive as strings from ``-c key=value`` and as JSON values from cdk.json, so every
parser accepts both. Errors name the context key and say how to fix it: synthesis is where a user
finds out, long before a deployment could fail.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from aws_cdk import aws_logs as logs
from constructs import Node

from infra.names import function_settings

# Log retention in days -> the CDK enum (CloudWatch Logs accepts only these values).
RETENTION_DAYS: Final[Mapping[int, logs.RetentionDays]] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}

LOG_DESTINATIONS: Final = ("function", "performance")
DEFAULT_KUBERNETES_GROUP: Final = "fargate-insights"

# EKS cluster names: 1-100 characters, alphanumerics, hyphens and underscores, starting alphanumeric.
_CLUSTER_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$")
# Kubernetes group names in an access entry must not start with "system:" (reserved by EKS).
_GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._@\-]{0,62}$")
# Context keys shaped like this app's (plain camelCase): CDK's own carry '@', ':', '/' or '-'.
_OUR_KEY_SHAPE = re.compile(r"^[a-z][A-Za-z0-9]*$")
_TRUE: Final = frozenset({"true", "yes", "1", "on"})
_FALSE: Final = frozenset({"false", "no", "0", "off", ""})

MISSING_CLUSTER_MESSAGE: Final = (
    "The EKS cluster name is required: run `make deploy CLUSTER=<name>` (or `make synth CLUSTER=<name>`), "
    'or pass `-c clusterName=<name>` to the cdk CLI, or set "clusterName" in the context of cdk.json.'
)

# Every key from_context reads; a key of the same shape that is not here is a typo that would be ignored.
CONTEXT_KEYS: Final = (
    "clusterName",
    "scheduleMinutes",
    "memorySize",
    "timeoutSeconds",
    "maxInFlight",
    "requestTimeout",
    "logRetentionDays",
    "logDestination",
    "importLogGroup",
    "kubernetesGroup",
    "createAccessEntry",
    "clusterEndpoint",
    "clusterCaData",
    "vpcId",
    "subnetIds",
    "securityGroupId",
    "stateStore",
    "alarmTopicArn",
    "scrapeFailureAlarmThreshold",
    "noPodsAlarm",
    "singleRun",
)

_T = TypeVar("_T")


class SettingsError(ValueError):
    """A context value that cannot work; the message names the key and a fix."""


def _parse_bool(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SettingsError(f"context {key}={value!r}: expected true or false")


def _parse_int(key: str, value: object, minimum: int, maximum: int) -> int:
    if isinstance(value, bool):
        raise SettingsError(f"context {key}={value!r}: expected a whole number")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise SettingsError(f"context {key}={value!r}: expected a whole number") from None
    if not minimum <= number <= maximum:
        raise SettingsError(f"context {key}={number}: must be between {minimum} and {maximum}")
    return number


def _parse_list(key: str, value: object) -> tuple[str, ...]:
    """Accept a JSON list (cdk.json), a JSON list in a string, or a comma-separated string (-c)."""
    items: list[object]
    if isinstance(value, list | tuple):
        items = list(value)
    else:
        text = str(value).strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as err:
                raise SettingsError(f"context {key}: not a JSON list ({err})") from None
            if not isinstance(parsed, list):
                raise SettingsError(f"context {key}: expected a list")
            items = parsed
        else:
            items = list(text.split(","))
    result = tuple(str(item).strip() for item in items if str(item).strip())
    if not result:
        raise SettingsError(f"context {key}: expected at least one value")
    return result


def check_context_keys(keys: Iterable[str]) -> None:
    """A misspelled key would be silently ignored and its default deployed: name it and the likely fix."""
    by_lower = {key.lower(): key for key in CONTEXT_KEYS}
    for key in sorted(keys):
        if not _OUR_KEY_SHAPE.match(key) or key in CONTEXT_KEYS:
            continue
        close = difflib.get_close_matches(key.lower(), by_lower, n=1)
        hint = f"did you mean {by_lower[close[0]]!r}?" if close else f"known keys: {', '.join(CONTEXT_KEYS)}"
        raise SettingsError(f"unknown context key {key!r}: {hint}")


def _check_function_setting(check: Callable[[str, str], str], value: str, key: str) -> None:
    """Run the function's own validator, so synthesis rejects what the function would reject at run time."""
    try:
        check(value, key)
    except function_settings.ConfigurationError as err:
        raise SettingsError(str(err)) from None


def _optional_str(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


@dataclass(frozen=True, slots=True)
class CollectorSettings:
    """Everything the construct needs; defaults are what a one-cluster user wants."""

    cluster_name: str
    schedule_minutes: int = 1
    # CPU comes with memory (1 vCPU at 1,769 MB) and a run is CPU-bound at scale (~1 ms a node,
    # `make bench`): 1,024 MB collects 5,000 pods in about a fifth of the timeout, for the same GB-s.
    memory_size: int = 1024
    timeout_seconds: int = 50
    max_in_flight: int = 64
    request_timeout_seconds: int = 10
    log_retention_days: int = 30
    log_destination: str = "function"
    import_log_group: bool = False
    kubernetes_group: str = DEFAULT_KUBERNETES_GROUP
    create_access_entry: bool = True
    cluster_endpoint: str | None = None
    cluster_ca_data: str | None = None
    vpc_id: str | None = None
    subnet_ids: tuple[str, ...] = field(default_factory=tuple)
    security_group_id: str | None = None
    state_store: bool = True
    alarm_topic_arn: str | None = None
    scrape_failure_alarm_threshold: int = 0
    no_pods_alarm: bool = False
    # Reserved concurrency 1: never two runs at once. An account whose concurrency quota is still the
    # new-account 10 cannot reserve any (Lambda keeps 10 unreserved), so it can be turned off.
    single_run: bool = True

    def __post_init__(self) -> None:
        """Reject combinations that would synthesize but fail (or misbehave) once deployed."""
        if not self.cluster_name:
            raise SettingsError(MISSING_CLUSTER_MESSAGE)
        if not _CLUSTER_NAME.match(self.cluster_name):
            raise SettingsError(
                f"clusterName={self.cluster_name!r} is not a valid EKS cluster name "
                "(1-100 letters, digits, '-' or '_', starting with a letter or digit)"
            )
        period_s = self.schedule_minutes * 60
        if self.timeout_seconds >= period_s:
            raise SettingsError(
                f"timeoutSeconds={self.timeout_seconds} must be below the schedule period ({period_s} s): "
                "a run that outlasts its minute would overlap the next one"
            )
        if self.request_timeout_seconds >= self.timeout_seconds:
            raise SettingsError(
                f"requestTimeout={self.request_timeout_seconds} must be below "
                f"timeoutSeconds={self.timeout_seconds}"
            )
        if self.log_retention_days not in RETENTION_DAYS:
            allowed = ", ".join(str(days) for days in RETENTION_DAYS)
            raise SettingsError(f"logRetentionDays={self.log_retention_days}: CloudWatch accepts {allowed}")
        if self.log_destination not in LOG_DESTINATIONS:
            raise SettingsError(
                f"logDestination={self.log_destination!r}: use 'function' (its own log group) or "
                "'performance' (/aws/containerinsights/<cluster>/performance)"
            )
        if self.import_log_group and self.log_destination != "performance":
            raise SettingsError("importLogGroup=true only applies with logDestination=performance")
        if not _GROUP_NAME.match(self.kubernetes_group) or self.kubernetes_group.startswith("system:"):
            raise SettingsError(
                f"kubernetesGroup={self.kubernetes_group!r}: use a plain group name (not 'system:...')"
            )
        if (self.cluster_endpoint is None) != (self.cluster_ca_data is None):
            raise SettingsError(
                "clusterEndpoint and clusterCaData go together: "
                "pass both (to skip eks:DescribeCluster) or neither"
            )
        if self.cluster_endpoint is not None and self.cluster_ca_data is not None:
            _check_function_setting(
                function_settings.validate_endpoint, self.cluster_endpoint, "clusterEndpoint"
            )
            _check_function_setting(function_settings.decode_ca_data, self.cluster_ca_data, "clusterCaData")
        if self.vpc_id is None and (self.subnet_ids or self.security_group_id):
            raise SettingsError("subnetIds and securityGroupId need vpcId as well")
        if self.vpc_id is not None and not self.subnet_ids:
            raise SettingsError(
                "vpcId needs subnetIds: the private subnets (with a route to the cluster endpoint) "
                "to run the function in, e.g. -c subnetIds=subnet-aaa,subnet-bbb"
            )

    @property
    def log_group_name(self) -> str:
        """Where the function's logs (and so its EMF documents) go."""
        if self.log_destination == "performance":
            return f"/aws/containerinsights/{self.cluster_name}/performance"
        return f"/aws/lambda/fargate-insights-{self.cluster_name}"

    @property
    def state_key(self) -> str:
        """The S3 object holding the counter samples between cold starts."""
        return f"state/{self.cluster_name}.json"

    @property
    def uses_describe_cluster(self) -> bool:
        """Without a configured endpoint and CA the function must look them up itself."""
        return self.cluster_endpoint is None

    @classmethod
    def from_context(cls, node: Node) -> CollectorSettings:
        """Read every setting from CDK context (``-c key=value`` or cdk.json)."""

        def get(key: str, parse: Callable[[str, object], _T], default: _T) -> _T:
            value: Any = node.try_get_context(key)
            if value is None:
                return default
            return parse(key, value)

        def integer(minimum: int, maximum: int) -> Callable[[str, object], int]:
            return lambda key, value: _parse_int(key, value, minimum, maximum)

        def text(_key: str, value: object) -> str:
            return str(value).strip()

        def optional(_key: str, value: object) -> str | None:
            return _optional_str(value)

        check_context_keys(node.get_all_context())
        cluster_name = _optional_str(node.try_get_context("clusterName"))
        if cluster_name is None:
            raise SettingsError(MISSING_CLUSTER_MESSAGE)
        return cls(
            cluster_name=cluster_name,
            schedule_minutes=get("scheduleMinutes", integer(1, 60), 1),
            memory_size=get("memorySize", integer(128, 10240), 1024),
            timeout_seconds=get("timeoutSeconds", integer(3, 900), 50),
            max_in_flight=get("maxInFlight", integer(1, 1024), 64),
            request_timeout_seconds=get("requestTimeout", integer(1, 300), 10),
            log_retention_days=get("logRetentionDays", integer(1, 3653), 30),
            log_destination=get("logDestination", text, "function"),
            import_log_group=get("importLogGroup", _parse_bool, False),
            kubernetes_group=get("kubernetesGroup", text, DEFAULT_KUBERNETES_GROUP),
            create_access_entry=get("createAccessEntry", _parse_bool, True),
            cluster_endpoint=get("clusterEndpoint", optional, None),
            cluster_ca_data=get("clusterCaData", optional, None),
            vpc_id=get("vpcId", optional, None),
            subnet_ids=get("subnetIds", _parse_list, ()),
            security_group_id=get("securityGroupId", optional, None),
            state_store=get("stateStore", _parse_bool, True),
            alarm_topic_arn=get("alarmTopicArn", optional, None),
            scrape_failure_alarm_threshold=get("scrapeFailureAlarmThreshold", integer(0, 100000), 0),
            no_pods_alarm=get("noPodsAlarm", _parse_bool, False),
            single_run=get("singleRun", _parse_bool, True),
        )
