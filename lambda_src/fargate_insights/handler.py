"""Lambda entry point: one collection cycle per invocation, every minute from EventBridge.

What is expensive to set up (cluster endpoint and CA, the connection pool, counter history) lives at
module level and is reused by warm invocations of the same execution environment.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from . import names
from .collector import CollectionError, Collector, CollectorState, RunReport
from .eks_auth import ClusterAccess, TokenProvider, describe_cluster
from .kube_api import KubeApiError, KubeClient
from .pod_metrics import PodMetrics
from .settings import ConfigurationError, Settings
from .state_store import S3_CALL_WORST_CASE_S, S3StateStore, StateStore, s3_client

logger = Logger(service="fargate-insights")
# The collector's modules log with the standard library (they also run outside Lambda). Send their
# records through this logger's JSON handler: Lambda's own handler would drop their fields (which node
# failed, and why) and keep only the message.
copy_config_to_registered_loggers(source_logger=logger, include={"fargate_insights"})
# service="" so that the health metrics carry exactly the ClusterName dimension the alarms use.
health = Metrics(namespace=names.HEALTH_NAMESPACE, service="")
# Every run publishes its health metrics, except one stopped by a configuration error before the cluster
# name (their dimension) is known: that error is logged, and Powertools' "No application metrics to
# publish" warning would only add a raw stderr line beside it. Powertools documents this filter.
warnings.filterwarnings("ignore", "No application metrics to publish*")

# The run must report before Lambda's timeout: keep this share of the remaining time in reserve, and
# with a state bucket the time one S3 call of its save may take (`S3_CALL_WORST_CASE_S`) on top.
DEADLINE_RESERVE_SHARE = 0.1
DEADLINE_RESERVE_MIN_S = 1.0
DEADLINE_RESERVE_MAX_S = 5.0
# Kept after the save for the summary line and the health metrics.
REPORT_RESERVE_S = 0.5
# Listing failures that a moved or recreated cluster would also give: the next run describes the cluster
# again (when its endpoint came from DescribeCluster) and connects afresh, instead of failing forever on
# what this environment cached.
_STALE_ACCESS_REASONS = frozenset({"connection", "tls", "timeout", "http_401"})


@dataclass(slots=True)
class _Environment:
    """Per-execution-environment state, rebuilt only when the configuration changes."""

    settings: Settings
    kube: KubeClient
    state: CollectorState
    store: StateStore | None
    access_stale: bool = False  # set after a listing failure: rebuild the access, keep the state


_environment: _Environment | None = None


def _environment_for(settings: Settings, lambda_end: float) -> _Environment:
    """This environment's client and state for `settings`, built on first use (or after a change).

    `lambda_end` (time.monotonic()): when Lambda stops the invocation; DescribeCluster must end before.
    """
    global _environment
    previous = _environment
    if previous is not None and previous.settings == settings and not previous.access_stale:
        return previous
    if previous is not None:
        previous.kube.close()
        _environment = None
    session = boto3.session.Session(region_name=settings.region)
    if settings.endpoint and settings.ca_pem:
        access = ClusterAccess(endpoint=settings.endpoint, ca_pem=settings.ca_pem)
    else:
        budget_s = lambda_end - time.monotonic() - DEADLINE_RESERVE_MIN_S
        access = describe_cluster(session, settings.cluster_name, settings.region, budget_s)
    tokens = TokenProvider(settings.cluster_name, session, settings.region)
    tokens.token()  # fail here, with a clear message, when there are no credentials
    kube = KubeClient(
        access.endpoint,
        access.ca_pem,
        token=tokens.token,
        invalidate_token=tokens.invalidate,
        max_in_flight=settings.max_in_flight,
        request_timeout_s=settings.request_timeout_s,
    )
    store: StateStore | None = None
    state = CollectorState()
    if previous is not None and previous.settings == settings:
        state, store = previous.state, previous.store  # only the access was stale: the history holds
    elif settings.state_bucket and settings.state_key:
        store = S3StateStore(s3_client(session), settings.state_bucket, settings.state_key)
        state = store.load() or state
        logger.info("counter history loaded", extra={"series": len(state.counters)})
    _environment = _Environment(settings=settings, kube=kube, state=state, store=store)
    logger.info(
        "collector initialised",
        extra={
            "cluster": settings.cluster_name,
            "endpoint": access.endpoint,
            "max_in_flight": settings.max_in_flight,
        },
    )
    return _environment


def _write_document(line: str, _: PodMetrics) -> None:
    sys.stdout.write(line + "\n")


def _deadline(lambda_end: float, store: StateStore | None) -> float:
    """When the collection must end: early enough for the state's save and the report after it."""
    remaining_s = lambda_end - time.monotonic()
    reserve = min(DEADLINE_RESERVE_MAX_S, max(DEADLINE_RESERVE_MIN_S, remaining_s * DEADLINE_RESERVE_SHARE))
    if store is not None:
        reserve += S3_CALL_WORST_CASE_S
    return time.monotonic() + max(0.0, remaining_s - reserve)


