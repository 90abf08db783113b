"""`python -m bench.cpu_profile`: the sample classification, the perf control handshake, and (where perf
can profile) a small run end to end."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bench import cpu_profile
from bench.cpu_profile import (
    GC,
    INFLATE,
    INTERPRETER,
    JSON,
    KERNEL,
    MEMORY,
    OTHER,
    OUTSIDE_PYTHON,
    REGEX,
    TLS,
    component,
    perf_enabled,
    split,
)
from bench.wrapped import bench_arguments

REPO = Path(__file__).resolve().parents[2]
LIBPYTHON = "/root/.pyenv/versions/3.13.0/lib/libpython3.13.so.1.0"


@pytest.mark.parametrize(
    ("dso", "symbol", "expected"),
    [
        (LIBPYTHON, "_PyEval_EvalFrameDefault", INTERPRETER),
        (LIBPYTHON, "unicodekeys_lookup_unicode", INTERPRETER),
        (LIBPYTHON, "PyObject_GC_UnTrack", INTERPRETER),  # object bookkeeping, not a collection
        (LIBPYTHON, "sre_ucs1_match", REGEX),
        (LIBPYTHON, "sre_search", REGEX),
        (LIBPYTHON, "gc_collect_main", GC),
        (LIBPYTHON, "visit_decref", GC),
        (LIBPYTHON, "_PyObject_Malloc", MEMORY),
        (LIBPYTHON, "_PyObject_Free", MEMORY),
        (LIBPYTHON, "PyObject_Malloc@plt", MEMORY),
        ("/usr/lib/x86_64-linux-gnu/libc.so.6", "__memmove_avx512_unaligned_erms", MEMORY),
        ("/usr/lib/x86_64-linux-gnu/libc.so.6", "_int_malloc", MEMORY),
        ("/usr/lib/x86_64-linux-gnu/libc.so.6", "cfree@GLIBC_2.2.5", MEMORY),
        ("/usr/lib/x86_64-linux-gnu/libc.so.6", "__memchr_evex", OTHER),
        ("/usr/lib/x86_64-linux-gnu/libc.so.6", "epoll_wait", OTHER),
        (
            "/venv/site-packages/zlib_ng/zlib_ng.cpython-313-x86_64-linux-gnu.so",
            "inflate_fast_avx512",
            INFLATE,
        ),
        ("/usr/lib/x86_64-linux-gnu/libz.so.1.2.13", "crc32_z", INFLATE),
        ("/usr/lib/x86_64-linux-gnu/libcrypto.so.3", "[unknown]", TLS),
        ("/usr/lib/x86_64-linux-gnu/libssl.so.3", "SSL_read", TLS),
        ("/lib/python3.13/lib-dynload/_ssl.cpython-313-x86_64-linux-gnu.so", "_ssl__SSLSocket_read", TLS),
        ("/lib/python3.13/lib-dynload/_json.cpython-313-x86_64-linux-gnu.so", "scanstring_unicode", JSON),
        ("[kernel.kallsyms]", "_raw_spin_unlock_irqrestore", KERNEL),
        ("[vdso]", "__vdso_clock_gettime", KERNEL),
        ("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "__tls_get_addr", INTERPRETER),
        ("/tmp/perf-5841.map", "py::extract:/work/main/lambda_src/fargate_insights/cadvisor.py", INTERPRETER),
        ("/usr/bin/python3.13", "_PyEval_EvalFrameDefault", INTERPRETER),  # a statically linked CPython
        ("/lib/python3.13/lib-dynload/math.cpython-313-x86_64-linux-gnu.so", "math_ceil", OTHER),
    ],
)
def test_each_sample_goes_to_its_component(dso: str, symbol: str, expected: str) -> None:
    assert component(dso, symbol) == expected


def test_split_weighs_perf_script_lines_by_period_and_skips_the_rest() -> None:
    lines = [
        f" 5841     333444           1b2d3e _PyEval_EvalFrameDefault ({LIBPYTHON})",
        f" 5841     333444           1b2d40 _PyEval_EvalFrameDefault+0x1a ({LIBPYTHON})",
        f" 5841    1000000     7f3a7a5f6190 sre_search ({LIBPYTHON})",  # a lower rate: a longer period
        " 5841     333444 ffffffff821f2fa7 exc_page_fault ([kernel.kallsyms])",
        " 5841     333444     7f3a7a4c7a90 [unknown] (/usr/lib/x86_64-linux-gnu/libcrypto.so.3)",
        "",
        "not a sample line",
        " 5841     333444     7f3a7a4c7a90 no object in brackets",
        f" 5841    7f3a7a5f6190 sre_search ({LIBPYTHON})",  # no period
    ]
    result = split(lines)
    assert result.samples == 5 and result.pids == {5841}
    assert result.cpu_ns == 4 * 333444 + 1000000
    assert result.by_component == {INTERPRETER: 2 * 333444, REGEX: 1000000, KERNEL: 333444, TLS: 333444}
    # offsets are folded into their symbol, and objects shown by file name
    assert result.by_symbol[("libpython3.13.so.1.0", "_PyEval_EvalFrameDefault")] == 2 * 333444


def test_samples_with_call_stacks_go_to_their_innermost_python_function() -> None:
    perf_map = "/tmp/perf-5841.map"
    cadvisor = "py::extract:/work/main/lambda_src/fargate_insights/cadvisor.py"
    lines = [
        " 5841     500000 ",  # the regex engine, called by extract(), called by the collector
        "\t          1b2d3e sre_ucs1_search (inlined)",
        f"\t          1b2d3e sre_search ({LIBPYTHON})",
        f"\t          8e60a _PyEval_EvalFrameDefault ({LIBPYTHON})",
        f"\t    7f8baf4b1225 {cadvisor} ({perf_map})",
        f"\t    7f8baf4b1300 py::Collector._scrape_all:/x/collector.py ({perf_map})",
        "",
        " 5841     300000 ",  # the interpreter itself, running a Python function
        f"\t          8d5b1 _PyEval_EvalFrameDefault ({LIBPYTHON})",
        f"\t    7f8baf4b13b5 py::_recv_before:/x/https_transport.py ({perf_map})",
        "",
        " 5841     200000 ",  # no Python function on the stack (perf could not unwind to one)
        "\t          96131 _int_free (/usr/lib/x86_64-linux-gnu/libc.so.6)",
        "\t          98f5e [unknown] (/usr/lib/x86_64-linux-gnu/libcrypto.so.3)",
        "",
        " 5841     100000 ",  # a stack perf could not name: its CPU still counted
        "",
        " 5841      50000 ",  # one frame, not Python, in an object whose name has brackets
        "\t          1b2d3e inflate_fast (/x/zlib_ng.so (deleted))",
        " 5841      50000 ",  # an offset after the file is not part of its name
        f"\t    7f8baf4b1225 {cadvisor}+0x25 ({perf_map})",
    ]
    result = split(lines)
    assert result.samples == 6 and result.cpu_ns == 1_200_000
    assert result.by_function == {
        "extract (cadvisor.py)": 550000,
        "_recv_before (https_transport.py)": 300000,
        OUTSIDE_PYTHON: 350000,
    }
    assert sum(result.by_function.values()) == result.cpu_ns  # the functions' shares add up
    # components and symbols as without stacks: an inlined frame is the function it was compiled into
    assert result.by_component == {
        REGEX: 500000,
        INTERPRETER: 350000,
        MEMORY: 200000,
        OTHER: 100000,
        INFLATE: 50000,
    }
    assert result.by_symbol[("libpython3.13.so.1.0", "sre_search")] == 500000


def test_samples_without_call_stacks_have_no_function_split() -> None:
    lines = [
        f" 5841     333444           1b2d3e _PyEval_EvalFrameDefault ({LIBPYTHON})",
        # the sampled address in a Python function's trampoline: still no stack to split by function
        " 5841     333444     7f8baf4b1225 py::extract:/x/cadvisor.py (/tmp/perf-5841.map)",
    ]
    result = split(lines)
    assert result.samples == 2 and not result.by_function


def test_by_function_takes_no_value(capsys: pytest.CaptureFixture[str]) -> None:
    if cpu_profile._perf_usable() is not None:
        pytest.skip("perf cannot profile on this machine")
    assert cpu_profile.main(["--by-function=yes", "--nodes", "5"]) == 2
    assert "takes no value" in capsys.readouterr().err


def test_perf_enabled_without_fifos_does_nothing() -> None:
    ran = []
    with perf_enabled(None):
        ran.append(True)
    assert ran == [True]


def _fake_perf(ctl: str, ack: str, heard: list[str]) -> threading.Thread:
    """perf's side of `--control=fifo:CTL,ACK`: read each command, acknowledge it."""

    def serve() -> None:
        with open(ctl, encoding="ascii") as commands, open(ack, "w", encoding="ascii") as acks:
            for line in commands:
                heard.append(line.strip())
                acks.write("ack\n")
                acks.flush()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("fails", [False, True])
