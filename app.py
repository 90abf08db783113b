#!/usr/bin/env python3
"""CDK entry point: ``make synth CLUSTER=<name>`` / ``make deploy CLUSTER=<name>`` run this.

The stack is environment-agnostic (no account lookups), so synthesis needs no AWS credentials.
"""

from __future__ import annotations

import sys

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from infra.settings import CollectorSettings, SettingsError
from infra.stack import FargateInsightsStack, stack_name_for


def main() -> None:
    """Build the app; a bad or missing setting ends synthesis with the message that says how to fix it."""
    app = App()
    try:
        settings = CollectorSettings.from_context(app.node)
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    # Environment-agnostic on purpose: deploys to the CLI's account and region, synthesizes without them.
    FargateInsightsStack(
        app,
        stack_name_for(settings.cluster_name),
        settings=settings,
        description=f"Container Insights collector for the EKS Fargate pods of {settings.cluster_name}",
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    app.synth()


if __name__ == "__main__":
    main()
