"""`python -m bench.cpu_profile [bench options]`: where the collector's CPU goes in the benchmark's
measured run, by native component (the interpreter, the regular-expression engine, zlib-ng, OpenSSL,
the kernel...), from Linux perf's CPU-clock samples.

A wall-clock sampler (py-spy) also charges the time the process waits in the selector or in a socket call
to the frame that waits, so its shares are not shares of CPU. perf's `cpu-clock` event samples a task only
while it runs, so these shares add up to the run's CPU (user and kernel). Only the benchmark's own process
is sampled (`--no-inherit`: not the simulator nor the S3 stub), and only during the measured run: the
benchmark enables perf around that run through perf's control FIFOs (`--perf-control`).

`--by-function` also records each sample's call stack (`perf record --call-graph dwarf`, at a third of
the rate: the stacks make the recording large) and splits the CPU by Python function, each sample charged
to the innermost Python function on its stack, so that a function's share includes the C code it calls
(the regular-expression scan under `extract`, zlib-ng under `inflate`).

Needs `perf` (Debian: linux-perf) and a `kernel.perf_event_paranoid` of 2 or less, so that a user may
profile their own processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .wrapped import bench_arguments, tool_arguments

INTERPRETER = "interpreter (bytecode, objects, dicts)"
REGEX = "regular expressions (re's C engine)"
INFLATE = "zlib: inflate, CRC (and the state save's deflate)"
TLS = "TLS (OpenSSL)"
JSON = "JSON (the json module's C part)"
MEMORY = "memory (allocators, copies)"
GC = "garbage collector"
KERNEL = "kernel (syscalls, TCP on loopback, page faults)"
OTHER = "other"

# Samples per second: an odd rate, so that sampling does not lock onto a periodic timer. With call stacks
# (`--by-function`), each sample carries up to STACK_BYTES of the stack: a third of the rate keeps a
# 5,000-node run's recording near 100 MB.
FREQUENCY_HZ = 2999
FREQUENCY_WITH_STACKS_HZ = 997
STACK_BYTES = 8192
BY_FUNCTION = "--by-function"
OUTSIDE_PYTHON = "(no Python function on the stack)"

_ALLOCATOR = re.compile(
    r"(?:_?Py(?:Object|Mem)_(?:Raw)?(?:Malloc|Calloc|Realloc|Free)|_PyMem_\w+|"
    r"(?:__libc_|_int_|c)?(?:malloc|calloc|realloc|free)|malloc_consolidate|unlink_chunk\S*|"
    r"__mem(?:move|cpy|set)\w*|mem(?:move|cpy|set))(?:@\S*)?"
)
_GC = re.compile(r"gc_\w+|visit_\w+|(?:update|subtract|move|deduce)_\w*(?:refs|unreachable)\w*|_PyGC_\w+")
# One sample of `perf script -F pid,period,ip,sym,dso`: the process, the CPU time the sample stands for
# (ns), the address, the symbol (or [unknown]), the object in brackets.
_SAMPLE = re.compile(r"^\s*(?P<pid>\d+)\s+(?P<period>\d+)\s+[0-9a-f]+\s+(?P<sym>.*?)\s+\((?P<dso>.*)\)\s*$")
PERF_SCRIPT_FIELDS = "pid,period,ip,sym,dso"
# With call stacks, perf script writes a sample as a line of its pid and period, then one line per frame,
# innermost first: address, symbol, object in brackets.
_STACK_HEAD = re.compile(r"^\s*(?P<pid>\d+)\s+(?P<period>\d+)\s*$")
_FRAME = re.compile(r"^\s+[0-9a-f]+\s+(?P<sym>.*?)\s+\((?P<dso>.*)\)\s*$")
# A Python function's trampoline, as CPython names it for perf (-X perf): py::<qualified name>:<file>.
_INLINED = "inlined"
_UNKNOWN = "[unknown]"
_PYTHON_FRAME = re.compile(r"py::(?P<function>[^:]+):(?P<file>[^+]+)")


def component(dso: str, symbol: str) -> str:
    """The part of the process a sample's code belongs to, from its object file and symbol."""
    name = dso.rsplit("/", 1)[-1]
    symbol = symbol.split("+", 1)[0]
    if name.startswith("[kernel") or name.startswith("[vdso"):
        return KERNEL
    if "zlib_ng" in name or name.startswith("libz."):
        return INFLATE
    if name.startswith(("libcrypto", "libssl", "_ssl.")):
        return TLS
    if name.startswith("_json."):
        return JSON
    if _ALLOCATOR.fullmatch(symbol):
        return MEMORY
    if name.startswith(("libpython", "python")):
        if symbol.startswith(("sre_", "_sre", "pattern_")):
            return REGEX
        if _GC.fullmatch(symbol):
            return GC
        return INTERPRETER
    if name.startswith("ld-linux") or name.startswith("perf-"):
        # The dynamic loader's thread-local lookups are the interpreter's (its thread state); perf-<pid>.map
        # holds the trampolines of Python functions (PYTHONPERFSUPPORT).
        return INTERPRETER
    return OTHER


