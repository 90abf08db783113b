"""The measurements: cold import, extraction against the reference parser, one handler run."""

from __future__ import annotations

import contextlib
import cProfile
import io
import os
import pstats
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAMBDA_SRC = os.path.join(REPO, "lambda_src")

_IMPORT_PROBE = """
import sys, time
started = time.perf_counter()
import {module}
elapsed_ms = (time.perf_counter() - started) * 1000
heavy = sorted(m for m in ("kubernetes", "kubernetes.client", "pydantic", "jmespath", "prometheus_client")
               if m in sys.modules)
print(elapsed_ms, ",".join(heavy))
"""


def cold_import_ms(module: str, repeat: int) -> tuple[float, list[str]]:
    """Median time for a fresh interpreter to import `module` (bytecode already compiled, as in the
    Lambda package), and which heavy modules it pulled in."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([LAMBDA_SRC, REPO]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    samples: list[float] = []
    heavy: list[str] = []
    for attempt in range(repeat + 1):  # the first run writes __pycache__; it is not counted
        answer = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE.format(module=module)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        elapsed, _, loaded = answer.stdout.strip().partition(" ")
        heavy = [m for m in loaded.split(",") if m]
        if attempt:
            samples.append(float(elapsed))
    return statistics.median(samples), heavy


@dataclass(frozen=True, slots=True)
class ExtractionComparison:
    payloads: int
    payload_kib: float
    # Each payload read as the same pod's next payload is (its label sets known from a minute ago: every
    # run of a warm execution environment), and as the first one of a pod is (nothing known).
    ours_ms_per_payload: float
    ours_first_read_ms_per_payload: float
    reference_ms_per_payload: float
    # The least any reader of the text does: split it into lines (a floor for the CPU a node can take).
    split_ms_per_payload: float

    @property
    def speedup(self) -> float:
        return self.reference_ms_per_payload / self.ours_ms_per_payload

    @property
    def speedup_first_read(self) -> float:
        return self.reference_ms_per_payload / self.ours_first_read_ms_per_payload


def compare_extraction(payloads: list[bytes], repeat: int) -> ExtractionComparison:
    """Best-of-`repeat` time of our extractor and of prometheus_client's parser on the same payloads."""
    from prometheus_client.parser import text_string_to_metric_families

    from fargate_insights.cadvisor import extract, forget_label_sets

    def ours() -> None:
        for payload in payloads:
            extract(payload)

    def ours_first_read() -> None:
        for payload in payloads:
            forget_label_sets()
            extract(payload)

    def split() -> None:
        for payload in payloads:
            payload.split(b"\n")

    def reference() -> None:
        for payload in payloads:
            # The reference needs text; the decode is part of its cost, as bytes are what arrives.
            for family in text_string_to_metric_families(payload.decode("utf-8")):
                for _sample in family.samples:
                    pass

    # Interleaved, so that both see the same machine (a shared VM's speed drifts within seconds).
    ours_s = first_s = reference_s = split_s = float("inf")
    ours()  # each payload's label sets known, as the measured run's are
    for round_ in range(repeat):
        ours_s = min(ours_s, _best_of(ours, 3))
        first_s = min(first_s, _best_of(ours_first_read, 3))
        split_s = min(split_s, _best_of(split, 3))
        if round_ % 3 == 0:
            reference_s = min(reference_s, _best_of(reference, 1))
    count = len(payloads)
    return ExtractionComparison(
        payloads=count,
        payload_kib=sum(map(len, payloads)) / count / 1024,
        ours_ms_per_payload=ours_s / count * 1000,
        ours_first_read_ms_per_payload=first_s / count * 1000,
        reference_ms_per_payload=reference_s / count * 1000,
        split_ms_per_payload=split_s / count * 1000,
    )


def _best_of(run: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


class CountingStdout(io.TextIOBase):
    """Lambda's stdout: counts the EMF bytes per namespace and keeps the log lines (not the EMF)."""

    def __init__(self) -> None:
        self.pod_documents = 0
        self.pod_bytes = 0
        self.other_lines: list[str] = []
        self._partial = ""

    def write(self, text: str) -> int:
        data = self._partial + text
        *lines, self._partial = data.split("\n")
        for line in lines:
            if line.startswith('{"_aws"') and '"ContainerInsights"' in line[:400]:
                self.pod_documents += 1
                self.pod_bytes += len(line.encode()) + 1
            elif line:
                self.other_lines.append(line)
        return len(text)

    def writable(self) -> bool:
        return True

    def reset(self) -> None:
        self.pod_documents = self.pod_bytes = 0
        self.other_lines.clear()


@dataclass(slots=True)
class HandlerRun:
    wall_s: float
    cpu_s: float
    summary: dict[str, Any]
    pod_documents: int
    pod_bytes: int
    profile: str = ""
    sys_s: float = 0.0


def invoke_handler(sink: CountingStdout, timeout_s: float, profile: bool = False) -> HandlerRun:
    """One Lambda invocation in this process, its stdout counted instead of printed."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    run = _invoke_handler(sink, timeout_s, profile)
    after = resource.getrusage(resource.RUSAGE_SELF)
    run.sys_s = after.ru_stime - before.ru_stime
    return run


def _invoke_handler(sink: CountingStdout, timeout_s: float, profile: bool) -> HandlerRun:
    from fargate_insights import handler
    from fargate_insights.demo import LambdaContextStub

    handler.logger.registered_handler.stream = sink  # type: ignore[attr-defined]
    sink.reset()
    profiler = cProfile.Profile() if profile else None
    cpu_before = _cpu_s()
    started = time.perf_counter()
    with contextlib.redirect_stdout(sink):
        if profiler is not None:
            profiler.enable()
        try:
            summary: dict[str, Any] = handler.lambda_handler({}, LambdaContextStub(timeout_s))
        finally:
            if profiler is not None:
                profiler.disable()
    wall_s = time.perf_counter() - started
    cpu_s = _cpu_s() - cpu_before
    report = ""
    if profiler is not None:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
        report = text.getvalue()
    return HandlerRun(wall_s, cpu_s, summary, sink.pod_documents, sink.pod_bytes, report)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """The process's peak resident set (Linux reports KiB), which is what Lambda's memory size bounds."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds another process (all its threads) has used so far, from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        # The command name, field 2, may hold spaces: count the fields after its closing parenthesis.
        fields = handle.read().rpartition(")")[2].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5), in clock ticks
    return (utime + stime) / os.sysconf("SC_CLK_TCK")