def test_perf_enabled_brackets_the_block_and_waits_for_each_ack(tmp_path: Path, fails: bool) -> None:
    ctl, ack = str(tmp_path / "ctl"), str(tmp_path / "ack")
    os.mkfifo(ctl)
    os.mkfifo(ack)
    heard: list[str] = []
    perf = _fake_perf(ctl, ack, heard)
    seen_inside: list[list[str]] = []
    expected_error = pytest.raises(RuntimeError) if fails else contextlib.nullcontext()
    with expected_error, perf_enabled(f"{ctl},{ack}"):
        seen_inside.append(list(heard))  # "enable" was acknowledged before the block ran
        if fails:
            raise RuntimeError("the measured run failed")
    perf.join(timeout=10)
    assert seen_inside == [["enable"]]
    assert heard == ["enable", "disable"]  # disabled also when the block raised


def test_help_prints_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    assert cpu_profile.main(["--help"]) == 0
    assert "cpu-clock" in capsys.readouterr().out


def test_the_benchmarks_options_are_read_as_argparse_reads_them() -> None:
    from bench.__main__ import RESULTS

    def output(args: list[str], defaults: list[str] | None = None) -> str:
        return str(bench_arguments(args, defaults or []).options.output)

    assert output(["--nodes", "5"]) == RESULTS
    assert output(["--output", "a.json", "--output=b.json"]) == "b.json"
    assert output(["--output=b.json", "--output", "a.json"]) == "a.json"
    assert output(["--out", "c.json"], ["--output", "d.json"]) == "c.json"  # the user's win, abbreviated too
    assert output([], ["--output", "d.json"]) == "d.json"
    with pytest.raises(SystemExit):
        bench_arguments(["--output"], [])  # no value: refused before any run
    with pytest.raises(SystemExit):
        bench_arguments(["--breakdowns", "3"], [])  # not an option of the benchmark
    assert bench_arguments(["--breakdown=3"], ["--breakdown", "0"]).options.breakdown == 3
    assert bench_arguments(["--breakdown", "3"], ["--breakdown", "0"]).options.breakdown == 3
    assert bench_arguments([], ["--breakdown", "0"]).argv == ["--breakdown", "0"]


