"""Clocks: the simulator reads time only through one of these, so tests can step it."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Anything with ``now()`` in epoch seconds."""

    def now(self) -> float:
        """Current time in seconds since the epoch."""
        ...


class RealClock:
    """Wall-clock time, the default."""

    def now(self) -> float:
        """Current wall-clock time."""
        return time.time()


class ManualClock:
    """A clock that only moves when told to, so counter values in tests are exact."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        """The current simulated time."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward (never backward) and return the new time."""
        if seconds < 0:
            raise ValueError("a ManualClock only moves forward")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, when: float) -> None:
        """Jump to an absolute time (tests of expiry use this)."""
        with self._lock:
            self._now = float(when)
