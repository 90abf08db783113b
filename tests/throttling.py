"""DescribeCluster throttled through botocore's own retry path (moto cannot throttle): for the function's
tests and the preflight's."""

from __future__ import annotations

import json
import time


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: object):
        yield self._body


def throttle_describe_cluster(monkeypatch, times: int) -> list[float]:
    """The first `times` DescribeCluster attempts answer ThrottlingException (moto cannot throttle).

    The answer is given at `before-send`, under botocore's retry handler, so the function's own retry
    configuration is what is exercised. Returns the back-off sleeps botocore asked for (not slept).
    """
    import types

    import boto3
    import botocore.endpoint
    from botocore.awsrequest import AWSResponse

    left = [times]
    sleeps: list[float] = []

    def throttle(request, **_: object):
        if left[0] <= 0:
            return None
        left[0] -= 1
        body = json.dumps({"message": "Rate exceeded"}).encode()
        headers = {"x-amzn-ErrorType": "ThrottlingException", "Content-Type": "application/json"}
        return AWSResponse(request.url, 429, headers, _Raw(body))

    original = boto3.session.Session

    class ThrottledSession(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.events.register("before-send.eks.DescribeCluster", throttle)

    monkeypatch.setattr(boto3.session, "Session", ThrottledSession)
    fake_time = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("_")})
    fake_time.sleep = sleeps.append
    monkeypatch.setattr(botocore.endpoint, "time", fake_time)
    return sleeps
