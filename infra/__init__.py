"""CDK app for the Fargate Container Insights collector: a reusable construct and the stack around it."""

from infra.collector import FargateInsightsCollector
from infra.settings import CollectorSettings, SettingsError
from infra.stack import FargateInsightsStack

__all__ = ["CollectorSettings", "FargateInsightsCollector", "FargateInsightsStack", "SettingsError"]
