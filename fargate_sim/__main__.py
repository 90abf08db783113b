"""``python -m fargate_sim``: run the simulated cluster standalone (for benchmarks and demos)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .faults import Faults
from .server import SimulatedCluster
from .serving import announce, stop_on_signals


def main(argv: list[str] | None = None) -> int:
    """Start, announce the endpoint, serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m fargate_sim", description=__doc__)
    parser.add_argument("--pods", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cluster-name", default="demo")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--ec2-nodes", type=int, default=2)
    parser.add_argument("--max-page-size", type=int, default=None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--name-filter",
        action="store_true",
        help="kubelets honour ?name[]= (client_golang >= 1.24): only the asked families are sent",
    )
    parser.add_argument("--access-key", default=None, help="verify token signatures with this key pair")
    parser.add_argument("--secret-key", default=None)
    parser.add_argument("--info-file", default=None, help="write {endpoint, ca_data, cluster_name, pid} here")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be from 0 to 65535 (0: any free port), not {args.port}")
    credentials = (args.access_key, args.secret_key) if args.access_key and args.secret_key else None
    sim = SimulatedCluster(
        cluster_name=args.cluster_name,
        pods=args.pods,
        seed=args.seed,
        latency_s=args.latency_ms / 1000.0,
        max_page_size=args.max_page_size,
        credentials=credentials,
        faults=Faults(rate=args.fault_rate, seed=args.seed),
        ec2_nodes=args.ec2_nodes,
        port=args.port,
        name_filter=args.name_filter,
    )
    done = stop_on_signals()
    try:
        sim.start()
    except OSError as error:  # the port is taken, or not ours to take: say so, not a traceback
        print(
            f"python -m fargate_sim: cannot listen on 127.0.0.1:{args.port}: {error.strerror or error} "
            "(pass another --port, or 0 for any free one)",
            file=sys.stderr,
        )
        return 2
    try:
        info = {
            "endpoint": sim.endpoint,
            "ca_data": sim.ca_data,
            "cluster_name": sim.cluster_name,
            "pid": os.getpid(),
        }
        announce(sim.endpoint, args.info_file, info)
        while not done.wait(0.5):
            pass
    finally:
        sim.stop()
        stats = sim.stats.snapshot()
        print(json.dumps({"stats": stats}), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