def _stale_access(err: BaseException) -> bool:
    """Whether a failed run may be due to a cluster that moved (see `_STALE_ACCESS_REASONS`)."""
    cause = err.__cause__
    return (
        isinstance(err, CollectionError)
        and isinstance(cause, KubeApiError)
        and (cause.reason in _STALE_ACCESS_REASONS)
    )


def _publish_health(report: RunReport) -> None:
    for name, unit, value in (
        (names.METRIC_NODES_DISCOVERED, MetricUnit.Count, report.nodes_discovered),
        (names.METRIC_NODES_SCRAPED, MetricUnit.Count, report.nodes_scraped),
        (names.METRIC_SCRAPE_FAILURES, MetricUnit.Count, report.scrape_failures),
        (names.METRIC_NODES_SKIPPED, MetricUnit.Count, report.nodes_skipped),
        (names.METRIC_NODES_GONE, MetricUnit.Count, report.nodes_gone),
        (names.METRIC_PODS_EMITTED, MetricUnit.Count, report.pods_emitted),
        (names.METRIC_RUN_DURATION, MetricUnit.Milliseconds, report.duration_ms),
    ):
        health.add_metric(name=name, unit=unit, value=value)


@logger.inject_lambda_context(log_event=False, clear_state=True)
@health.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Collect every Fargate pod once; raise only when nothing could be collected."""
    started = time.monotonic()
    lambda_end = started + float(context.get_remaining_time_in_millis()) / 1000.0
    try:
        settings = Settings.from_env()
        health.add_dimension(name=names.HEALTH_DIMENSION, value=settings.cluster_name)
        logger.append_keys(cluster=settings.cluster_name)
        environment = _environment_for(settings, lambda_end)
        collector = Collector(
            settings.cluster_name,
            environment.kube,
            environment.state,
            sink=_write_document,
            max_in_flight=settings.max_in_flight,
            request_timeout_s=settings.request_timeout_s,
        )
        report = collector.run(_deadline(lambda_end, environment.store))
    except Exception as err:  # reported the same way: an unexpected error is a bug, and still a failed run
        if _environment is not None and _stale_access(err):
            _environment.access_stale = True
        failed = RunReport(duration_ms=(time.monotonic() - started) * 1000)
        failed.failures["run"] = 1
        if health.dimension_set:
            _publish_health(failed)
        expected = isinstance(err, ConfigurationError | CollectionError)
        error = str(err) if expected else f"unexpected error: {type(err).__name__}: {err}"
        logger.error("collection failed", extra={"error": error, "error_type": type(err).__name__})
        sys.stdout.flush()
        raise
    sys.stdout.flush()
    if environment.store is not None:
        environment.store.save(environment.state, deadline=lambda_end - REPORT_RESERVE_S)
    _publish_health(report)
    summary = report.as_log_fields()
    if report.scrape_failures or report.nodes_skipped:
        logger.warning("run summary", extra=summary)
    else:
        logger.info("run summary", extra=summary)
    return summary
