"""Command line: `demo` (simulated cluster, no AWS account) and `collect` (preflight on a real cluster)."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fargate_insights", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    from . import demo, preflight

    demo.add_arguments(
        commands.add_parser("demo", help="run the collector on a simulated EKS Fargate cluster on localhost")
    )
    preflight.add_arguments(
        commands.add_parser("collect", help="check a real cluster's prerequisites, then collect once")
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo.run(args)
    return preflight.run(args)


# The exit status of a command that SIGINT ended (128 + 2), as shells report it.
INTERRUPTED = 130


def _entry() -> int:
    """`main()`, quiet when the reader of stdout goes away (`... --format emf | head`) or on Ctrl-C.

    A traceback after Ctrl-C would look like a crash of the demo or of the collection; the `with` and
    `finally` blocks it unwinds through have stopped the simulator and removed temporary files.
    """
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that flush cannot fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(_entry())
