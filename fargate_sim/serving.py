"""What a local server started as a process of its own (the simulator, the benchmark's S3 stub) does
around its work: stop on SIGTERM or SIGINT, and tell its parent where it listens."""

from __future__ import annotations

import json
import os
import signal
import threading
from types import FrameType


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: the server then stops in its own time, cleanups included."""
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return done


def announce(endpoint: str, info_file: str | None, info: dict[str, object]) -> None:
    """The endpoint on stdout, and `info` in `info_file` if given, written whole or not at all (a temp
    file, then a rename): a parent polling for the file never reads half of it."""
    if info_file:
        tmp = f"{info_file}.tmp.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(info, handle)
        os.replace(tmp, info_file)
    print(endpoint, flush=True)
