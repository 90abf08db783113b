"""cfn-lint accepts the synthesized templates of every configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.infra.conftest import Synthesized

# W3005 (redundant DependsOn): CDK's lambda.Function always adds an explicit DependsOn on its role,
# next to the Fn::GetAtt that already orders them. Harmless, and not ours to remove.
IGNORED_CHECKS = ("W3005",)
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")


def test_cfn_lint_passes(all_configs: list[Synthesized]) -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    command = [
        str(cfn_lint),
        "--format",
        "parseable",
        "--regions",
        *REGIONS,
        "--ignore-checks",
        *IGNORED_CHECKS,
        "--",
        *(str(synth.template_path) for synth in all_configs),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    # 0 = clean; any error (2) or warning (4) fails, except the checks ignored above.
    assert result.returncode == 0, result.stdout + result.stderr
