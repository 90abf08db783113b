"""Whether a command left anything running: its process group, started with start_new_session=True."""

from __future__ import annotations

import os


def group_left(pid: int) -> bool:
    """True when a process of the group `pid` leads is still alive."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True
