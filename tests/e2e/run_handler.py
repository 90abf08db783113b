"""Invoke the handler once in this (fresh) interpreter, as a Lambda cold start does.

Used by the cold-start tests, with the function's environment set and PYTHONPATH=lambda_src:

    python tests/e2e/run_handler.py [--timeout S] [--state-in FILE --state-out FILE]

With --state-in, S3 is moto's (in this process, as moto's server mode needs Flask): the bucket
STATE_BUCKET is created holding FILE's bytes at the state key, as the previous execution environment
left it, and after the run the object is written to --state-out. Everything the function writes goes
to stdout; the last line is `{"summary": <what the handler returned>}`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path


class _Context:
    def __init__(self, timeout_s: float) -> None:
        self._deadline = time.monotonic() + timeout_s
        self.function_name = "fargate-insights-cold-start"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = (
            "arn:aws:lambda:us-west-2:123456789012:function:fargate-insights-cold-start"
        )
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--state-in", type=Path)
    parser.add_argument("--state-out", type=Path)
    args = parser.parse_args()
    with ExitStack() as stack:
        s3 = None
        if args.state_in is not None:
            import boto3
            from moto import mock_aws

            stack.enter_context(mock_aws())
            bucket = os.environ["STATE_BUCKET"]
            key = os.environ.get("STATE_KEY") or f"state/{os.environ['CLUSTER_NAME']}.json"
            region = os.environ["AWS_REGION"]
            s3 = boto3.client("s3", region_name=region)
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
            s3.put_object(Bucket=bucket, Key=key, Body=args.state_in.read_bytes())

        from fargate_insights.handler import lambda_handler

        summary = lambda_handler({}, _Context(args.timeout))
        if s3 is not None and args.state_out is not None:
            args.state_out.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    sys.stdout.write(json.dumps({"summary": summary}) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