def _profile_a_small_run(output: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`python -m bench.cpu_profile` on 40 nodes, writing the benchmark's results to `output`; skips the
    test where perf cannot profile."""
    reason = cpu_profile._perf_usable()
    if reason is not None:
        pytest.skip(f"perf cannot profile on this machine: {reason}")
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'lambda_src'}{os.pathsep}{REPO}")
    command = [sys.executable, "-m", "bench.cpu_profile", *options, "--nodes", "40", "--max-in-flight", "4"]
    command += ["--latency-ms", "5", "--import-repeat", "1", "--output", str(output)]
    answer = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert answer.returncode == 0, answer.stderr[-3000:]
    return answer


def test_a_small_run_end_to_end(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    maps_before = set(glob.glob("/tmp/perf-*.map"))
    answer = _profile_a_small_run(output)
    assert output.exists()  # the benchmark's results, where it was asked to write them
    # Python functions are named for perf in the benchmark's process only, and its map file is removed.
    assert not set(glob.glob("/tmp/perf-*.map")) - maps_before
    table = answer.stdout.split("CPU of the measured run by component", 1)[1]
    assert INTERPRETER in table and REGEX in table and INFLATE in table
    assert "in all" in table and "symbols with the most samples" in table
    assert "Python functions" not in table  # without --by-function there are no stacks to split by
    # Only the measured run of the benchmark's own process was sampled: the samples account for its CPU,
    # not for the warm-up run's or the simulator's as well (either would double them).
    sampled_s = float(re.search(r"samples, ([0-9.]+) s of CPU sampled", answer.stdout)[1])  # type: ignore[index]
    cpu_s = json.loads(output.read_text())["cpu_s"]
    assert 0.6 * cpu_s <= sampled_s <= 1.3 * cpu_s + 0.01, (sampled_s, cpu_s)


def test_a_small_run_by_python_function(tmp_path: Path) -> None:
    answer = _profile_a_small_run(tmp_path / "results.json", "--by-function")
    table = answer.stdout.split("Python functions with the most CPU", 1)[1]
    # perf unwound the stacks to the collector's own functions (-X perf names them), not only to C code
    # (extract is a quarter of the CPU: in the table even with the few samples of 40 nodes)
    assert "extract (cadvisor.py)" in table
