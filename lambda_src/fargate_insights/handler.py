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
from .kube_api import KubeClient
from .pod_metrics import PodMetrics
from .settings import ConfigurationError, Settings
from .state_store import S3StateStore, StateStore, s3_client

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

# The run must report before Lambda's timeout: keep this share of the remaining time in reserve.
DEADLINE_RESERVE_SHARE = 0.1
DEADLINE_RESERVE_MIN_S = 1.0
DEADLINE_RESERVE_MAX_S = 5.0


@dataclass(slots=True)
class _Environment:
    """Per-execution-environment state, rebuilt only when the configuration changes."""

    settings: Settings
    kube: KubeClient
    state: CollectorState
    store: StateStore | None


_environment: _Environment | None = None


def _environment_for(settings: Settings) -> _Environment:
    global _environment
    if _environment is not None and _environment.settings == settings:
        return _environment
    if _environment is not None:
        _environment.kube.close()
    session = boto3.session.Session(region_name=settings.region)
    if settings.endpoint and settings.ca_pem:
        access = ClusterAccess(endpoint=settings.endpoint, ca_pem=settings.ca_pem)
    else:
        access = describe_cluster(session, settings.cluster_name, settings.region)
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
    if settings.state_bucket and settings.state_key:
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


def _deadline(context: Any) -> float:
    remaining_s = float(context.get_remaining_time_in_millis()) / 1000.0
    reserve = min(DEADLINE_RESERVE_MAX_S, max(DEADLINE_RESERVE_MIN_S, remaining_s * DEADLINE_RESERVE_SHARE))
    return time.monotonic() + max(0.0, remaining_s - reserve)


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
    try:
        settings = Settings.from_env()
        health.add_dimension(name=names.HEALTH_DIMENSION, value=settings.cluster_name)
        logger.append_keys(cluster=settings.cluster_name)
        environment = _environment_for(settings)
        collector = Collector(
            settings.cluster_name,
            environment.kube,
            environment.state,
            sink=_write_document,
            max_in_flight=settings.max_in_flight,
            request_timeout_s=settings.request_timeout_s,
        )
        report = collector.run(_deadline(context))
    except (ConfigurationError, CollectionError) as err:
        failed = RunReport(duration_ms=(time.monotonic() - started) * 1000)
        failed.failures["run"] = 1
        if health.dimension_set:
            _publish_health(failed)
        logger.error("collection failed", extra={"error": str(err), "error_type": type(err).__name__})
        sys.stdout.flush()
        raise
    sys.stdout.flush()
    if environment.store is not None:
        environment.store.save(environment.state)
    _publish_health(report)
    summary = report.as_log_fields()
    if report.scrape_failures or report.nodes_skipped:
        logger.warning("run summary", extra=summary)
    else:
        logger.info("run summary", extra=summary)
    return summary
