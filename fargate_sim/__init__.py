"""A simulated EKS cluster on Fargate: API server, node list and kubelet cAdvisor payloads over TLS."""

from __future__ import annotations

from .clock import ManualClock, RealClock
from .faults import FAULT_KINDS, Faults
from .model import SimPod
from .server import SimStats, SimulatedCluster

__all__ = ["FAULT_KINDS", "Faults", "ManualClock", "RealClock", "SimPod", "SimStats", "SimulatedCluster"]
