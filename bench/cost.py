"""What a month of one-minute runs costs in Lambda, from a measured run (us-east-1 list prices, arm64).

Lambda gives a function CPU in proportion to its memory (one full vCPU at 1,769 MB), so a run that
needs `cpu_s` of CPU cannot take less than `cpu_s / vcpu_share` seconds at a smaller size, however
fast it was on this machine. Prices: https://aws.amazon.com/lambda/pricing/ (checked 2026-11).
"""

from __future__ import annotations

from dataclasses import dataclass

ARM64_USD_PER_GB_S = 0.0000133334
USD_PER_MILLION_REQUESTS = 0.20
RUNS_PER_MONTH = 60 * 24 * 30  # every minute, 30-day month
MB_PER_VCPU = 1769

# ADOT's documented setup for Fargate: one collector pod of 1 vCPU / 2 GiB, itself on Fargate
# (us-east-1 Linux/ARM: $0.03238 per vCPU-hour, $0.00356 per GB-hour; 730 hours a month). EKS on
# Fargate adds 256 MB to a pod's memory for the node's own components and rounds up to the next
# configuration, so 2 GiB is billed as 3 GB (EKS user guide, "Fargate Pod configuration").
ADOT_POD_BILLED_GB = 3
ADOT_POD_USD_PER_MONTH = (1 * 0.03238 + ADOT_POD_BILLED_GB * 0.00356) * 730


@dataclass(frozen=True, slots=True)
class MonthlyCost:
    memory_mb: int
    billed_s_per_run: float
    usd_per_month: float


def lambda_monthly_cost(wall_s: float, cpu_s: float, memory_mb: int) -> MonthlyCost:
    """Duration is the longer of the measured wall time and the CPU time at the size's vCPU share."""
    vcpu_share = min(1.0, memory_mb / MB_PER_VCPU)
    billed_s = max(wall_s, cpu_s / vcpu_share)
    gb_s = billed_s * memory_mb / 1024
    usd = RUNS_PER_MONTH * (gb_s * ARM64_USD_PER_GB_S + USD_PER_MILLION_REQUESTS / 1_000_000)
    return MonthlyCost(memory_mb=memory_mb, billed_s_per_run=billed_s, usd_per_month=usd)
