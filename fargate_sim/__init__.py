"""A simulated EKS cluster on Fargate: API server, node list and kubelet cAdvisor payloads over TLS."""

from __future__ import annotations

from .clock import ManualClock, RealClock
from .model import SimPod

__all__ = ["ManualClock", "RealClock", "SimPod"]
