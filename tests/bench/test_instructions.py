"""`python -m bench.instructions`: valgrind's count parsed, and (where valgrind runs) a small run end to end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import instructions
from bench.instructions import callgrind_instrumented, collected_instructions

REPO = Path(__file__).resolve().parents[2]


def test_the_count_is_valgrinds_last_collected_line() -> None:
    stderr = (
        "==123== Callgrind, a call-graph generating cache profiler\n"
        "[bench 16:00:00] measured run\n"
        "==123== Events    : Ir\n"
        "==123== Collected : 1899393616\n"
        "==123==\n"
        "==123== I   refs:      1,899,393,616\n"
    )
    assert collected_instructions(stderr) == 1899393616
    assert collected_instructions("no valgrind here") is None


def test_off_valgrind_the_toggle_does_nothing() -> None:
    ran = []
    with callgrind_instrumented(False):
        ran.append(True)
    assert ran == [True]


def test_help_prints_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    assert instructions.main(["--help"]) == 0
    assert "callgrind" in capsys.readouterr().out


def test_a_small_run_counts_the_measured_run_only(tmp_path: Path) -> None:
    reason = instructions._valgrind_usable()
    if reason is not None:
        pytest.skip(f"valgrind cannot run here: {reason}")
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'lambda_src'}{os.pathsep}{REPO}")
    command = [sys.executable, "-m", "bench.instructions", "--nodes", "4", "--max-in-flight", "4"]
    command += ["--latency-ms", "5", "--output", str(tmp_path / "results.json")]
    answer = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert answer.returncode == 0, answer.stderr[-3000:]
    assert (tmp_path / "results.json").exists()  # the benchmark's results, where it was asked to write them
    found = re.search(r"instructions in the measured run: ([0-9,]+) for 4 nodes", answer.stdout)
    assert found is not None, answer.stdout[-2000:]
    counted = int(found[1].replace(",", ""))
    # A collection of 4 nodes is a few million instructions a node. Counted from the start (no toggle),
    # the interpreter's start, the imports and the warm-up run would be over a billion.
    assert 1_000_000 < counted < 300_000_000
