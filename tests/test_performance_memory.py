"""Hand-checked memory arithmetic: dense GQA (Llama 3.3 70B) and MLA MoE (DeepSeek-R1)."""

from __future__ import annotations

import numpy as np
import pytest
from perf_fixtures import catalog

from planner.performance.memory import (
    kv_bytes_per_sequence,
    kv_bytes_per_token,
    kv_shards,
    memory_fit,
    model_shape,
    usable_bytes,
    weight_bytes,
)
from planner.schema import Precision


def test_llama_70b_kv_and_weights() -> None:
    m = catalog().models["llama-3.3-70b"]
    assert kv_bytes_per_token(m, Precision.fp8) == 2 * 80 * 8 * 128 * 1 == 163_840
    assert kv_bytes_per_token(m, Precision.bf16) == 2 * 163_840
    assert kv_bytes_per_token(m, Precision.fp4) == 163_840  # KV stays fp8 under fp4 weights
    emb = 2 * 128_256 * 8192
    assert weight_bytes(m, Precision.bf16) == pytest.approx(70.55e9 * 2)
    assert weight_bytes(m, Precision.fp8) == pytest.approx((70.55e9 - emb) * 1.002 + emb * 2)
    # KV sharded over min(tp, kv_heads): tp 16 on 8 KV heads replicates
    assert kv_shards(m, np.array([4, 8, 16]), np.array([1, 1, 1]), np.array([1, 1, 1])).tolist() \
        == [4, 8, 8]


def test_llama_70b_max_concurrency() -> None:
    m = catalog().models["llama-3.3-70b"]
    fit = memory_fit(m, Precision.fp8, 141.0, 2048, np.array([8]), np.array([1]), np.array([1]))
    w = weight_bytes(m, Precision.fp8) / 8
    kv = 163_840 * 2048 / 8
    expected = np.floor((usable_bytes(141.0) - w) / kv)
    assert fit.max_concurrency[0] == expected
    assert 1000 < expected < 5000  # (129.7 − 2 − 9.0) GB / 41.9 MB ≈ 2,800


def test_deepseek_mla_and_moe() -> None:
    m = catalog().models["deepseek-r1"]
    assert kv_bytes_per_token(m, Precision.fp8) == (512 + 64) * 61 * 1 == 35_136
    # sequence of 9,216 tokens at fp8
    assert kv_bytes_per_sequence(m, Precision.fp8, 9216) == pytest.approx(35_136 * 9216)
    assert weight_bytes(m, Precision.fp8) / 1e9 == pytest.approx(671, rel=0.01)
    assert weight_bytes(m, Precision.fp4) / 1e9 == pytest.approx(0.5625 * 671, rel=0.02)
    s = model_shape(m)
    assert s.expert == 3 * 7168 * 2048
    assert s.moe_layers == 58
    assert s.non_expert / 1e9 == pytest.approx(671 - 58 * 256 * 3 * 7168 * 2048 / 1e9)
    # active ≈ non-expert + 58 × 8 experts
    assert (s.non_expert + 58 * 8 * s.expert) / 1e9 == pytest.approx(37, rel=0.06)
    # MLA latent replicated across TP (tp=8) unless attention-DP (ep>1)
    sh = kv_shards(m, np.array([8, 8]), np.array([1, 1]), np.array([1, 8]))
    assert sh.tolist() == [1, 8]


def test_experts_touched() -> None:
    """E·(1 − (1 − k/E)^B): one token touches k experts; a big batch touches nearly all."""
    m = catalog().models["deepseek-r1"]
    s = model_shape(m)
    e, k = s.experts, s.experts_per_token
    touched = lambda b: e * (1 - (1 - k / e) ** b)  # noqa: E731
    assert touched(1) == pytest.approx(8)
    assert touched(64) == pytest.approx(256 * (1 - (248 / 256) ** 64))
    assert 220 < touched(64) < 256


def test_sliding_window_caps_kv() -> None:
    m = catalog().models["gpt-oss-120b"]
    full = kv_bytes_per_token(m, Precision.fp8) / m.layers
    got = kv_bytes_per_sequence(m, Precision.fp8, 4096)
    assert got == pytest.approx(full * (18 * 4096 + 18 * 128))
