"""One collection cycle: list the Fargate nodes, scrape them concurrently, emit one document per pod.

The scrapes are at most `max_in_flight` requests at once (the API server does not throttle node-proxy
calls, so the collector must), multiplexed on the calling thread (`https_many`), which extracts, computes
and emits each batch of answers as it comes. A node that fails costs only its own pods.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .cadvisor import Extraction, extract
from .emf import PodContext, PodDocumentBuilder, dumps
from .kube_api import NODE_GONE, FargateNode, KubeApiError, KubeClient, as_api_error
from .pod_metrics import CounterState, PodMetrics, compute, prune

logger = logging.getLogger(__name__)


# Counter samples (and the last run's time) older than this are not used for rates.
HISTORY_MAX_AGE_MS = 15 * 60 * 1000
# Per-node log lines of one kind (a failure reason, a node gone, malformed lines) written in one run; the
# rest are counted in the run summary (`node_lines_not_logged`). A problem shared by every node of a
# 5,000-node cluster would otherwise write 5,000 lines a minute: about 65 GB, $32, of logs a month.
NODE_LINES_PER_KIND = 20


class CollectionError(Exception):
    """Nothing could be collected; the message says what to fix."""


@dataclass(slots=True)
class RunReport:
    """What a cycle did, for the summary log line and the health metrics."""

    nodes_discovered: int = 0
    nodes_scraped: int = 0
    nodes_skipped: int = 0
    nodes_gone: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    pods_emitted: int = 0
    pods_without_metrics: int = 0
    malformed_lines: int = 0
    duration_ms: float = 0.0
    max_in_flight: int = 0
    # Per-node log lines of each kind this run, written or not (see NODE_LINES_PER_KIND).
    node_lines: Counter[str] = field(default_factory=Counter)

    @property
    def scrape_failures(self) -> int:
        return sum(self.failures.values())

    def as_log_fields(self) -> dict[str, Any]:
        return {
            "nodes_discovered": self.nodes_discovered,
            "nodes_scraped": self.nodes_scraped,
            "nodes_failed": self.scrape_failures,
            "nodes_skipped": self.nodes_skipped,
            "nodes_gone": self.nodes_gone,
            "failures_by_reason": dict(sorted(self.failures.items())),
            "pods_emitted": self.pods_emitted,
            "pods_without_metrics": self.pods_without_metrics,
            "malformed_lines": self.malformed_lines,
            "duration_ms": round(self.duration_ms, 1),
            "max_in_flight": self.max_in_flight,
            "node_lines_not_logged": {
                kind: count - NODE_LINES_PER_KIND
                for kind, count in sorted(self.node_lines.items())
                if count > NODE_LINES_PER_KIND
            },
        }


@dataclass(slots=True)
class CollectorState:
    """What survives between cycles: counter samples and when the last cycle ran (ms)."""

    counters: CounterState = field(default_factory=dict)
    last_run_ms: int | None = None


@dataclass(frozen=True, slots=True)
class _Scrape:
    node: FargateNode
    extraction: Extraction | None
    error: KubeApiError | None
    scraped_at_ms: int


# Emitted documents go to a sink (stdout in Lambda); the second argument is the pod's metrics.
Sink = Callable[[str, PodMetrics], None]


class Collector:
    def __init__(
        self,
        cluster_name: str,
        kube: KubeClient,
        state: CollectorState,
        sink: Sink,
        max_in_flight: int = 64,
        request_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cluster = cluster_name
        self._kube = kube
        self._state = state
        self._sink = sink
        self._max_in_flight = max_in_flight
        self._timeout_s = request_timeout_s
        self._clock = clock
        self._builder = PodDocumentBuilder(cluster_name)

    def run(self, deadline: float) -> RunReport:
        """Collect every Fargate pod once; `deadline` is a time.monotonic() value the run must end by.

        Raises CollectionError only when nothing at all could be collected (listing failed, or every
        scrape was refused), so that the function's error alarm means "the collector is broken".
        """
        started = time.monotonic()
        started_ms = int(self._clock() * 1000)
        report = RunReport()
        # History older than its maximum age (a cold start after the function was stopped or failing
        # for a while) is forgotten before it is used: a rate over hours is not this minute's usage.
        prune(self._state.counters, started_ms, HISTORY_MAX_AGE_MS)
        if self._state.last_run_ms is not None and self._state.last_run_ms < started_ms - HISTORY_MAX_AGE_MS:
            self._state.last_run_ms = None
        try:
            nodes = self._kube.list_fargate_nodes(deadline)
        except KubeApiError as err:
            raise CollectionError(_listing_advice(err)) from err
        report.nodes_discovered = len(nodes)
        if nodes:
            self._scrape_all(nodes, deadline, report)
        if report.nodes_scraped or not nodes:
            # Pods whose cgroups were created after this moment have CPU counters that started from zero.
            self._state.last_run_ms = started_ms
        report.duration_ms = (time.monotonic() - started) * 1000
        refused = bool(report.failures) and set(report.failures) <= _ACCESS_FAILURES
        if nodes and not report.nodes_scraped and refused:
            raise CollectionError(_scrape_advice(report))
        return report

    def _scrape_all(self, nodes: list[FargateNode], deadline: float, report: RunReport) -> None:
        scrapes = self._kube.scrape_cadvisor(nodes, deadline, self._max_in_flight, self._timeout_s)
        consumed = 0
        for batch in scrapes:
            # One clock reading per batch: its answers all arrived in one round of the selector.
            scraped_at_ms = int(self._clock() * 1000)
            # Every payload of the batch is extracted before any pod is computed and emitted: each
            # step running over many nodes in a row costs less CPU than the steps taking turns.
            results = [_scraped(node, outcome, scraped_at_ms) for node, outcome in batch]
            for result in results:
                self._consume(result, report)
            consumed += len(results)
        report.nodes_skipped += len(nodes) - consumed
        report.max_in_flight = scrapes.peak_in_flight

    def _consume(self, scrape: _Scrape, report: RunReport) -> None:
        if scrape.error is not None:
            if scrape.error.reason == NODE_GONE:
                # Normal churn, not a failure: on a busy cluster dozens of pods end during every run,
                # and counting them as failures would keep the scrape-failure alarm firing.
                report.nodes_gone += 1
                _node_line(report, "node_gone", logging.INFO, "node gone before its scrape", scrape.node.name)
                return
            _count_failure(report, scrape.node.name, scrape.error.reason, str(scrape.error))
            return
        extraction = scrape.extraction
        assert extraction is not None
        if not extraction.pods:
            # A Fargate node runs exactly one pod: an answer without one is not a usable scrape, and
            # counting it as scraped would make the pod vanish from the metrics without a trace.
            error = f"the answer has no pod series ({extraction.malformed_lines} malformed lines)"
            _count_failure(report, scrape.node.name, "no_pod_series", error)
            return
        report.nodes_scraped += 1
        report.malformed_lines += extraction.malformed_lines
        if extraction.malformed_lines:
            _node_line(
                report,
                "malformed_lines",
                logging.WARNING,
                "malformed lines ignored",
                scrape.node.name,
                {"malformed_lines": extraction.malformed_lines},
            )
        where = PodContext(cluster_name=self._cluster, node_name=scrape.node.name, host=scrape.node.hostname)
        for pod in extraction.pods.values():
            try:
                metrics = compute(pod, self._state.counters, scrape.scraped_at_ms, self._state.last_run_ms)
                document = self._builder.build(metrics, where)
                if document is None:
                    report.pods_without_metrics += 1
                    continue
                self._sink(dumps(document), metrics)
            except Exception as err:  # a bug must cost this pod's document, not the rest of the run
                error = f"{type(err).__name__}: {err}"
                _count_failure(report, scrape.node.name, "unexpected", error, "pod document failed")
                continue
            report.pods_emitted += 1


def _count_failure(
    report: RunReport, node: str, reason: str, error: str, message: str = "node scrape failed"
) -> None:
    """A node (or one of its pods) lost: counted under its reason, and logged with what went wrong."""
    report.failures[reason] += 1
    _node_line(
        report, f"failure:{reason}", logging.WARNING, message, node, {"reason": reason, "error": error}
    )


def _node_line(
    report: RunReport, kind: str, level: int, message: str, node: str, fields: dict[str, Any] | None = None
) -> None:
    """One node's log line, unless NODE_LINES_PER_KIND of its kind were written this run: then counted."""
    report.node_lines[kind] += 1
    if report.node_lines[kind] <= NODE_LINES_PER_KIND:
        logger.log(level, message, extra={"node": node, **(fields or {})})


