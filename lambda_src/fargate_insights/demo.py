"""`python -m fargate_insights demo`: the real handler, cycle after cycle, against a simulated cluster.

Nothing here replaces the collector's code: the demo starts the simulator (an HTTPS API server with
Fargate nodes and kubelet payloads on localhost), points the handler at it through the same
environment variables the CDK app sets, invokes it like Lambda does, and reads back what it wrote.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import os
import sys
import time
import uuid
from typing import Any, TextIO

from .report_table import pod_documents, render

# Fake credentials: the simulator checks the token's SigV4 signature with exactly these.
DEMO_ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
DEMO_SECRET_KEY = "wJalrXUtnEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # noqa: S105 (AWS's documented example key)
DEMO_CLUSTER = "demo"
DEMO_REGION = "us-east-1"
# --interval at most an hour (time.sleep overflows near 1e10 s); --timeout at most Lambda's own limit.
MAX_INTERVAL_S = 3600.0
MAX_TIMEOUT_S = 900.0


class LambdaContextStub:
    """The attributes of Lambda's context object that the handler and Powertools read."""

    def __init__(self, timeout_s: float) -> None:
        self._deadline = time.monotonic() + timeout_s
        self.function_name = "fargate-insights-demo"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = (
            f"arn:aws:lambda:{DEMO_REGION}:123456789012:function:fargate-insights-demo"
        )
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = "/aws/lambda/fargate-insights-demo"
        self.log_stream_name = "demo"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pods", type=int, default=36, help="Fargate pods in the simulated cluster")
    parser.add_argument("--cycles", type=int, default=3, help="how many collection cycles to run")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between cycles")
    parser.add_argument("--format", choices=("table", "emf"), default="table", help="what to print")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of nodes that fail each cycle")
    parser.add_argument("--seed", type=int, default=7, help="seed of the simulated cluster")
    parser.add_argument("--timeout", type=float, default=50.0, help="the simulated Lambda timeout (s)")


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the demo; `out`/`err` default to the streams current at the call (not at import)."""
    out = out or sys.stdout
    err = err or sys.stderr
    problem = _invalid(args)
    if problem:
        err.write(f"{problem}\n")
        return 2
    from fargate_sim import Faults, SimulatedCluster

    faults = Faults(rate=args.fault_rate, seed=args.seed) if args.fault_rate > 0 else None
    sim = SimulatedCluster(
        cluster_name=DEMO_CLUSTER,
        pods=args.pods,
        seed=args.seed,
        credentials=(DEMO_ACCESS_KEY, DEMO_SECRET_KEY),
        faults=faults,
        region=DEMO_REGION,
        # cAdvisor re-reads each cgroup every housekeeping interval; a shorter one than the cycles'
        # spacing gives every cycle fresh samples, so rates appear from the second cycle even when
        # the cycles are a fraction of a second apart.
        housekeeping_s=min(1.0, args.interval / 2),
    )
    with sim, _demo_environment(sim.endpoint, sim.ca_data):
        from . import handler

        log_handler = handler.logger.registered_handler
        if isinstance(log_handler, logging.StreamHandler):
            log_handler.setStream(err)  # the function's logs: stderr, so stdout is the tables or EMF only
        if args.format == "table":
            out.write(
                f"Simulated EKS cluster {DEMO_CLUSTER!r} at {sim.endpoint}: {args.pods} Fargate pods, "
                f"{args.cycles} cycles {args.interval:g} s apart\n"
            )
        try:
            failed_cycles = _cycles(args, handler, out, err)
        finally:
            # The execution environment the handler kept (its connection pool to the simulator).
            if handler._environment is not None:
                handler._environment.kube.close()
                handler._environment = None
    if failed_cycles:
        err.write(f"{failed_cycles} of {args.cycles} cycles failed\n")
        return 1
    return 0


def _cycles(args: argparse.Namespace, handler: Any, out: TextIO, err: TextIO) -> int:
    """Invoke the handler `args.cycles` times and print what each invocation wrote; the failed count."""
    failed_cycles = 0
    for cycle in range(1, args.cycles + 1):
        if cycle > 1:
            time.sleep(args.interval)
        captured = io.StringIO()
        summary: dict[str, Any] | None = None
        failure = ""
        with contextlib.redirect_stdout(captured):
            try:
                summary = handler.lambda_handler({}, LambdaContextStub(args.timeout))
            except Exception as error:
                failure = f"{type(error).__name__}: {error}"
        lines = captured.getvalue().splitlines()
        heading = f"cycle {cycle}/{args.cycles}"
        outcome = describe_summary(summary) if summary is not None else f"run failed: {failure}"
        failed_cycles += summary is None
        if args.format == "emf":
            for line in lines:
                if '"_aws"' in line:
                    out.write(line + "\n")
            out.flush()
            err.write(f"{heading} summary: {outcome}\n")
            continue
        documents = pod_documents(lines)
        out.write(f"\n== {heading}: {len(documents)} pod documents ==\n")
        out.write(render(documents) + "\n")
        out.write(f"summary: {outcome}\n")
        if cycle == 1 and args.cycles > 1:
            out.write("(CPU and network are rates: they appear from the second cycle on)\n")
    out.flush()
    return failed_cycles


def _invalid(args: argparse.Namespace) -> str:
    """What is wrong with the options, or "" when they are usable."""
    if args.pods < 1 or args.cycles < 1:
        return "--pods and --cycles must be at least 1"
    if not 0.0 <= args.fault_rate <= 1.0:
        return "--fault-rate is a share of the nodes: from 0 to 1 (e.g. 0.2)"
    if not (math.isfinite(args.interval) and 0.0 <= args.interval <= MAX_INTERVAL_S):
        return f"--interval must be 0 or more seconds, at most {MAX_INTERVAL_S:g}"
    if not (math.isfinite(args.timeout) and 0.0 < args.timeout <= MAX_TIMEOUT_S):
        return f"--timeout must be more than 0 seconds, at most {MAX_TIMEOUT_S:g} (Lambda's limit)"
    return ""


def describe_summary(summary: dict[str, Any]) -> str:
    """The handler's run summary in words: every node is scraped, failed (by reason) or skipped."""
    failures: dict[str, int] = summary.get("failures_by_reason") or {}
    failed = summary.get("nodes_failed", 0)
    text = (
        f"{summary.get('nodes_discovered', 0)} Fargate nodes: {summary.get('nodes_scraped', 0)} scraped, "
        f"{failed} failed"
    )
    if failures:
        text += " (" + ", ".join(f"{reason}: {count}" for reason, count in sorted(failures.items())) + ")"
    text += (
        f", {summary.get('nodes_skipped', 0)} skipped at the deadline, "
        f"{summary.get('nodes_gone', 0)} gone since the list; "
        f"{summary.get('pods_emitted', 0)} pod documents, "
        f"{summary.get('pods_without_metrics', 0)} pods without metrics, "
        f"{summary.get('malformed_lines', 0)} malformed lines ignored; "
        f"{summary.get('duration_ms', 0):.0f} ms"
    )
    return text


@contextlib.contextmanager
def _demo_environment(endpoint: str, ca_data: str) -> Any:
    """Point the handler at the simulator, with the demo's fake credentials only for this process.

    None of the user's AWS setup applies: an endpoint URL, FIPS or dual-stack endpoints, or a profile
    (from the environment or ~/.aws/config) would move the token's STS host or change its signer, and
    the simulator would refuse every token. So every AWS_ variable is cleared and no AWS file is read.
    """
    values = {
        "CLUSTER_NAME": DEMO_CLUSTER,
        "CLUSTER_ENDPOINT": endpoint,
        "CLUSTER_CA_DATA": ca_data,
        "AWS_ACCESS_KEY_ID": DEMO_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": DEMO_SECRET_KEY,
        "AWS_REGION": DEMO_REGION,
        "AWS_DEFAULT_REGION": DEMO_REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "fargate-insights",
    }
    cleared = [key for key in os.environ if key.startswith("AWS_") and key not in values]
    saved = {key: os.environ.get(key) for key in (*values, *cleared)}
    os.environ.update(values)
    for key in cleared:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
