"""Ctrl-C, as a user presses it in a terminal: `demo` and `collect` end with "interrupted" and exit code
130, without a traceback, and leave nothing running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from fargate_insights.__main__ import INTERRUPTED
from tests.cli.processes import group_left

from .test_demo import demo_env

REPO = Path(__file__).resolve().parents[2]
# A terminal's Ctrl-C raises KeyboardInterrupt; a child started by a test runner may inherit SIGINT
# ignored, so the handler is set again before the command line runs.
WITH_CTRL_C = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'fargate_insights'; runpy.run_module('fargate_insights', run_name='__main__')"
)


def interrupt_after(command: list[str], marker: str, env: dict[str, str]) -> tuple[int, str, str, bool]:
    """Start `command`, press Ctrl-C once stdout shows `marker`: (exit code, stdout, stderr, leftovers)."""
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    seen = []
    try:
        for line in process.stdout:
            seen.append(line)
            if marker in line:
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return process.returncode, "".join(seen) + out, err, group_left(process.pid)


def test_ctrl_c_between_demo_cycles() -> None:
    command = [sys.executable, "-c", WITH_CTRL_C, "demo", "--pods", "3", "--cycles", "3", "--interval", "60"]
    code, out, err, leftover = interrupt_after(command, "summary: 3 Fargate nodes", demo_env())
    assert code == INTERRUPTED == 130, err
    assert "Traceback" not in err, err
    assert err.splitlines()[-1] == "interrupted"
    assert not leftover
    port = int(out.split("at https://127.0.0.1:")[1].split(":")[0])
    with socket.socket() as probe:
        probe.settimeout(2)
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the simulator stopped"


COLLECT_DRIVER = textwrap.dedent(
    """
    # `collect` against moto and a cluster whose nodes never answer (as in tests/cli/test_preflight).
    import signal, sys
    from moto import mock_aws
    from fargate_sim import Faults, SimulatedCluster

    signal.signal(signal.SIGINT, signal.default_int_handler)
    with mock_aws():
        import boto3
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.eks.models import eks_backends
        from fargate_insights.__main__ import _entry

        hanging = Faults(rate=1.0, kinds=("timeout",), timeout_s=60.0)
        with SimulatedCluster(cluster_name="c", pods=4, region="us-west-2", faults=hanging) as sim:
            boto3.client("eks", region_name="us-west-2").create_cluster(
                name="c", roleArn="arn:aws:iam::123456789012:role/eks",
                resourcesVpcConfig={"subnetIds": ["subnet-1"]},
            )
            cluster = eks_backends[DEFAULT_ACCOUNT_ID]["us-west-2"].clusters["c"]
            cluster.endpoint, cluster.certificate_authority = sim.endpoint, {"data": sim.ca_data}
            sys.argv = ["fargate_insights", "collect", "--cluster", "c", "--region", "us-west-2"]
            code = _entry()
    sys.exit(code)
    """
)


def test_ctrl_c_during_the_scrapes_of_collect(tmp_path) -> None:
    driver = tmp_path / "collect_driver.py"
    driver.write_text(COLLECT_DRIVER)
    env = {**demo_env(), "AWS_ACCESS_KEY_ID": "FOOBARKEY", "AWS_SECRET_ACCESS_KEY": "FOOBARSECRET"}
    code, out, err, leftover = interrupt_after([sys.executable, str(driver)], "Fargate nodes found", env)
    assert "cAdvisor read" not in out, "interrupted while the nodes hang"
    assert code == INTERRUPTED, err
    assert "Traceback" not in err, err
    assert err.splitlines()[-1] == "interrupted"
    assert not leftover
