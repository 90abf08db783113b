"""`python -m bench.instructions [bench options]`: the instructions the collector executes in the
benchmark's measured run, counted by valgrind's callgrind: a measure of a change that the machine's speed
does not move.

On a shared VM whose speed drifts by 1.7x within minutes, two `make bench` runs of the same code can
differ by more than most changes gain; the instruction count of the same run is repeatable to well under
1% (the event loop's batching varies a little with timing). It is a proxy for CPU time, not CPU time:
cache misses, the kernel's work and the CPU's speed are not in it, so a change that moves memory rather
than instructions is judged by `make bench`, in alternated runs, and `make cpu-profile`.

Only the benchmark's own process is run under valgrind (not the simulator nor the S3 stub), with
instrumentation off until the measured run starts and off again when it ends (`callgrind_control`, from
the benchmark itself: `--callgrind-toggle`), so the imports, the warm-up run and the baselines are not
counted, and run at native speed but for valgrind's translation. Default: 500 nodes (about a minute).
Needs valgrind (Debian: valgrind).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from .wrapped import bench_arguments, tool_arguments

DEFAULT_NODES = 500
# Before the user's options, which win: the measured run alone, and time enough for valgrind.
_DEFAULTS = ["--nodes", str(DEFAULT_NODES), "--breakdown", "0", "--import-repeat", "1", "--timeout", "900"]
_COLLECTED = re.compile(r"==\d+== Collected : (\d+)")


@contextmanager
def callgrind_instrumented(enabled: bool) -> Iterator[None]:
    """Callgrind's instrumentation on inside the block, when this process runs under callgrind with
    `--instr-atstart=no` (`enabled`); otherwise nothing."""
    if not enabled:
        yield
        return
    _callgrind_control("on")
    try:
        yield
    finally:
        _callgrind_control("off")


def _callgrind_control(state: str) -> None:
    # Synchronous: callgrind_control returns once valgrind has applied the command.
    subprocess.run(
        ["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True, timeout=60
    )


def collected_instructions(valgrind_stderr: str) -> int | None:
    """The instruction count valgrind prints at exit (`==PID== Collected : N`), if it did."""
    found = _COLLECTED.findall(valgrind_stderr)
    return int(found[-1]) if found else None


def _valgrind_usable() -> str | None:
    """Why callgrind cannot count here, or None: tried as the count needs it, a Python process under
    callgrind turning its own instrumentation on (callgrind_control reaches it through ptrace, which a
    machine may forbid)."""
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (Debian: apt-get install valgrind)"
    toggle = "import bench.instructions as i; i._callgrind_control('on'); i._callgrind_control('off')"
    with tempfile.TemporaryDirectory(prefix="instructions-probe-") as scratch:
        probe = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--trace-children=no",
             f"--callgrind-out-file={os.path.join(scratch, 'callgrind.out')}", sys.executable, "-c", toggle],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
    if probe.returncode != 0:
        return (
            f"a process under callgrind could not toggle its instrumentation: {probe.stderr.strip()[-300:]}"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    args = tool_arguments(argv, __doc__ or "", _valgrind_usable, "count instructions")
    if isinstance(args, int):
        return args
    with tempfile.TemporaryDirectory(prefix="instructions-") as scratch:
        # Not bench/results.json by default: this run's times are valgrind's, not the collector's.
        bench = bench_arguments(args, [*_DEFAULTS, "--output", os.path.join(scratch, "results.json")])
        command = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no", "--trace-children=no",
            f"--callgrind-out-file={os.path.join(scratch, 'callgrind.out')}",
            sys.executable, "-m", "bench", "--callgrind-toggle", *bench.argv,
        ]  # fmt: skip
        run = subprocess.run(command, stderr=subprocess.PIPE, text=True, check=False)
    if run.returncode != 0:
        sys.stderr.write(run.stderr[-3000:])
        print(f"the benchmark under valgrind exited with {run.returncode}", file=sys.stderr)
        return run.returncode
    nodes = bench.options.nodes
    instructions = collected_instructions(run.stderr)
    if not instructions:
        print("valgrind counted no instruction of the measured run", file=sys.stderr)
        return 1
    print(
        f"\ninstructions in the measured run: {instructions:,} for {nodes} nodes, "
        f"{instructions / nodes / 1e6:.3f} million a node"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
