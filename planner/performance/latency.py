"""Latency and throughput of deployment options (vectorized over numpy arrays of options).

Notation: N = tp × pp accelerators per replica, B concurrency, n input tokens, o output tokens,
h hidden size, L layers, k experts per token, E experts, P peak FLOP/s at the precision,
η_c compute efficiency (per precision), η_b bandwidth efficiency, BW peak HBM bytes/s.

Prefill of one request (replica-occupancy seconds):
    F = 2 · (active − vocab·h) · n  +  attention,  attention = L · n² · H · (2·d)   (causal)
    t_p = F_lin ÷ (N · P · η_c) + F_att ÷ (N · P_att · η_c) + comms,
where attention (QKᵀ, PV) runs at fp8 (fp4 weights) or the weight precision, and comms are
2 all-reduces per layer of n·h·2 bytes over the TP group (ring: 2(tp−1)/tp of the message),
plus the EP all-to-all. TTFT latency of one prefill = pp · t_p (a request visits the stages
in turn).

Decode step (B sequences, each verifying q = d+1 tokens with speculative decoding, else 1):
    bytes/acc = pp · [non-expert weights + L_moe · E_touched · expert] ÷ N + B · KV(ctx̄) ÷ shards
    E_touched = E · (1 − (1 − k/E)^(B·q/pp))        (distinct experts hit by a micro-batch)
    t_mem = bytes/acc ÷ (BW · η_b);  t_cmp = B·q·(F_lin/token + F_att/token(ctx̄)) ÷ (N·P·η_c)
    step = max(t_mem, t_cmp) + t_allreduce + t_alltoall + t_pp + overhead + t_draft
    t_allreduce = 2L · (α + 2(tp−1)/tp · (B·q/pp) · h · 2 B ÷ (link · η_link))   (tp > 1)
    t_alltoall  = 2 L_moe · (α + (B·q/N) · k · h · 1.5 B · (ep−1)/ep ÷ (link · η_link)) (ep > 1)
with ctx̄ = n + o/2, link = scale-up bandwidth when the group fits one scale-up domain, else
scale-out, and a replica spanning domains divides its throughput by `cross_domain_eff`.
Speculative decoding accepts (1 − a^(d+1)) ÷ (1 − a) tokens per sequence per step.

Aggregated (continuous batching) at concurrency B: each request costs the replica
    t_req = o · step ÷ (B · tps) + t_p     ⇒  requests/s λ = 1 / t_req,
prefill occupies ρ = λ · t_p of the time, so decode steps are stretched by prefill chunks:
    TPOT_mean = step/tps ÷ (1 − ρ);  TPOT_p99 = step/tps · (1 + c · ρ/(1 − ρ))
    TTFT_p99  = pp · t_p + step + c · t_p · ρ/(1 − ρ)      (c = server_tail, queueing tail)
Disaggregated: a decode-only replica has TPOT = step/tps and B·tps/step tokens/s; a
prefill-only replica batching b requests per pass takes T_b = max(b·t_p, weight-read) + comm +
overhead and serves ρ·b/T_b requests/s at the largest load ρ ≤ 0.9 with
TTFT_p99 = pp·T_b + c·T_b·ρ/(1 − ρ) within the target.
Power per replica = N/accelerators-per-system × (idle + (max − idle) × load).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from planner.performance.memory import (
    BYTES_PER_PARAM,
    ModelShape,
    attention_dp,
    kv_bytes_per_sequence,
    kv_shards,
    model_shape,
)
from planner.performance.params import Params
from planner.schema import Accelerator, AttentionKind, Model, Precision, Speculative, System

FloatArray = npt.NDArray[np.float64]
MAX_PREFILL_LOAD = 0.9
"""Highest utilization a prefill-only pool is planned at."""


@dataclass(frozen=True)
class Hardware:
    """What the performance model needs of a system and its accelerator."""

    system_id: str
    accelerator_id: str
    memory_gb: float
    bandwidth_tbps: float
    tflops: dict[Precision, float]
    domain: int
    scale_up_gb_per_s: float
    scale_out_gb_per_s: float
    accelerators_per_system: int
    power_kw_max: float
    power_kw_idle: float
    stack: str

    @classmethod
    def of(cls, system: System, accelerator: Accelerator) -> Hardware:
        if system.power_kw_max is not None:
            pmax = system.power_kw_max
        else:  # rent-only: estimate 1.5 × TDP per accelerator for host and network
            pmax = 1.5 * (accelerator.tdp_w or 700.0) * system.accelerators / 1e3
        idle = system.power_kw_idle if system.power_kw_idle is not None else 0.3 * pmax
        return cls(
            system.id, accelerator.id, accelerator.memory_gb, accelerator.memory_bandwidth_tbps,
            dict(accelerator.tflops_dense), accelerator.scale_up_domain,
            accelerator.scale_up_bandwidth_gb_per_s, accelerator.scale_out_bandwidth_gb_per_s,
            system.accelerators, pmax, idle, accelerator.software_stack,
        )

    def supports(self, precision: Precision) -> bool:
        return precision in self.tflops

    def peak_flops(self, precision: Precision) -> float:
        return self.tflops[precision] * 1e12

    def attention_precision(self, precision: Precision) -> Precision:
        """Attention math runs at fp8 for fp4/int8 weights (KV is fp8), else at the weights'."""
        if precision in (Precision.fp4, Precision.int8):
            return Precision.fp8 if Precision.fp8 in self.tflops else Precision.bf16
        return precision