@dataclass(frozen=True, slots=True)
class Split:
    """CPU time (ns) by component and by (object, symbol), and the samples it came from.

    Each sample weighs its period, the CPU time since the one before: the same weight at a steady rate,
    and still the right one when the kernel lowers the rate (`perf_event_max_sample_rate`)."""

    by_component: Counter[str]
    by_symbol: Counter[tuple[str, str]]
    samples: int
    pids: frozenset[int]
    # By innermost Python function ("name (file)"), when the samples have call stacks; else empty.
    by_function: Counter[str]

    @property
    def cpu_ns(self) -> int:
        return sum(self.by_component.values())


def split(lines: Iterable[str]) -> Split:
    """Sum the samples of `perf script -F pid,period,ip,sym,dso` output, with call stacks or without;
    a line that is neither a sample nor a frame of one is skipped."""
    by_component: Counter[str] = Counter()
    by_symbol: Counter[tuple[str, str]] = Counter()
    by_function: Counter[str] = Counter()
    samples = 0
    pids: set[int] = set()
    for pid, period, frames, stacked in _samples(lines):
        # perf shows the functions inlined at the sampled address as frames of their own, "(inlined)":
        # the sample is the function they were compiled into, as without call stacks.
        symbol, dso = next((frame for frame in frames if frame[1] != _INLINED), frames[0])
        by_component[component(dso, symbol)] += period
        by_symbol[(dso.rsplit("/", 1)[-1], symbol.split("+", 1)[0])] += period
        if stacked:  # every sample of a recording with stacks, so that the functions' shares add up
            by_function[_innermost_python_function(frames)] += period
        samples += 1
        pids.add(pid)
    return Split(by_component, by_symbol, samples, frozenset(pids), by_function)


_Sample = tuple[int, int, list[tuple[str, str]], bool]


def _samples(lines: Iterable[str]) -> Iterator[_Sample]:
    """(pid, period, frames innermost first as (symbol, object), whether it came with its stack) of each
    sample. A sample without its stack has one frame; a stack whose frames perf could not name at all
    has one unknown frame, so that its CPU is still counted."""
    head: tuple[int, int] | None = None
    frames: list[tuple[str, str]] = []

    def stacked() -> _Sample:
        assert head is not None
        return (*head, frames or [(_UNKNOWN, _UNKNOWN)], True)

    for line in lines:
        # Frame lines start with a tab: tried first inside a stack, so that no frame passes for a sample.
        frame = _FRAME.match(line) if head is not None and line.startswith("\t") else None
        if frame is not None:
            frames.append((frame["sym"], frame["dso"]))
            continue
        sample = _SAMPLE.match(line)
        if sample is not None:
            if head is not None:
                yield stacked()
            head, frames = None, []
            yield int(sample["pid"]), int(sample["period"]), [(sample["sym"], sample["dso"])], False
            continue
        stack_head = _STACK_HEAD.match(line)
        if stack_head is not None:
            if head is not None:
                yield stacked()
            head, frames = (int(stack_head["pid"]), int(stack_head["period"])), []
    if head is not None:
        yield stacked()


def _innermost_python_function(frames: list[tuple[str, str]]) -> str:
    for symbol, _ in frames:
        python = _PYTHON_FRAME.match(symbol)
        if python is not None:
            return f"{python['function']} ({python['file'].rsplit('/', 1)[-1]})"
    return OUTSIDE_PYTHON


@contextmanager
def perf_enabled(control: str | None) -> Iterator[None]:
    """perf enabled inside the block, through the `CTL,ACK` FIFOs of `perf record --control` (no-op when
    None). Each command waits for perf's acknowledgement, so no sample of the block is lost."""
    if not control:
        yield
        return
    ctl_path, _, ack_path = control.partition(",")
    with open(ctl_path, "w", encoding="ascii") as ctl, open(ack_path, encoding="ascii") as ack:

        def command(word: str) -> None:
            ctl.write(word + "\n")
            ctl.flush()
            ack.readline()

        command("enable")
        try:
            yield
        finally:
            command("disable")


