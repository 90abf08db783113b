"""The Makefile's AWS targets refuse to run without a cluster, before any AWS call, and say how to call them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("target", ["synth", "deploy", "destroy"])
def test_a_cluster_is_required(target: str) -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", target, "CLUSTER="],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert f"usage: make {target} CLUSTER=<eks cluster name>" in done.stderr


def test_help_lists_removing_the_stack() -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert "make destroy" in done.stdout and "make deploy" in done.stdout
