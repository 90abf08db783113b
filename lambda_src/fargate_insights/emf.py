"""Container Insights EMF documents for Fargate pods, built with Powertools' EphemeralMetrics.

One document per pod per cycle, namespace `ContainerInsights`, exactly the three dimension sets that
ADOT's Fargate pipeline writes, and the top-level fields Container Insights queries rely on.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from . import __version__
from .names import CI_NAMESPACE
from .pod_metrics import PodMetrics

LAUNCH_TYPE: Final = "fargate"
DOCUMENT_TYPE: Final = "Pod"
DOCUMENT_VERSION: Final = "0"

# (metric name, PodMetrics attribute, unit). Millicores have no CloudWatch unit: "None", as the contract says.
POD_METRICS: Final = (
    ("pod_cpu_usage_total", "cpu_usage_millicores", MetricUnit.NoUnit),
    ("pod_cpu_limit", "cpu_limit_millicores", MetricUnit.NoUnit),
    ("pod_cpu_utilization_over_pod_limit", "cpu_utilization", MetricUnit.Percent),
    ("pod_memory_working_set", "memory_working_set_bytes", MetricUnit.Bytes),
    ("pod_memory_limit", "memory_limit_bytes", MetricUnit.Bytes),
    ("pod_memory_utilization_over_pod_limit", "memory_utilization", MetricUnit.Percent),
    ("pod_network_rx_bytes", "network_rx_bytes_per_second", MetricUnit.BytesPerSecond),
    ("pod_network_tx_bytes", "network_tx_bytes_per_second", MetricUnit.BytesPerSecond),
)

_MAX_DIMENSION_VALUE = 1024


@dataclass(slots=True, frozen=True)
class PodContext:
    """Where a pod runs: the cluster, and the node's `kubernetes.io/hostname` label."""

    cluster_name: str
    node_name: str
    host: str


def valid_dimension_value(value: str) -> bool:
    """CloudWatch's rule: 1-1024 ASCII characters, no control characters, not only spaces."""
    return (
        0 < len(value) <= _MAX_DIMENSION_VALUE
        and value.isascii()
        and value.isprintable()
        and not value.isspace()
    )


class PodDocumentBuilder:
    """Builds one EMF document per pod; reuses one EphemeralMetrics (per-instance state) for speed."""

    def __init__(self, cluster_name: str) -> None:
        self._cluster = cluster_name
        # service="" keeps Powertools from adding a `service` dimension to the Container Insights sets.
        self._metrics = EphemeralMetrics(namespace=CI_NAMESPACE, service="")

    def build(self, metrics: PodMetrics, where: PodContext) -> dict[str, Any] | None:
        """The pod's document, or None when it has no metric to publish or its names are not publishable."""
        if not (valid_dimension_value(metrics.namespace) and valid_dimension_value(metrics.pod)):
            return None
        values = [
            (name, unit, value)
            for name, attribute, unit in POD_METRICS
            if (value := getattr(metrics, attribute)) is not None and math.isfinite(value)
        ]
        if not values:
            return None
        emf = self._metrics
        emf.clear_metrics()
        emf.add_dimension(name="ClusterName", value=self._cluster)
        emf.add_dimension(name="LaunchType", value=LAUNCH_TYPE)
        emf.add_dimensions(ClusterName=self._cluster, Namespace=metrics.namespace, LaunchType=LAUNCH_TYPE)
        emf.add_dimensions(
            ClusterName=self._cluster,
            Namespace=metrics.namespace,
            PodName=metrics.pod,
            LaunchType=LAUNCH_TYPE,
        )
        for name, unit, value in values:
            emf.add_metric(name=name, unit=unit, value=value)
        emf.add_metadata(key="NodeName", value=where.host)
        emf.add_metadata(key="Type", value=DOCUMENT_TYPE)
        emf.add_metadata(key="Version", value=DOCUMENT_VERSION)
        emf.add_metadata(
            key="kubernetes",
            value={
                "host": where.host,
                "namespace_name": metrics.namespace,
                "pod_name": metrics.pod,
                "pod_id": metrics.uid,
                "node_name": where.node_name,
            },
        )
        emf.add_metadata(key="CollectorVersion", value=__version__)
        emf.set_timestamp(metrics.timestamp_ms)
        # Cleared at the start of the next build, not here: once per pod is enough.
        return dict(emf.serialize_metric_set())


def dumps(document: dict[str, Any]) -> str:
    """One log line per document; NaN can never appear (filtered above), so refuse it outright."""
    return json.dumps(document, allow_nan=False, ensure_ascii=True, separators=(",", ":"))
