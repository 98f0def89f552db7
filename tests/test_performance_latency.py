"""FLOP arithmetic and monotonicity of the latency model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from perf_fixtures import catalog

from planner.performance import hardware_of, params_for
from planner.performance.latency import Evaluator, accepted_tokens_per_step
from planner.schema import Precision, Speculative

ONE = np.array([1.0])


def _ev(system: str = "nvidia-hgx-h200", model: str = "llama-3.3-70b", **hw_changes: float):
    cat = catalog()
    sysm = cat.systems[system]
    hw = dataclasses.replace(hardware_of(sysm, cat), **hw_changes)
    return Evaluator(cat.models[model], Precision.fp8, hw, params_for(sysm, cat), 1024, 1024)


def test_prefill_flops_hand_check() -> None:
    ev = _ev()
    # linear: 2 × (params − input embedding) per token
    assert ev.flin_tok == pytest.approx(2 * (70.55e9 - 128_256 * 8192))
    # causal attention: layers × n²/2 × heads × head_dim × 4
    assert ev.prefill_attention_flops(1024) == pytest.approx(80 * 1024 * 1024 / 2 * 64 * 128 * 4)
    assert ev.decode_attention_flops(2048) == pytest.approx(80 * 2048 * 64 * 128 * 4)


def test_speculative_tokens_per_step() -> None:
    assert accepted_tokens_per_step(None) == 1.0
    s = Speculative(draft_tokens=3, acceptance_rate=0.7)
    assert accepted_tokens_per_step(s) == pytest.approx((1 - 0.7**4) / 0.3)


def test_more_concurrency_never_lowers_throughput() -> None:
    ev = _ev()
    b = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256], dtype=float)
    n = np.ones_like(b)
    r = ev.aggregated(n * 4, n, n, b, n, n)
    assert np.all(np.diff(r["output_tokens_per_s"]) >= 0)
    d = ev.decode_only(n * 4, n, n, b, n, n)
    assert np.all(np.diff(d["output_tokens_per_s"]) >= 0)


@pytest.mark.parametrize("model", ["llama-3.3-70b", "mixtral-8x7b", "deepseek-r1"])
def test_faster_links_never_slow_a_replica(model: str) -> None:
    slow, fast = _ev(model=model, scale_up_gb_per_s=100.0), _ev(model=model)
    tp = np.array([8.0, 8.0, 8.0])
    ep = np.array([1.0, 8.0, 8.0]) if model != "llama-3.3-70b" else np.ones(3)
    b = np.array([1.0, 16.0, 128.0])
    one = np.ones(3)
    s_slow, _ = slow.decode_step(tp, one, ep, b, one)
    s_fast, _ = fast.decode_step(tp, one, ep, b, one)
    assert np.all(s_fast <= s_slow)
    assert np.all(fast.prefill_seconds(tp, one, ep)[0] <= slow.prefill_seconds(tp, one, ep)[0])


def test_more_bandwidth_never_slows_decode() -> None:
    b = np.array([1.0, 8.0, 64.0, 512.0])
    one = np.ones(4)
    prev = np.full(4, np.inf)
    for bw in (2.0, 3.35, 4.8, 8.0):
        step, _ = _ev(bandwidth_tbps=bw).decode_step(one * 8, one, one, b, one)
        assert np.all(step <= prev)
        prev = step


def test_prefill_interference_stretches_tpot() -> None:
    ev = _ev()
    one = np.ones(2)
    b = np.array([8.0, 8.0])
    r = ev.aggregated(one * 8, one, one, b, one, one)
    d = ev.decode_only(one * 8, one, one, b, one, one)
    assert np.all(r["tpot_ms"] > d["tpot_ms"])
