"""The benchmark's options as the tools that run it (`bench.cpu_profile`, `bench.instructions`) read
them from their own command line, which they pass on."""

from __future__ import annotations


def has_option(args: list[str], name: str) -> bool:
    """Whether `name` is given, as `--name value` or `--name=value`."""
    return any(arg == name or arg.startswith(name + "=") for arg in args)


def option_value(args: list[str], name: str) -> str | None:
    """The value of `name`, the last one given (as argparse takes it), or None."""
    value = None
    for at, arg in enumerate(args):
        if arg == name and at + 1 < len(args):
            value = args[at + 1]
        elif arg.startswith(name + "="):
            value = arg.partition("=")[2]
    return value