def _perf_usable() -> str | None:
    """Why perf cannot profile here, or None: tried with the options the profile needs (a perf older
    than 5.10 has no --control)."""
    if shutil.which("perf") is None:
        return "`perf` is not installed (Debian: apt-get install linux-perf)"
    with tempfile.TemporaryDirectory(prefix="cpu-profile-probe-") as scratch:
        ctl, ack = os.path.join(scratch, "ctl"), os.path.join(scratch, "ack")
        os.mkfifo(ctl)
        os.mkfifo(ack)
        probe = subprocess.run(
            ["perf", "record", "--quiet", "-e", "cpu-clock", "--no-inherit", "-D", "-1",
             f"--control=fifo:{ctl},{ack}", "-o", os.path.join(scratch, "perf.data"), "--", "true"],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
    if probe.returncode != 0:
        return f"`perf record --control` failed: {probe.stderr.strip()[-300:]}"
    return None


def _print_split(result: Split, cpu_ms_per_node: float, top: int) -> None:
    total = result.cpu_ns
    print(
        f"\nCPU of the measured run by component ({result.samples} samples, {total / 1e9:.3f} s of CPU "
        "sampled; the ms a node are the shares of the run's cpu_ms_per_node):"
    )
    print(f"  {'component':<50} {'share':>7} {'ms a node':>10}")
    for name, count in result.by_component.most_common():
        share = count / total
        print(f"  {name:<50} {share:7.1%} {share * cpu_ms_per_node:10.3f}")
    print(f"  {'in all':<50} {1:7.0%} {cpu_ms_per_node:10.3f}")
    print(f"\nThe {top} symbols with the most samples:")
    for (dso, symbol), count in result.by_symbol.most_common(top):
        print(f"  {count / total:6.1%}  {symbol[:60]:<60} {dso}")
    if result.by_function:
        print(
            f"\nThe {top} Python functions with the most CPU (each sample charged to the innermost Python "
            "function on its stack, the C code it calls included):"
        )
        for function, count in result.by_function.most_common(top):
            share = count / total
            print(f"  {share:6.1%} {share * cpu_ms_per_node:7.3f} ms  {function}")


def main(argv: list[str] | None = None) -> int:
    args = tool_arguments(argv, __doc__ or "", _perf_usable, "profile")
    if isinstance(args, int):
        return args
    if any(arg.startswith(BY_FUNCTION + "=") for arg in args):
        print(f"{BY_FUNCTION} takes no value", file=sys.stderr)
        return 2
    with_stacks = BY_FUNCTION in args
    bench = bench_arguments(
        [arg for arg in args if arg != BY_FUNCTION], ["--breakdown", "0"]
    )  # the measured run is all that is profiled
    sampling = (
        ["-F", str(FREQUENCY_WITH_STACKS_HZ), "--call-graph", f"dwarf,{STACK_BYTES}"]
        if with_stacks
        else ["-F", str(FREQUENCY_HZ)]
    )
    with tempfile.TemporaryDirectory(prefix="cpu-profile-") as scratch:
        ctl, ack = os.path.join(scratch, "ctl"), os.path.join(scratch, "ack")
        os.mkfifo(ctl)
        os.mkfifo(ack)
        data = os.path.join(scratch, "perf.data")
        record = [
            "perf", "record", "--quiet", "-e", "cpu-clock", *sampling, "--no-inherit",
            "-D", "-1", f"--control=fifo:{ctl},{ack}", "-o", data, "--",
            sys.executable, "-X", "perf", "-m", "bench", "--perf-control", f"{ctl},{ack}",
            *bench.argv,
        ]  # fmt: skip
        # -X perf (the benchmark's process only, not its children): samples in Python functions'
        # trampolines are named in /tmp/perf-<pid>.map, which CPython writes and never removes.
        run = subprocess.run(record, check=False)
        if run.returncode != 0:
            print(f"the benchmark under perf exited with {run.returncode}", file=sys.stderr)
            return run.returncode
        script = subprocess.run(
            ["perf", "script", "-i", data, "-F", PERF_SCRIPT_FIELDS],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        with open(bench.options.output, encoding="utf-8") as handle:
            cpu_ms_per_node = float(json.load(handle)["cpu_ms_per_node"])
    result = split(script.stdout.splitlines())
    for pid in result.pids:
        with contextlib.suppress(OSError):
            os.remove(f"/tmp/perf-{pid}.map")
    if result.cpu_ns == 0:
        print("perf recorded no sample of the measured run", file=sys.stderr)
        return 1
    _print_split(result, cpu_ms_per_node, top=20 if with_stacks else 15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
