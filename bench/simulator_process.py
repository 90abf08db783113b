"""The simulated cluster in its own process, so that its CPU is not counted as the collector's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

STARTUP_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    endpoint: str
    ca_data: str
    cluster_name: str
    pid: int
    started_in_s: float


@contextmanager
def simulator(
    *,
    pods: int,
    latency_ms: float,
    cluster_name: str,
    access_key: str,
    secret_key: str,
    seed: int = 7,
    name_filter: bool = False,
) -> Iterator[tuple[RunningSimulator, dict[str, Any]]]:
    """Start `python -m fargate_sim`; yields its address and a dict filled with its stats when it stops."""
    with tempfile.TemporaryDirectory(prefix="fargate-bench-") as tmp:
        info_file = os.path.join(tmp, "sim.json")
        stderr_path = os.path.join(tmp, "sim.stderr")
        command = [
            sys.executable,
            "-m",
            "fargate_sim",
            "--pods",
            str(pods),
            "--seed",
            str(seed),
            "--latency-ms",
            str(latency_ms),
            "--cluster-name",
            cluster_name,
            "--access-key",
            access_key,
            "--secret-key",
            secret_key,
            "--info-file",
            info_file,
        ]
        if name_filter:
            command.append("--name-filter")
        started = time.monotonic()
        with open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        stats: dict[str, Any] = {}
        try:
            info = wait_for_info(info_file, process, stderr_path)
            yield (
                RunningSimulator(
                    endpoint=info["endpoint"],
                    ca_data=info["ca_data"],
                    cluster_name=info["cluster_name"],
                    pid=process.pid,
                    started_in_s=time.monotonic() - started,
                ),
                stats,
            )
        finally:
            stop(process, timeout_s=30)
            stats.update(_final_stats(stderr_path))


def wait_for_info(
    info_file: str, process: subprocess.Popen[bytes], stderr_path: str, what: str = "the simulator"
) -> dict[str, Any]:
    """The JSON a helper process writes to `info_file` once it serves; its stderr if it died first."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if os.path.exists(info_file):
            with open(info_file, encoding="utf-8") as handle:
                info: dict[str, Any] = json.load(handle)
            return info
        if process.poll() is not None:
            with open(stderr_path, encoding="utf-8", errors="replace") as handle:
                raise RuntimeError(f"{what} exited with {process.returncode}: {handle.read()[-2000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start within {STARTUP_TIMEOUT_S:.0f} s")


def stop(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM (the helpers print their stats on the way out), then SIGKILL if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _final_stats(stderr_path: str) -> dict[str, Any]:
    """The simulator prints {"stats": ...} on stderr when it stops."""
    with open(stderr_path, encoding="utf-8", errors="replace") as handle:
        for line in reversed(handle.read().splitlines()):
            if line.startswith('{"stats"'):
                stats: dict[str, Any] = json.loads(line)["stats"]
                return stats
    return {}
