"""Memory: weight bytes, KV-cache bytes, and what fits on one accelerator of a replica.

Assumptions (stated once, used everywhere):

* **Weights.** Bytes per parameter 2 / 1 / 0.5 for bf16 / fp8 (and int8) / fp4, plus block
  scales: fp8 per-block fp32 scales ≈ 0.2 % (+0.002 B/param), fp4 one fp8 scale per 16 values
  (NVFP4; MXFP4 is 1 per 32, we take the larger) = +0.0625 B/param. The input embedding and the
  LM head (2 × vocab × hidden, untied) stay in bf16 at every precision.
* **KV cache** is stored in fp8 (1 byte) when the weight precision is fp8, int8 or fp4, and in
  bf16 (2 bytes) for bf16 weights.
  GQA: bytes/token = 2 (K and V) × layers × kv_heads × head_dim × kv_bytes; layers with a
  sliding window hold at most `sliding_window_tokens` tokens.
  MLA: bytes/token = (kv_lora_rank + qk_rope_head_dim) × layers × kv_bytes.
* **Runtime reserve.** Usable memory = memory_gb × (1 − 0.08) − min(2 GB, 5 %) (CUDA context,
  activations of one prefill chunk, CUDA graphs, fragmentation).
* **Sharding.** A replica has N = tp × pp accelerators. Weights are spread evenly over N
  (experts over ep groups, each expert over N/ep), except that with attention data-parallelism
  (a MoE model served with ep = N > 1) the attention weights are replicated on every tp rank.
  KV: GQA shards over min(tp, kv_heads) × pp (heads are replicated once tp > kv_heads); MLA's
  latent is replicated across tp (sharded over pp only) unless attention is data-parallel, when
  each rank holds its own sequences (sharded over tp × pp).
* **Concurrency** that fits: B_max = ⌊(usable − weights per accelerator) ÷ KV per sequence per
  accelerator⌋ with the sequence at its full context (input + output tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from planner.schema import AttentionKind, Model, Precision

BYTES_PER_PARAM: dict[Precision, float] = {
    Precision.bf16: 2.0,
    Precision.fp8: 1.0 + 0.002,
    Precision.int8: 1.0 + 0.002,
    Precision.fp4: 0.5 + 0.0625,
}
"""Stored bytes per weight parameter, block scales included."""

RESERVE_FRACTION = 0.08
"""Share of device memory held back by the runtime."""
RESERVE_FIXED_GB = 2.0
"""Fixed runtime reserve per accelerator, GB."""
GB = 1e9

FloatArray = npt.NDArray[np.float64]


def kv_bytes_per_element(precision: Precision) -> float:
    """KV-cache bytes per stored value: 1 (fp8) when weights are ≤ 8 bit, else 2 (bf16)."""
    return 2.0 if precision == Precision.bf16 else 1.0


@dataclass(frozen=True)
class ModelShape:
    """Parameter groups of a model, in parameters (not bytes).

    expert = 3 × hidden × moe_intermediate (gate, up, down) per routed expert per MoE layer, or,
    when `moe_intermediate_size` is missing, (total − active) ÷ (moe_layers × (E − k)).
    non_expert = total − moe_layers × E × expert (attention, dense MLPs, shared experts, norms,
    embeddings). embedding = 2 × vocab × hidden (input table + LM head, untied).
    attention = layers × per-layer attention projections (GQA: hidden × (2·heads + 2·kv_heads)
    × head_dim; MLA: q low-rank 3r + kv down-projection + up-projections + output, r = kv_lora).
    """

    total: float
    active: float
    embedding: float
    expert: float
    moe_layers: int
    experts: int
    experts_per_token: int
    attention: float

    @property
    def non_expert(self) -> float:
        return self.total - self.moe_layers * self.experts * self.expert

    @property
    def is_moe(self) -> bool:
        return self.experts > 1


def model_shape(model: Model) -> ModelShape:
    """Split a catalog model into the parameter groups memory and traffic depend on."""
    h, layers = model.hidden_size, model.layers
    embedding = 2.0 * model.vocab_size * h
    if model.attention == AttentionKind.mla:
        r = model.kv_lora_rank or 512
        rope = model.qk_rope_head_dim or 64
        nh, hd = model.attention_heads, model.head_dim
        q_rank = 3 * r
        per_layer = (
            h * q_rank + q_rank * nh * (hd + rope)  # low-rank query
            + h * (r + rope)  # KV down-projection
            + r * nh * 2 * hd  # K/V up-projections
            + nh * hd * h  # output projection
        )
    else:
        per_layer = h * (2 * model.attention_heads + 2 * model.kv_heads) * model.head_dim
    attention = float(layers * per_layer)
    total = model.params_total_b * 1e9
    active = model.params_active_b * 1e9
    if model.experts > 1:
        moe_layers = layers - model.dense_layers
        if model.moe_intermediate_size:
            expert = 3.0 * h * model.moe_intermediate_size
        else:
            expert = (total - active) / (moe_layers * (model.experts - model.experts_per_token))
        return ModelShape(total, active, embedding, expert, moe_layers, model.experts,
                          model.experts_per_token, attention)
    return ModelShape(total, active, embedding, 0.0, 0, 1, 1, attention)


def weight_bytes(model: Model, precision: Precision) -> float:
    """Stored weight bytes: (total − embedding) × bytes/param[precision] + embedding × 2."""
    s = model_shape(model)
    return (s.total - s.embedding) * BYTES_PER_PARAM[precision] + s.embedding * 2.0


def kv_bytes_per_token(model: Model, precision: Precision) -> float:
    """KV bytes per token of context when no sliding window caps it.

    GQA: 2 × layers × kv_heads × head_dim × kv_bytes (Llama 3.3 70B at fp8: 2×80×8×128×1 =
    163,840). MLA: (kv_lora_rank + qk_rope_head_dim) × layers × kv_bytes (DeepSeek-R1 at fp8:
    576 × 61 = 35,136).
    """
    kvb = kv_bytes_per_element(precision)
    if model.attention == AttentionKind.mla:
        return float((model.kv_lora_rank or 0) + (model.qk_rope_head_dim or 0)) * model.layers * kvb
    return 2.0 * model.layers * model.kv_heads * model.head_dim * kvb


def kv_bytes_per_sequence(
    model: Model, precision: Precision, context_tokens: float | FloatArray
) -> FloatArray:
    """KV bytes of one sequence at `context_tokens`, sliding-window layers capped at the window.

    bytes = per_layer × [(layers − swa_layers) × ctx + swa_layers × min(ctx, window)].
    """
    ctx = np.asarray(context_tokens, dtype=float)
    per_layer = kv_bytes_per_token(model, precision) / model.layers
    swa = model.sliding_window_layers if model.sliding_window_tokens else 0
    window = float(model.sliding_window_tokens or 0)
    return per_layer * ((model.layers - swa) * ctx + swa * np.minimum(ctx, window))


def attention_dp(model: Model, ep: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Attention data-parallel: a MoE model served with expert parallelism (ep > 1)."""
    return np.asarray(ep) > 1 if model.experts > 1 else np.zeros(np.shape(ep), dtype=bool)


