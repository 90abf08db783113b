"""The Makefile's AWS targets refuse to run without a cluster, before anything is installed or any AWS call."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("target", ["synth", "deploy", "destroy"])
def test_a_cluster_is_required_before_anything_is_installed(target: str) -> None:
    # `-W requirements.txt` makes the virtualenv look out of date: were the check after the install, pip
    # would run first.
    done = subprocess.run(
        ["make", "--no-print-directory", "-W", "requirements.txt", target, "CLUSTER="],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert f"usage: make {target} CLUSTER=<eks cluster name>" in done.stderr
    assert "pip" not in done.stdout + done.stderr and "npm" not in done.stdout + done.stderr


def test_help_lists_removing_the_stack() -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert "make destroy" in done.stdout and "make deploy" in done.stdout
