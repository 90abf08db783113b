"""The benchmark's S3 stub, driven by a real boto3 client configured as the function configures its own."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from http.client import HTTPConnection
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError

from bench.s3_stub import RunningS3Stub, s3_stub
from fargate_insights.collector import CollectorState
from fargate_insights.state_store import S3StateStore, s3_client

BUCKET = "bench-state"


@pytest.fixture(scope="module")
def stub() -> Iterator[RunningS3Stub]:
    with s3_stub() as running:
        yield running


@pytest.fixture
def s3(stub: RunningS3Stub, monkeypatch: pytest.MonkeyPatch):
    """The function's own S3 client (state_store.s3_client), pointed at the stub as the bench does."""
    for name, value in {
        "AWS_ENDPOINT_URL_S3": stub.endpoint,
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
        monkeypatch.delenv(name, raising=False)
    return s3_client(boto3.session.Session(region_name="us-east-1"))


def _code(err: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = err.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_conditional_puts_and_gets_return_the_stored_bytes(s3, stub: RunningS3Stub) -> None:
    key = "state/conditions.json.gz"
    first = gzip.compress(os.urandom(4096) + b"{}" * 5000)  # any bytes: stored and returned as they are
    created = s3.put_object(Bucket=BUCKET, Key=key, Body=first, ContentEncoding="gzip", IfNoneMatch="*")
    assert created["ETag"].startswith('"')
    answer = s3.get_object(Bucket=BUCKET, Key=key)
    assert answer["Body"].read() == first and answer["ETag"] == created["ETag"]
    assert answer["ContentEncoding"] == "gzip"  # kept, as S3 does; the body still comes back as stored
    assert stub.object_info(BUCKET, key) == (len(first), created["ETag"])

    with pytest.raises(ClientError) as exists:  # If-None-Match: * on an existing key
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"other", IfNoneMatch="*")
    assert _code(exists) == ("PreconditionFailed", 412)

    second = b"\x00\xff" * 70_000
    replaced = s3.put_object(Bucket=BUCKET, Key=key, Body=second, IfMatch=created["ETag"])
    assert replaced["ETag"] != created["ETag"]

    with pytest.raises(ClientError) as stale:  # If-Match with the replaced ETag
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"lost update", IfMatch=created["ETag"])
    assert _code(stale) == ("PreconditionFailed", 412)

    answer = s3.get_object(Bucket=BUCKET, Key=key)
    assert answer["Body"].read() == second and answer["ETag"] == replaced["ETag"]


def test_missing_keys_are_s3_no_such_key_errors(s3, stub: RunningS3Stub) -> None:
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=BUCKET, Key="state/absent.json")
    assert _code(missing) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as conditional:  # If-Match needs an object, as in S3
        s3.put_object(Bucket=BUCKET, Key="state/absent.json", Body=b"x", IfMatch='"0"')
    assert _code(conditional) == ("NoSuchKey", 404)
    assert stub.object_info(BUCKET, "state/absent.json") is None


def test_the_function_state_store_saves_and_loads_through_the_stub(s3, stub: RunningS3Stub) -> None:
    key = "state/roundtrip.json"
    state = CollectorState(last_run_ms=1_700_000_000_000)
    state.counters.update({f"pod-{i}|cpu": (float(i), 1_700_000_000_000 + i) for i in range(500)})
    store = S3StateStore(s3, BUCKET, key)
    assert store.load() is None
    store.save(state)  # If-None-Match: *
    first = stub.object_info(BUCKET, key)
    state.counters["pod-0|cpu"] = (1.5, 1_700_000_060_000)
    store.save(state)  # If-Match: the ETag of the first save
    second = stub.object_info(BUCKET, key)
    assert first is not None and second is not None and first[1] != second[1]

    loaded = S3StateStore(s3, BUCKET, key).load()
    assert loaded is not None and loaded.counters == state.counters
    assert loaded.last_run_ms == state.last_run_ms


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"x-amz-checksum-crc32": "AAAAAA=="}, 400),  # a body that does not match its checksum
        ({"Content-Encoding": "aws-chunked"}, 501),  # refused, not stored as sent
    ],
)
def test_bodies_it_cannot_trust_are_refused(
    stub: RunningS3Stub, headers: dict[str, str], status: int
) -> None:
    parts = urlsplit(stub.endpoint)
    connection = HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.request("PUT", f"/{BUCKET}/state/refused.json", body=b"body", headers=headers)
        answer = connection.getresponse()
        assert answer.status == status and b"<Error><Code>" in answer.read()
    finally:
        connection.close()
    assert stub.object_info(BUCKET, "state/refused.json") is None
