"""The benchmark itself runs end to end (small), so that `make bench` cannot rot unnoticed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEYS = {
    "nodes",
    "wall_s",
    "cpu_ms_per_node",
    "peak_rss_mb",
    "max_in_flight",
    "emf_bytes_per_pod",
    "cold_import_ms",
    "extract_speedup_vs_prometheus_client",
    "state_store",
    "state_bytes",
    "state_series",
    "simulator_cpu_s",
}


def _bench(output: Path, *options: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'lambda_src'}{os.pathsep}{REPO}")
    command = [sys.executable, "-m", "bench", "--nodes", "24", "--max-in-flight", "4", "--latency-ms", "5"]
    command += ["--import-repeat", "1", "--output", str(output), *options]
    answer = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert answer.returncode == 0, answer.stderr[-3000:]
    return answer


def test_bench_runs_and_writes_every_result(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    answer = _bench(output)
    results = json.loads(output.read_text())
    assert results["kubelet_name_filter"] is False and results["filtered_answers"] == 0
    assert set(results) >= KEYS
    assert results["nodes"] == 24
    assert results["pods_emitted"] == 24
    assert results["nodes_failed"] == 0 and results["nodes_skipped"] == 0
    assert 0 < results["max_in_flight"] <= 4  # the cap holds, as seen by the simulator
    assert results["emf_bytes_per_pod"] > 500
    # The measured run saved the counter history through botocore to the S3 stub, as deployed.
    assert results["state_store"] is True
    assert results["state_bytes"] > 0 and results["state_series"] > 0
    assert results["simulator_cpu_s"] > 0
    assert "state_bytes" in answer.stdout and "simulator_cpu_s" in answer.stdout
    assert results["extract_speedup_vs_prometheus_client"] > 1
    assert 0 < results["split_lines_ms_per_payload"] < results["extract_ms_per_payload"]
    assert "kubernetes" not in results["heavy_modules_at_cold_start"]
    steps = results["cpu_ms_per_node_by_step"]
    assert {"gunzip", "extraction", "Powertools EMF document"} <= set(steps)
    assert all(ms > 0 for ms in steps.values())
    assert sum(steps.values()) <= results["cpu_ms_per_node_one_at_a_time"]
    no_wait = results["cpu_ms_per_node_by_step_no_wait"]
    assert set(no_wait) == set(steps) and all(ms > 0 for ms in no_wait.values())
    assert sum(no_wait.values()) <= results["cpu_ms_per_node_one_at_a_time_no_wait"]
    assert (
        "cpu_ms_per_node" in answer.stdout and "MISS" not in answer.stdout.split("max_in_flight", 1)[1][:80]
    )


def test_bench_with_filtering_kubelets_and_extraction_share(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    _bench(output, "--kubelet-name-filter", "--breakdown", "0", "--extraction-share")
    results = json.loads(output.read_text())
    share = results["extraction_share"]
    assert share["cpu_ms_per_node_recorded"] > 0 and share["cpu_ms_per_node_extractions_reused"] > 0
    assert results["kubelet_name_filter"] is True
    assert results["pods_emitted"] == 24 and results["nodes_failed"] == 0
    assert results["filtered_answers"] >= 2 * 24  # the warm-up and the measured run got small answers
    assert results["payload_kib"] > 100  # the comparison with prometheus_client stays on whole payloads


def test_bench_without_the_state_store(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    answer = _bench(output, "--no-state-store", "--breakdown", "0")
    results = json.loads(output.read_text())
    assert results["state_store"] is False and results["state_bytes"] == 0
    assert results["pods_emitted"] == 24 and results["nodes_failed"] == 0
    assert results["simulator_cpu_s"] >= 0
    assert "no counter-state save (--no-state-store)" in answer.stdout


def test_the_benchmark_process_loads_nothing_of_the_simulator() -> None:
    """peak_rss_mb is the collector's: the simulator and the S3 stub run in processes of their own, and
    importing the fargate_sim package in the benchmark's process would add its modules (9 MB, measured)."""
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'lambda_src'}{os.pathsep}{REPO}")
    check = (
        "import sys, bench.__main__, bench.cpu_profile, bench.instructions; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fargate_sim', 'cryptography')))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", check],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert answer.stdout.strip() == "[]"
