"""The benchmark run by another tool (perf in `bench.cpu_profile`, valgrind in `bench.instructions`):
the tool's own start, and the benchmark's command line that it passes on."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NamedTuple


class BenchArguments(NamedTuple):
    """What the benchmark is run with (the tool's defaults, then the user's options), and the same as
    the benchmark reads it."""

    argv: list[str]
    options: argparse.Namespace


def tool_arguments(
    argv: list[str] | None, doc: str, why_unusable: Callable[[], str | None], cannot: str
) -> list[str] | int:
    """The user's options for the benchmark; or the tool's exit status: 0 once `doc` is printed for
    --help, 2 when the tool cannot run on this machine (said on stderr, with the reason)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(arg in ("-h", "--help") for arg in args):
        print(doc)
        return 0
    reason = why_unusable()
    if reason is not None:
        print(f"cannot {cannot}: {reason}", file=sys.stderr)
        return 2
    return args


def bench_arguments(args: list[str], defaults: list[str]) -> BenchArguments:
    """The tool's defaults before the user's options, so that the user's win (argparse keeps the last
    of an option), read by the benchmark's own parser: a mistyped option fails here, not after minutes."""
    from .__main__ import build_parser  # here: the benchmark imports the tools' switches

    argv = [*defaults, *args]
    return BenchArguments(argv, build_parser().parse_args(argv))
