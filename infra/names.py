"""The names the function and its deployment share, loaded from lambda_src without the collector.

``fargate_insights.names`` is the single source of truth for environment variable and health metric
names, and ``fargate_insights.settings`` validates the endpoint and CA the stack passes on; importing
them here keeps the CDK app and the function from drifting apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LAMBDA_SRC = REPO_ROOT / "lambda_src"
RBAC_MANIFEST = REPO_ROOT / "infra" / "rbac.yaml"

if str(LAMBDA_SRC) not in sys.path:
    sys.path.insert(0, str(LAMBDA_SRC))

from fargate_insights import names  # noqa: E402  (needs lambda_src on sys.path first)
from fargate_insights import settings as function_settings  # noqa: E402

__all__ = ["LAMBDA_SRC", "RBAC_MANIFEST", "REPO_ROOT", "function_settings", "names"]
