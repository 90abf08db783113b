"""The stack ``app.py`` deploys: the collector construct configured from CDK context."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from infra.collector import FargateInsightsCollector
from infra.settings import CollectorSettings


class FargateInsightsStack(Stack):
    """One collector per stack, so each cluster can be deployed and removed on its own."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: CollectorSettings | None = None,
        **kwargs: Any,
    ) -> None:
        """Use the settings given, else read them from context (``-c clusterName=...``)."""
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings or CollectorSettings.from_context(self.node)
        self.collector = FargateInsightsCollector(self, "Collector", settings=self.settings)


def stack_name_for(cluster_name: str) -> str:
    """CloudFormation stack names allow no underscore, EKS cluster names do."""
    return f"FargateInsights-{cluster_name.replace('_', '-')}"
