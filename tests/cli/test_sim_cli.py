"""`python -m fargate_sim`, run standalone: a port it cannot have is a one-line error, not a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_sim(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "lambda_src"), str(REPO)])}
    command = [sys.executable, "-m", "fargate_sim", "--pods", "1", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=30)


def test_a_busy_port_exits_2_with_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_sim("--port", str(port))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"python -m fargate_sim: cannot listen on 127.0.0.1:{port}: "), line
    assert "--port" in line
    assert result.stdout == ""


def test_a_port_out_of_range_is_a_usage_error() -> None:
    result = run_sim("--port", "70000")
    assert result.returncode == 2
    assert "--port must be from 0 to 65535" in result.stderr
    assert "Traceback" not in result.stderr
