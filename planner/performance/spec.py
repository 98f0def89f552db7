"""The workload description the performance model evaluates options for."""

from __future__ import annotations

from dataclasses import dataclass

from planner.schema import Precision, Speculative


@dataclass(frozen=True)
class WorkloadSpec:
    """One workload: model, precision, mean lengths, p99 latency targets, serving options."""

    model: str
    precision: Precision
    input_tokens: int
    output_tokens: int
    ttft_ms: float | None
    tpot_ms: float | None
    speculative: Speculative | None = None
    disaggregated: bool = True
    name: str = "w"
