"""Shared pytest fixtures: where the shared fixtures live, and how their absence is reported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"
FIXTURES_DIR = SHARED_DIR / "fixtures"


def _require_shared() -> Path:
    if FIXTURES_DIR.is_dir():
        return FIXTURES_DIR
    reason = (
        f"{FIXTURES_DIR} not found: these tests read real kubelet payloads from ../shared/fixtures, "
        "which only the project's CI and developers have"
    )
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(reason + " (under CI a missing ../shared is an error, not a skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """Path to ../shared/fixtures; skips in a user's clone, fails under CI=true."""
    return _require_shared()