_ACCESS_FAILURES = frozenset({"http_401", "http_403", "tls"})


def _scraped(node: FargateNode, outcome: bytes | Exception, scraped_at_ms: int) -> _Scrape:
    if isinstance(outcome, Exception):
        return _Scrape(node, None, as_api_error(outcome), 0)
    try:
        return _Scrape(node, extract(outcome), None, scraped_at_ms)
    except Exception as err:  # a bug must cost one node, not the run
        return _Scrape(node, None, KubeApiError("unexpected", f"{type(err).__name__}: {err}"), 0)


def _listing_advice(err: KubeApiError) -> str:
    advice = {
        "http_401": (
            "the API server did not accept the function's IAM identity: map the role to a Kubernetes "
            "group with an EKS access entry (the CDK app creates one) or an aws-auth mapRoles entry"
        ),
        "http_403": (
            "the role's Kubernetes group may not list nodes: apply infra/rbac.yaml "
            "(`kubectl apply -f infra/rbac.yaml`) and check the access entry's group matches it"
        ),
        "timeout": (
            "the API server did not answer in time: for a private endpoint, run the function in the "
            "cluster's VPC and allow 443 from its security group on the cluster security group; a "
            "public endpoint limited to some CIDRs (publicAccessCidrs) does not answer a function "
            "outside a VPC: run it in a VPC whose NAT address is in them, or enable private endpoint "
            "access and run it in the cluster's VPC"
        ),
        "connection": (
            "the API server could not be reached: check the endpoint, and for a private endpoint the "
            "function's VPC, subnets and security groups"
        ),
        "tls": (
            "TLS verification failed: the API server's certificate is not signed by the cluster's CA. "
            "CLUSTER_CA_DATA, when set, must be the cluster's certificateAuthority.data unchanged, and "
            "CLUSTER_ENDPOINT the cluster's endpoint (verification cannot be turned off)"
        ),
        "http_429": (
            "the API server kept throttling the LIST past the run's deadline (API Priority and "
            "Fairness): raise the function's timeout, or give its user a FlowSchema with more concurrency"
        ),
    }.get(err.reason, "listing Fargate nodes failed")
    return f"Could not list Fargate nodes: {advice}. ({err})"


def _scrape_advice(report: RunReport) -> str:
    reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(report.failures.items()))
    return (
        f"Every node scrape was refused ({reasons}): the role's Kubernetes group needs `get` on "
        "`nodes/proxy`; apply infra/rbac.yaml (`kubectl apply -f infra/rbac.yaml`)."
    )
