"""Reading the stored state over real HTTP: a body cut short in transit is a failed read, never a
corrupt state that the next save would overwrite (moto hands botocore whole bodies, so a socket server
plays S3 here)."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import closing

import pytest

from fargate_insights import state_store
from fargate_insights.state_store import S3StateStore

STATE = gzip.compress(json.dumps({"version": 2, "counters": {"a|cpu": [1.0, 5]}, "last_run_ms": 7}).encode())


def _serve(server: socket.socket, declared: int, body: bytes) -> None:
    """Answer every request with `body` under a Content-Length of `declared`, then close."""
    while True:
        try:
            connection, _ = server.accept()
        except OSError:
            return
        with closing(connection):
            connection.recv(65536)
            head = (
                f'HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\nETag: "e1"\r\n'
                "Content-Type: application/json\r\nContent-Encoding: gzip\r\n\r\n"
            )
            connection.sendall(head.encode() + body)


@pytest.fixture
def s3_answering() -> Iterator[object]:
    """An S3 client whose GetObject answers come from a socket server; call it with (declared, body)."""
    import boto3
    from botocore.config import Config

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def client(declared: int, body: bytes) -> object:
        threading.Thread(target=_serve, args=(server, declared, body), daemon=True).start()
        return boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
            aws_secret_access_key="example",
            config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
        )

    yield client
    server.close()


def test_a_whole_body_is_read(s3_answering, caplog: pytest.LogCaptureFixture) -> None:
    store = S3StateStore(s3_answering(len(STATE), STATE), "bucket", "state/c.json")
    state = store.load()
    assert state is not None and state.counters == {"a|cpu": (1.0, 5)}


def test_a_body_cut_short_is_not_loaded_and_not_taken_for_a_corrupt_one(
    s3_answering, caplog: pytest.LogCaptureFixture
) -> None:
    store = S3StateStore(s3_answering(len(STATE) + 100, STATE), "bucket", "state/c.json")
    with caplog.at_level(logging.WARNING):
        assert store.load() is None
    assert "state not loaded" in caplog.text
    assert "unreadable" not in caplog.text
    # No ETag taken: the next save creates or merges, it does not overwrite the object it could not read.
    assert store._etag is None


def test_a_body_over_the_cap_is_refused(s3_answering, monkeypatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(state_store, "MAX_STATE_BYTES", len(STATE) - 1)
    store = S3StateStore(s3_answering(len(STATE), STATE), "bucket", "state/c.json")
    with caplog.at_level(logging.WARNING):
        assert store.load() is None
    assert "unreadable" in caplog.text
