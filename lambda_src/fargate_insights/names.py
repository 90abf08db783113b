"""Names shared by the function and its deployment (environment, health metrics).

Kept free of imports so that the CDK app can use them without loading the collector.
"""

from typing import Final

# Environment variables the function reads.
ENV_CLUSTER_NAME: Final = "CLUSTER_NAME"
ENV_CLUSTER_ENDPOINT: Final = "CLUSTER_ENDPOINT"
ENV_CLUSTER_CA_DATA: Final = "CLUSTER_CA_DATA"
ENV_MAX_IN_FLIGHT: Final = "MAX_IN_FLIGHT"
ENV_REQUEST_TIMEOUT: Final = "REQUEST_TIMEOUT_SECONDS"
ENV_STATE_BUCKET: Final = "STATE_BUCKET"
ENV_STATE_KEY: Final = "STATE_KEY"

# The function's own health metrics: their namespace is not ContainerInsights.
HEALTH_NAMESPACE: Final = "FargateInsights"
HEALTH_DIMENSION: Final = "ClusterName"
METRIC_NODES_DISCOVERED: Final = "NodesDiscovered"
METRIC_NODES_SCRAPED: Final = "NodesScraped"
METRIC_SCRAPE_FAILURES: Final = "ScrapeFailures"
METRIC_NODES_SKIPPED: Final = "NodesSkipped"
METRIC_NODES_GONE: Final = "NodesGone"
METRIC_PODS_EMITTED: Final = "PodsEmitted"
METRIC_RUN_DURATION: Final = "RunDuration"  # milliseconds

# Container Insights.
CI_NAMESPACE: Final = "ContainerInsights"
FARGATE_LABEL: Final = "eks.amazonaws.com/compute-type"
FARGATE_LABEL_VALUE: Final = "fargate"
