"""A minimal local S3 for the benchmark: the function's counter-state save goes through botocore to it.

`python -m bench.s3_stub` serves plain HTTP on 127.0.0.1, in its own process so that its CPU is not
counted as the collector's. It knows path-style object requests only, as botocore sends them to an IP
endpoint (`AWS_ENDPOINT_URL_S3=http://127.0.0.1:<port>`):

- `PUT /<bucket>/<key>`: stores the body's bytes as they are (whatever their format), answers with an
  `ETag`; `If-None-Match: *` and `If-Match: <etag>` are honoured (412 PreconditionFailed when they do
  not hold; `If-Match` on a missing key is 404 NoSuchKey, as S3 answers). Over plain HTTP botocore 1.44
  sends the body whole with `Content-Length`, `Expect: 100-continue` and an `x-amz-checksum-crc32`
  header, which is checked (400 BadDigest); it uses `aws-chunked` bodies with trailing checksums only
  over TLS, and such a body is refused (501) rather than stored as it came.
- `GET` and `HEAD /<bucket>/<key>`: the stored bytes, their `ETag` (and the `Content-Type` and
  `Content-Encoding` they were stored with); 404 with an S3 XML NoSuchKey error.

Signatures are not checked; buckets need not be created.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlsplit
from xml.sax.saxutils import escape

from .simulator_process import stop, wait_for_info

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True, slots=True)
class StoredObject:
    body: bytes
    etag: str  # quoted, as S3 sends it
    # Sent back as they came, as S3 does (botocore never decodes a body by its Content-Encoding).
    headers: tuple[tuple[str, str], ...] = ()


class ObjectStore:
    """Objects by (bucket, key); a conditional write checks and stores under one lock."""

    def __init__(self) -> None:
        self._objects: dict[tuple[str, str], StoredObject] = {}
        self._lock = threading.Lock()

    def get(self, bucket: str, key: str) -> StoredObject | None:
        with self._lock:
            return self._objects.get((bucket, key))

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        if_match: str | None,
        if_none_match: str | None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> tuple[HTTPStatus, StoredObject | None, str]:
        """Store `body` if the conditions hold: (200, object, "") or (error status, None, condition)."""
        stored = StoredObject(body, f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"', headers)
        with self._lock:
            current = self._objects.get((bucket, key))
            if if_none_match is not None and (if_none_match.strip() != "*" or current is not None):
                return HTTPStatus.PRECONDITION_FAILED, None, "If-None-Match"
            if if_match is not None:
                if current is None:
                    return HTTPStatus.NOT_FOUND, None, "If-Match"
                if not _etag_matches(if_match, current.etag):
                    return HTTPStatus.PRECONDITION_FAILED, None, "If-Match"
            self._objects[(bucket, key)] = stored
        return HTTPStatus.OK, stored, ""


def _etag_matches(condition: str, etag: str) -> bool:
    """`If-Match` holds for `*` or any listed ETag (quoted or not, as clients differ)."""
    wanted = {item.strip().removeprefix("W/").strip('"') for item in condition.split(",")}
    return "*" in wanted or etag.strip('"') in wanted


_KEPT_HEADERS = ("Content-Type", "Content-Encoding")


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1: keep-alive, and the "100 Continue" that botocore's `Expect: 100-continue` waits for (with
    # HTTP/1.0 it would wait a second before sending the body).
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_PUT(self) -> None:
        target = self._target()
        if target is None:
            return
        body = self._body()
        if body is None:
            return
        bucket, key = target
        status, stored, condition = self.server.objects.put(
            bucket,
            key,
            body,
            if_match=self.headers.get("If-Match"),
            if_none_match=self.headers.get("If-None-Match"),
            headers=tuple(
                (name, self.headers[name]) for name in _KEPT_HEADERS if self.headers.get(name) is not None
            ),
        )
        if status is HTTPStatus.NOT_FOUND:
            self._no_such_key(key)
        elif stored is None:
            self._error(
                status,
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
                {"Condition": condition},
            )
        else:
            self._answer(HTTPStatus.OK, b"", {"ETag": stored.etag})

    def do_GET(self) -> None:
        self._read(send_body=True)

    def do_HEAD(self) -> None:
        self._read(send_body=False)

    def _read(self, send_body: bool) -> None:
        target = self._target()
        if target is None:
            return
        stored = self.server.objects.get(*target)
        if stored is None:
            if send_body:
                self._no_such_key(target[1])
            else:  # a HEAD answer has no body
                self._answer(HTTPStatus.NOT_FOUND, b"", {}, length=0)
            return
        headers = {"ETag": stored.etag, "Content-Type": "binary/octet-stream", **dict(stored.headers)}
        self._answer(HTTPStatus.OK, stored.body if send_body else b"", headers, length=len(stored.body))

    def _target(self) -> tuple[str, str] | None:
        """(bucket, key) of a path-style object request; answers 400 for anything else."""
        bucket, _, key = urlsplit(self.path).path.lstrip("/").partition("/")
        if not bucket or not key:
            self._error(HTTPStatus.BAD_REQUEST, "InvalidRequest", "only path-style object requests")
            return None
        return unquote(bucket), unquote(key)

    def _body(self) -> bytes | None:
        """The request's body, read by its Content-Length; None once an error has been answered."""
        encoding = self.headers.get("Content-Encoding", "") + self.headers.get("Transfer-Encoding", "")
        if "chunked" in encoding or "Content-Length" not in self.headers:  # aws-chunked included
            self._error(HTTPStatus.NOT_IMPLEMENTED, "NotImplemented", "the stub reads Content-Length bodies")
            self.close_connection = True
            return None
        body = self.rfile.read(int(self.headers["Content-Length"]))
        checksum = self.headers.get("x-amz-checksum-crc32")
        if checksum is not None:
            computed = base64.b64encode((zlib.crc32(body) & 0xFFFFFFFF).to_bytes(4, "big")).decode()
            if computed != checksum:
                self._error(HTTPStatus.BAD_REQUEST, "BadDigest", "the CRC32 checksum did not match")
                return None
        return body

    def _no_such_key(self, key: str) -> None:
        self._error(HTTPStatus.NOT_FOUND, "NoSuchKey", "The specified key does not exist.", {"Key": key})

    def _error(
        self, status: HTTPStatus, code: str, message: str, extra: dict[str, str] | None = None
    ) -> None:
        fields = {"Code": code, "Message": message, **(extra or {}), "RequestId": "bench-s3-stub"}
        xml = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in fields.items())
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{xml}</Error>'.encode()
        self._answer(status, body, {"Content-Type": "application/xml"})

    def _answer(
        self, status: HTTPStatus, body: bytes, headers: dict[str, str], length: int | None = None
    ) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        del format, args


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.objects = ObjectStore()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; announce the endpoint in `--info-file` (and on stdout)."""
    parser = argparse.ArgumentParser(prog="python -m bench.s3_stub", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--info-file", default=None, help="write {endpoint, pid} here")
    args = parser.parse_args(argv)
    # Here, not at the top: the benchmark's process imports this module, and importing the fargate_sim
    # package loads the whole simulator (9 MB more peak RSS, measured as the collector's).
    from fargate_sim.serving import announce, stop_on_signals

    server = _Server(args.port)
    done = stop_on_signals()
    thread = threading.Thread(target=server.serve_forever, name="s3-stub", daemon=True)
    thread.start()
    try:
        announce(server.endpoint, args.info_file, {"endpoint": server.endpoint, "pid": os.getpid()})
        while not done.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
    return 0


@dataclass(frozen=True, slots=True)
class RunningS3Stub:
    endpoint: str
    pid: int

    def object_info(self, bucket: str, key: str) -> tuple[int, str] | None:
        """The stored object's size in bytes and its ETag (a HEAD request), None when there is none."""
        parts = urlsplit(self.endpoint)
        connection = HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        try:
            connection.request("HEAD", f"/{quote(bucket)}/{quote(key)}")
            answer = connection.getresponse()
            answer.read()
            if answer.status == HTTPStatus.NOT_FOUND:
                return None
            if answer.status != HTTPStatus.OK:
                raise RuntimeError(f"the S3 stub answered HEAD with {answer.status}")
            return int(answer.headers["Content-Length"]), answer.headers["ETag"]
        finally:
            connection.close()


@contextmanager
def s3_stub() -> Iterator[RunningS3Stub]:
    """Start `python -m bench.s3_stub` in its own process; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp:
        info_file = os.path.join(tmp, "s3.json")
        stderr_path = os.path.join(tmp, "s3.stderr")
        command = [sys.executable, "-m", "bench.s3_stub", "--info-file", info_file]
        with open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            info = wait_for_info(info_file, process, stderr_path, what="the S3 stub")
            yield RunningS3Stub(endpoint=info["endpoint"], pid=process.pid)
        finally:
            stop(process, timeout_s=10)


if __name__ == "__main__":
    sys.exit(main())