def kv_shards(model: Model, tp: npt.ArrayLike, pp: npt.ArrayLike, ep: npt.ArrayLike) -> FloatArray:
    """Accelerators one sequence's KV cache is spread over (see module docstring)."""
    tp_a, pp_a = np.asarray(tp, dtype=float), np.asarray(pp, dtype=float)
    adp = attention_dp(model, ep)
    mla = model.attention == AttentionKind.mla
    heads = np.ones_like(tp_a) if mla else np.minimum(tp_a, model.kv_heads)
    return np.where(adp, tp_a, heads) * pp_a


def weight_bytes_per_accelerator(
    model: Model, precision: Precision, tp: npt.ArrayLike, pp: npt.ArrayLike, ep: npt.ArrayLike
) -> FloatArray:
    """Weight bytes held by one accelerator: W ÷ (tp·pp), attention replicated under attention-DP.

    With attention-DP: (W − A) ÷ (tp·pp) + A ÷ pp, A = attention bytes.
    """
    tp_a, pp_a = np.asarray(tp, dtype=float), np.asarray(pp, dtype=float)
    w = weight_bytes(model, precision)
    attn = model_shape(model).attention * BYTES_PER_PARAM[precision]
    adp = attention_dp(model, ep)
    return np.where(adp, (w - attn) / (tp_a * pp_a) + attn / pp_a, w / (tp_a * pp_a))


def usable_bytes(memory_gb: float) -> float:
    """Usable device memory: memory × (1 − 0.08) − min(2 GB, 5 % of memory), in bytes
    (the fixed part shrinks for small SRAM-only chips)."""
    fixed = min(RESERVE_FIXED_GB, 0.05 * memory_gb)
    return (memory_gb * (1.0 - RESERVE_FRACTION) - fixed) * GB


@dataclass(frozen=True)
class MemoryFit:
    """Per-accelerator memory of a set of options (arrays, bytes)."""

    weights_bytes: FloatArray
    kv_bytes_per_sequence: FloatArray
    usable_bytes: float
    max_concurrency: FloatArray

    def used_gb(self, concurrency: npt.ArrayLike) -> FloatArray:
        """Memory per accelerator at `concurrency`: weights + B × KV/seq + reserve, GB."""
        b = np.asarray(concurrency, dtype=float)
        reserve = RESERVE_FIXED_GB * GB
        return (self.weights_bytes + b * self.kv_bytes_per_sequence + reserve) / GB


def memory_fit(
    model: Model,
    precision: Precision,
    memory_gb: float,
    context_tokens: float,
    tp: npt.ArrayLike,
    pp: npt.ArrayLike,
    ep: npt.ArrayLike,
) -> MemoryFit:
    """Weights and KV per accelerator and the largest concurrency that fits (0 if none)."""
    w = weight_bytes_per_accelerator(model, precision, tp, pp, ep)
    kv = kv_bytes_per_sequence(model, precision, context_tokens) / kv_shards(model, tp, pp, ep)
    usable = usable_bytes(memory_gb)
    bmax = np.floor(np.maximum(usable - w, 0.0) / kv)
    return MemoryFit(w, kv, usable, bmax)
