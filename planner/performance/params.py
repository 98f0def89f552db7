"""Per-software-stack parameters of the performance model (fitted or default).

Fitted (by `calibration.fit`, per stack):

* `compute_eff_bf16|fp8|fp4` ∈ (0, 1]: share of the dense peak TFLOPS that GEMMs reach at that
  precision (prefill, and decode once compute-bound). bf16 has no calibration rows: it takes the
  fp8 value unless set.
* `bw_eff` ∈ (0, 1]: share of peak HBM bandwidth reached streaming weights and KV in decode.
* `step_overhead_ms` ≥ 0: fixed host/scheduler/launch time per decode step (iteration).
* `server_tail` ≥ 1: p99-over-mean multiplier of the queueing / prefill-interference delay
  under Poisson arrivals (1 = the mean; an M/M/1 p99 wait is ≈ 4.6 × its mean).

Fixed (physical constants, not fitted — the calibration data cannot identify them):

* `comm_eff` 0.7: share of link bandwidth collectives reach; `comm_latency_us` 8 µs per
  collective inside a scale-up domain, `scale_out_latency_us` 25 µs across it;
* `cross_domain_eff` 0.85: throughput retained by a replica spanning scale-up domains (seed 1:
  97 % vs 85 % scaling efficiency).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from planner.schema import Precision


@dataclass(frozen=True)
class Params:
    """Performance-model parameters of one software stack (see module docstring)."""

    compute_eff_fp8: float = 0.35
    compute_eff_fp4: float = 0.25
    compute_eff_bf16: float | None = None
    bw_eff: float = 0.6
    step_overhead_ms: float = 8.0
    server_tail: float = 4.0
    comm_eff: float = 0.7
    comm_latency_us: float = 8.0
    scale_out_latency_us: float = 25.0
    cross_domain_eff: float = 0.85
    calibrated: bool = False
    """False for the conservative default set (no calibration for this stack)."""
    stack: str = "default"

    def compute_eff(self, precision: Precision) -> float:
        """GEMM efficiency at a precision (bf16 falls back to fp8's, int8 uses fp8's)."""
        if precision == Precision.fp4:
            return self.compute_eff_fp4
        if precision == Precision.bf16 and self.compute_eff_bf16 is not None:
            return self.compute_eff_bf16
        return self.compute_eff_fp8

    def with_values(self, **values: float) -> Params:
        changed: dict[str, Any] = dict(values)  # every tuned field is a float
        return replace(self, **changed)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


FITTED_NAMES = (
    "compute_eff_fp8", "compute_eff_fp4", "bw_eff", "step_overhead_ms", "server_tail",
)
"""Parameters `calibration.fit` adjusts."""

DEFAULT_PARAMS = Params()
"""Conservative defaults for a stack without calibration (marked calibrated=False)."""


def params_from_dict(stack: str, data: dict[str, Any]) -> Params:
    """Build Params from a `calibration.yaml` stack entry; unknown keys (provenance) ignored."""
    names = {f.name for f in fields(Params)}
    values = {k: v for k, v in data.items() if k in names and k not in ("calibrated", "stack")}
    return Params(**values, calibrated=True, stack=stack)


def load_params(calibration: dict[str, Any], stack: str) -> Params:
    """Params of `stack` from a catalog's calibration mapping, else the marked defaults."""
    data = calibration.get(stack)
    if isinstance(data, dict):
        return params_from_dict(stack, data)
    return replace(DEFAULT_PARAMS, stack=stack)