def accepted_tokens_per_step(spec: Speculative | None) -> float:
    """Expected tokens emitted per sequence per step: (1 − a^(d+1)) ÷ (1 − a); 1 without."""
    if spec is None:
        return 1.0
    a, d = spec.acceptance_rate, spec.draft_tokens
    return (1.0 - a ** (d + 1)) / (1.0 - a)


class Evaluator:
    """Evaluates options of one (model, precision, hardware, params, lengths) combination."""

    def __init__(
        self,
        model: Model,
        precision: Precision,
        hw: Hardware,
        params: Params,
        input_tokens: float,
        output_tokens: float,
    ) -> None:
        self.model, self.precision, self.hw, self.p = model, precision, hw, params
        self.n_in, self.n_out = float(input_tokens), float(output_tokens)
        self.shape: ModelShape = model_shape(model)
        s = self.shape
        self.bpp = BYTES_PER_PARAM[precision]
        self.peak = hw.peak_flops(precision)
        att_prec = hw.attention_precision(precision)
        self.peak_att = hw.peak_flops(att_prec)
        self.eff = params.compute_eff(precision)
        self.eff_att = params.compute_eff(att_prec)
        self.bw = hw.bandwidth_tbps * 1e12 * params.bw_eff
        self.h = float(model.hidden_size)
        self.L = float(model.layers)
        # linear FLOPs per token: 2 × (active − input embedding)
        self.flin_tok = 2.0 * (s.active - s.embedding / 2.0)
        # bytes of weights read per step outside routed experts (input embedding not read)
        self.nonexpert_read = (s.non_expert - s.embedding / 2.0) * self.bpp + s.embedding / 2 * 2
        self.expert_bytes = s.expert * self.bpp
        self.attn_bytes = s.attention * self.bpp

    # ---- attention FLOPs -----------------------------------------------------------------
    def _ctx_layers(self, ctx: FloatArray | float) -> FloatArray:
        """Σ over layers of the context each layer attends to (sliding windows capped)."""
        m = self.model
        swa = m.sliding_window_layers if m.sliding_window_tokens else 0
        c = np.asarray(ctx, dtype=float)
        return (m.layers - swa) * c + swa * np.minimum(c, float(m.sliding_window_tokens or 0))

    def _att_width(self) -> tuple[float, float]:
        """(prefill, decode) FLOPs per (query, key) pair per layer, summed over heads."""
        m = self.model
        if m.attention == AttentionKind.mla:
            r, rope, d = m.kv_lora_rank or 0, m.qk_rope_head_dim or 0, m.head_dim
            return m.attention_heads * (2 * d + rope) * 2.0, m.attention_heads * (2 * r + rope) * 2.0
        return m.attention_heads * m.head_dim * 4.0, m.attention_heads * m.head_dim * 4.0

    def prefill_attention_flops(self, n: float) -> float:
        """Causal attention FLOPs of an n-token prompt: Σ_layers n·ctx/2 × width."""
        return float(self._ctx_layers(n)) * n / 2.0 * self._att_width()[0]

    def decode_attention_flops(self, ctx: float) -> float:
        """Attention FLOPs per generated token at context ctx: Σ_layers ctx × width."""
        return float(self._ctx_layers(ctx)) * self._att_width()[1]

    # ---- links ---------------------------------------------------------------------------
    def _link(self, group: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(bytes/s, latency s) of a collective over `group` accelerators."""
        inside = group <= self.hw.domain
        bw = np.where(inside, self.hw.scale_up_gb_per_s, self.hw.scale_out_gb_per_s)
        alpha = np.where(inside, self.p.comm_latency_us, self.p.scale_out_latency_us) * 1e-6
        return bw * 1e9 * self.p.comm_eff, alpha

    def _scaling(self, n_acc: FloatArray) -> FloatArray:
        return np.where(n_acc > self.hw.domain, self.p.cross_domain_eff, 1.0)

    # ---- prefill -------------------------------------------------------------------------
    def prefill_seconds(
        self, tp: FloatArray, pp: FloatArray, ep: FloatArray, n: float | None = None
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(occupancy t_p, compute part, comm part) of prefilling one request, seconds."""
        n = self.n_in if n is None else n
        N = tp * pp
        t_cmp = self.flin_tok * n / (N * self.peak * self.eff) + self.prefill_attention_flops(
            n
        ) / (N * self.peak_att * self.eff_att)
        adp = attention_dp(self.model, ep)
        bw_tp, a_tp = self._link(tp)
        t_ar = np.where(
            (tp > 1) & ~adp,
            2 * self.L / pp * (a_tp + 2 * (tp - 1) / tp * n * self.h * 2 / bw_tp),
            0.0,
        )
        bw_ep, a_ep = self._link(ep)
        s = self.shape
        t_a2a = np.where(
            ep > 1,
            2 * s.moe_layers / pp
            * (a_ep + n * s.experts_per_token * self.h * 1.5 * (ep - 1) / ep / (tp * bw_ep)),
            0.0,
        )
        scale = self._scaling(N)
        return (t_cmp + t_ar + t_a2a) / scale, t_cmp / scale, (t_ar + t_a2a) / scale

    # ---- decode --------------------------------------------------------------------------
    def decode_step(
        self,
        tp: FloatArray,
        pp: FloatArray,
        ep: FloatArray,
        b: FloatArray,
        q: FloatArray,
    ) -> tuple[FloatArray, FloatArray]:
        """(step seconds, roofline-busy seconds) for B sequences verifying q tokens each."""
        s, p = self.shape, self.p
        N = tp * pp
        ctx = self.n_in + self.n_out / 2.0
        tokens = b * q
        adp = attention_dp(self.model, ep)
        # weight bytes read per accelerator per step (pp micro-batches each read the stage)
        if s.is_moe:
            k_over_e = s.experts_per_token / s.experts
            touched = s.experts * (1.0 - (1.0 - k_over_e) ** (tokens / pp))
            expert_read = s.moe_layers * touched * self.expert_bytes
        else:
            expert_read = np.zeros_like(tokens)
        nonexp = np.where(
            adp,
            (self.nonexpert_read - self.attn_bytes) / N + self.attn_bytes / pp,
            self.nonexpert_read / N,
        )
        w_read = pp * (nonexp + expert_read / N)
        kv_read = b * kv_bytes_per_sequence(self.model, self.precision, ctx) / kv_shards(
            self.model, tp, pp, ep
        )
        t_mem = (w_read + kv_read) / self.bw
        t_cmp = tokens * (
            self.flin_tok / (self.peak * self.eff)
            + self.decode_attention_flops(ctx) / (self.peak_att * self.eff_att)
        ) / N
        core = np.maximum(t_mem, t_cmp)
        bw_tp, a_tp = self._link(tp)
        t_ar = np.where(
            (tp > 1) & ~adp,
            2 * self.L * (a_tp + 2 * (tp - 1) / tp * tokens / pp * self.h * 2 / bw_tp),
            0.0,
        )
        bw_ep, a_ep = self._link(ep)
        t_a2a = np.where(
            ep > 1,
            2 * s.moe_layers
            * (a_ep + tokens / N * s.experts_per_token * self.h * 1.5 * (ep - 1) / ep / bw_ep),
            0.0,
        )
        bw_pp, a_pp = self._link(N)
        t_pp = (pp - 1) * (a_pp + tokens / pp * self.h * 2 / bw_pp)
        overhead = p.step_overhead_ms * 1e-3
        draft_frac = 1.5 / self.L if self.model.mtp_layers else 0.05
        t_draft = (q - 1) * (draft_frac * core + 0.1 * overhead)
        step = (core + t_ar + t_a2a + t_pp + overhead + t_draft) / self._scaling(N)
        return step, core

    # ---- operating points ----------------------------------------------------------------
    def aggregated(
        self, tp: FloatArray, pp: FloatArray, ep: FloatArray, b: FloatArray, q: FloatArray,
        tps: FloatArray,
    ) -> dict[str, FloatArray]:
        """Continuous batching at concurrency B (see module docstring)."""
        t_p, t_p_cmp, _ = self.prefill_seconds(tp, pp, ep)
        step, core = self.decode_step(tp, pp, ep, b, q)
        t_req = self.n_out * step / (b * tps) + t_p
        lam = 1.0 / t_req
        rho = np.minimum(lam * t_p, 0.999)
        c = self.p.server_tail
        tail = rho / (1.0 - rho)
        tpot = step / tps * (1.0 + c * tail)
        ttft = pp * t_p + step + c * t_p * tail
        busy = (self.n_out * core / (b * tps) + t_p_cmp) / t_req
        return self._result(tp, pp, lam, ttft, tpot, busy, self.n_out * lam)

    def decode_only(
        self, tp: FloatArray, pp: FloatArray, ep: FloatArray, b: FloatArray, q: FloatArray,
        tps: FloatArray,
    ) -> dict[str, FloatArray]:
        """Decode pool: TPOT = step/tps; TTFT column = KV hand-over + first step."""
        step, core = self.decode_step(tp, pp, ep, b, q)
        out_tps = b * tps / step
        kv_in = kv_bytes_per_sequence(self.model, self.precision, self.n_in)
        ttft = kv_in / (self.hw.scale_out_gb_per_s * 1e9 * self.p.comm_eff * tp * pp) + step
        return self._result(tp, pp, out_tps / self.n_out, ttft, step / tps, core / step, out_tps)

    def prefill_only(
        self, tp: FloatArray, pp: FloatArray, ep: FloatArray, b: FloatArray,
        ttft_target_ms: float | None,
    ) -> dict[str, FloatArray]:
        """Prefill pool batching b requests per pass, at the largest load meeting the TTFT."""
        _t_p, t_cmp, t_comm = self.prefill_seconds(tp, pp, ep)
        N = tp * pp
        w_read = self.nonexpert_read / N * pp + (
            self.shape.moe_layers * self.shape.experts * self.expert_bytes / N * pp
        )
        overhead = self.p.step_overhead_ms * 1e-3
        t_b = np.maximum(b * t_cmp, w_read / self.bw) + b * t_comm + overhead
        c = self.p.server_tail
        if ttft_target_ms is None:
            rho = np.full_like(t_b, MAX_PREFILL_LOAD)
        else:
            x = (ttft_target_ms * 1e-3 - pp * t_b) / (c * t_b)
            rho = np.where(x > 0, np.minimum(x / (1.0 + x), MAX_PREFILL_LOAD), 0.0)
        lam = rho * b / t_b
        ttft = pp * t_b + c * t_b * rho / np.maximum(1.0 - rho, 1e-9)
        busy = rho * b * t_cmp / t_b
        return self._result(tp, pp, lam, ttft, np.zeros_like(lam), busy, lam * self.n_out)

    def _result(
        self, tp: FloatArray, pp: FloatArray, lam: FloatArray, ttft_s: FloatArray,
        tpot_s: FloatArray, busy: FloatArray, out_tps: FloatArray,
    ) -> dict[str, FloatArray]:
        N = tp * pp
        load = np.clip(busy, 0.0, 1.0)
        hw = self.hw
        power = N / hw.accelerators_per_system * (
            hw.power_kw_idle + (hw.power_kw_max - hw.power_kw_idle) * load
        )
        return {
            "output_tokens_per_s": out_tps,
            "requests_per_s": lam,
            "input_tokens_per_s": lam * self.n_in,
            "ttft_ms": ttft_s * 1e3,
            "tpot_ms": tpot_s * 1e3,
            "power_kw": power,
        }
