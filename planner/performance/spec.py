"""The workload description the performance model evaluates options for."""

from __future__ import annotations

from dataclasses import dataclass

from planner.schema import Precision, Speculative, Workload


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

    @classmethod
    def from_workload(cls, w: Workload) -> WorkloadSpec:
        """Build from a problem file's workload entry."""
        return cls(
            model=w.model, precision=w.precisions[0], input_tokens=w.input_tokens,
            output_tokens=w.output_tokens, ttft_ms=w.slo.ttft_ms, tpot_ms=w.slo.tpot_ms,
            speculative=w.speculative, disaggregated=w.disaggregated, name=w.id,
        )
