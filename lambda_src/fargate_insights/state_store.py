"""Counter history that outlives an execution environment: one gzip-compressed JSON object in S3.

Without it, every cold start would lose one cycle of CPU and network rates (as ADOT loses one after
each restart). Writes are conditional on the object's ETag: if another run wrote in between, the two
histories are merged (newest sample per series wins) instead of one overwriting the other.

Its size grows with the cluster: about 5.5 series and 0.7 KB of JSON a pod, about a quarter of that
compressed (5,000 simulated pods: 3.5 MB of JSON, about 1 MB written each run). Compressed, because a function
in a VPC that reaches S3 through NAT pays for every byte, and the CPU it costs (zlib-ng level 1,
13 ms at 5,000 pods) is less than what TLS and the upload of the JSON would.
"""

from __future__ import annotations

import json
import logging
import math
import time
from contextlib import closing
from typing import Any, Final, Protocol

from zlib_ng import zlib_ng

from .collector import CollectorState
from .gzip_body import InflateError, inflate

logger = logging.getLogger(__name__)

FORMAT_VERSION: Final = 2  # 2: gzip-compressed JSON; 1 (still read): the same JSON, not compressed
_READABLE_VERSIONS: Final = frozenset({1, FORMAT_VERSION})
_GZIP_MAGIC: Final = b"\x1f\x8b"
# A stored state inflates to at most this much (about 140,000 pods): more is not ours, or not sane.
MAX_STATE_BYTES: Final = 128 * 1024 * 1024
# A few MB at most: S3 answers in well under a second. Short timeouts and one retry bound what an
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
                    Bucket=self._bucket,
                    Key=self._key,
                    Body=body,
                    ContentType="application/json",
                    ContentEncoding="gzip",
                    **condition,
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
                    # Someone else wrote: merge and try again. `_get` keeps the ETag of what it found,
                    # also of an object it cannot read (then overwritten, rather than never again).
                    remote = self._get()
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
            with closing(answer["Body"]) as stream:
                body = _read_capped(stream, MAX_STATE_BYTES)
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
        state = decode(body) if body is not None else None
        if state is None:
            logger.warning("state object unreadable; starting afresh", extra={"bucket": self._bucket})
            return None
        return state, etag


def _read_capped(stream: Any, cap: int) -> bytes | None:
    """The whole body, or None once it is past `cap` bytes (read no further): a stored state is never
    larger than it inflates to, nor, uncompressed, than the cap, so one that is is refused without being
    read whole. Otherwise read to its end, because only that checks the body against its Content-Length:
    botocore's read(n) returns a body cut short in transit as if it were whole, and it would then be
    taken for a corrupt state and overwritten (read to the end, it raises, and the state is "not loaded")."""
    body: bytes = stream.read(cap + 1)
    if len(body) > cap or stream.read():
        return None
    return body


def encode(state: CollectorState) -> bytes:
    payload = {
        "version": FORMAT_VERSION,
        "last_run_ms": state.last_run_ms,
        "counters": {key: [value, ts] for key, (value, ts) in state.counters.items()},
    }
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    return zlib_ng.compress(text, 1, wbits=31)  # gzip: `aws s3 cp ... - | gunzip` reads it


def decode(body: bytes) -> CollectorState | None:
    """Parse a stored state; anything unexpected gives None (never a half-trusted history)."""
    try:
        text = _inflate(body) if body.startswith(_GZIP_MAGIC) else body
        payload = json.loads(text) if text is not None else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(payload, dict):
        return None
    version = payload.get("version")
    if not (_is_int(version) and version in _READABLE_VERSIONS):
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


def _inflate(body: bytes) -> bytes | None:
    """The gzip body inflated, or None when it is corrupt, cut short or would exceed MAX_STATE_BYTES."""
    try:
        return inflate(body, MAX_STATE_BYTES)
    except InflateError:
        return None


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
