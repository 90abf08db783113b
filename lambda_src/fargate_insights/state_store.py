"""Counter history that outlives an execution environment: one small JSON object in S3.

Without it, every cold start would lose one cycle of CPU and network rates (as ADOT loses one after
each restart). Writes are conditional on the object's ETag: if another run wrote in between, the two
histories are merged (newest sample per series wins) instead of one overwriting the other.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any, Final, Protocol

from .collector import CollectorState

logger = logging.getLogger(__name__)

FORMAT_VERSION: Final = 1
# The state is a few KB: S3 answers in well under a second. Short timeouts and one retry bound what an
# unreachable S3 (a function in a VPC without an S3 endpoint or NAT) costs a run to a few seconds; with
# botocore's defaults (60 s timeouts, five attempts) every run would end in a Lambda timeout, before
# collecting anything, without a word.
S3_CONNECT_TIMEOUT_S: Final = 1.0
S3_READ_TIMEOUT_S: Final = 1.0
S3_ATTEMPTS: Final = 2
# The longest one S3 call can take with those settings: a save starts a call only with this much time left.
S3_CALL_WORST_CASE_S: Final = S3_ATTEMPTS * (S3_CONNECT_TIMEOUT_S + S3_READ_TIMEOUT_S)


def s3_client(session: Any) -> Any:
    """An S3 client for the state, with timeouts that fit in a run."""
    from botocore.config import Config

    return session.client(
        "s3",
        config=Config(
            connect_timeout=S3_CONNECT_TIMEOUT_S,
            read_timeout=S3_READ_TIMEOUT_S,
            retries={"mode": "standard", "total_max_attempts": S3_ATTEMPTS},
        ),
    )


class StateStore(Protocol):
    def load(self) -> CollectorState | None: ...

    def save(self, state: CollectorState, deadline: float | None = None) -> None: ...


class S3StateStore:
    """State in `s3://bucket/key`; failures are logged and never fail a run (memory still works)."""

    def __init__(self, s3: Any, bucket: str, key: str) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._key = key
        self._etag: str | None = None

    def load(self) -> CollectorState | None:
        remote = self._get()
        return remote[0] if remote is not None else None

    def save(self, state: CollectorState, deadline: float | None = None) -> None:
        """Write the state; `deadline` (time.monotonic()): start no S3 call that could end past it."""
        from botocore.exceptions import BotoCoreError, ClientError

        for _attempt in range(3):
            if self._out_of_time(deadline, calls=1):
                return
            try:
                body = encode(state)
            except ValueError as err:  # a value JSON cannot hold; decode() and the rates never keep one
                logger.warning("state not saved", extra={"bucket": self._bucket, "error": str(err)})
                return
            condition = {"IfMatch": self._etag} if self._etag else {"IfNoneMatch": "*"}
            try:
                answer = self._s3.put_object(
                    Bucket=self._bucket, Key=self._key, Body=body, ContentType="application/json", **condition
                )
            except ClientError as err:
                code = err.response.get("Error", {}).get("Code", "")
                status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if code in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey") or status in (
                    409,
                    412,
                ):
                    if self._out_of_time(deadline, calls=2):  # a read, then the write again
                        return
                    remote = self._get()  # someone else wrote: merge and try again
                    self._etag = remote[1] if remote is not None else None
                    if remote is not None:
                        merge_into(state, remote[0])
                    continue
                logger.warning("state not saved", extra={"bucket": self._bucket, "error": code or str(err)})
                return
            except BotoCoreError as err:
                logger.warning("state not saved", extra={"bucket": self._bucket, "error": str(err)})
                return
            self._etag = answer.get("ETag")
            return
        logger.warning("state not saved: concurrent writers kept changing it", extra={"bucket": self._bucket})

    def _out_of_time(self, deadline: float | None, calls: int) -> bool:
        if deadline is None or time.monotonic() + calls * S3_CALL_WORST_CASE_S <= deadline:
            return False
        logger.warning("state not saved: too little time left", extra={"bucket": self._bucket})
        return True

    def _get(self) -> tuple[CollectorState, str | None] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._s3.get_object(Bucket=self._bucket, Key=self._key)
            body = answer["Body"].read()
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code not in ("NoSuchKey", "404"):
                logger.warning("state not loaded", extra={"bucket": self._bucket, "error": code or str(err)})
            self._etag = None
            return None
        except BotoCoreError as err:
            logger.warning("state not loaded", extra={"bucket": self._bucket, "error": str(err)})
            return None
        etag = answer.get("ETag")
        self._etag = etag
        state = decode(body)
        if state is None:
            logger.warning("state object unreadable; starting afresh", extra={"bucket": self._bucket})
            return None
        return state, etag


def encode(state: CollectorState) -> bytes:
    payload = {
        "version": FORMAT_VERSION,
        "last_run_ms": state.last_run_ms,
        "counters": {key: [value, ts] for key, (value, ts) in state.counters.items()},
    }
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()


def decode(body: bytes) -> CollectorState | None:
    """Parse a stored state; anything unexpected gives None (never a half-trusted history)."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("version") != FORMAT_VERSION:
        return None
    counters = payload.get("counters")
    last_run = payload.get("last_run_ms")
    if not isinstance(counters, dict) or not (last_run is None or _is_int(last_run)):
        return None
    state = CollectorState(last_run_ms=last_run)
    for key, entry in counters.items():
        # json.loads() reads NaN and Infinity: such a counter would give no rate, and could not be
        # written back (encode() refuses them), so it is dropped here like any other odd entry.
        if (
            isinstance(entry, list)
            and len(entry) == 2
            and isinstance(entry[0], int | float)
            and not isinstance(entry[0], bool)
            and math.isfinite(entry[0])
            and entry[0] >= 0
            and _is_int(entry[1])
        ):
            state.counters[key] = (float(entry[0]), entry[1])
    return state


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def merge_into(state: CollectorState, other: CollectorState) -> None:
    """Keep, for every series, the newer of the two samples."""
    for key, sample in other.counters.items():
        mine = state.counters.get(key)
        if mine is None or sample[1] > mine[1]:
            state.counters[key] = sample
    if other.last_run_ms is not None and (state.last_run_ms is None or other.last_run_ms > state.last_run_ms):
        state.last_run_ms = other.last_run_ms
