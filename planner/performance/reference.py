"""A small built-in reference catalog for tests, benchmarks and calibration fallbacks.

The shipped YAML catalog (`catalogs/*.yaml`) is the source of truth; this module only builds an
equivalent in-memory `Catalog` (numbers from `shared/reference/hardware-and-costs.md` and the
models' Hugging Face configs) so that the performance model can be tested and calibrated even
where the YAML catalog is absent or incomplete. `reference_catalog(merge=catalog)` fills gaps of
a loaded catalog with these entries (entries of the loaded catalog win).
"""

from __future__ import annotations

from typing import Any

from planner.schema import Accelerator, Catalog, Model, Source, System

_SRC = {
    "default": Source(
        source="shared/reference/hardware-and-costs.md (test fixture)",
        confidence="medium",
        kind="DER",
    )
}


def _acc(
    id_: str,
    vendor: str,
    mem: float,
    bw: float,
    tflops: dict[str, float],
    tdp: float,
    dom: int,
    up: float,
    out: float,
    stack: str,
) -> Accelerator:
    return Accelerator(
        id=id_, vendor=vendor, name=id_, memory_gb=mem, memory_bandwidth_tbps=bw,
        tflops_dense=tflops, tdp_w=tdp, scale_up_domain=dom, scale_up_bandwidth_gb_per_s=up,
        scale_out_bandwidth_gb_per_s=out, software_stack=stack, sources=_SRC,
    )  # type: ignore[arg-type]


ACCELERATORS: list[Accelerator] = [
    _acc("nvidia-h100-sxm", "nvidia", 80, 3.35, {"bf16": 989, "fp8": 1979}, 700, 8, 450, 50,
         "nvidia-trtllm"),
    _acc("nvidia-h200-sxm", "nvidia", 141, 4.8, {"bf16": 989, "fp8": 1979}, 700, 8, 450, 50,
         "nvidia-trtllm"),
    _acc("nvidia-b200-sxm", "nvidia", 180, 8.0, {"bf16": 2250, "fp8": 4500, "fp4": 9000}, 1000,
         8, 900, 50, "nvidia-trtllm"),
    _acc("nvidia-gb200", "nvidia", 186, 8.0, {"bf16": 2500, "fp8": 5000, "fp4": 10000}, 1200,
         72, 900, 100, "nvidia-trtllm"),
    _acc("nvidia-gb300", "nvidia", 288, 8.0, {"bf16": 2500, "fp8": 5000, "fp4": 15000}, 1400,
         72, 900, 100, "nvidia-trtllm"),
    _acc("nvidia-l40s", "nvidia", 48, 0.864, {"bf16": 362, "fp8": 733}, 350, 1, 32, 25,
         "nvidia-trtllm"),
    _acc("amd-mi300x", "amd", 192, 5.3, {"bf16": 1307, "fp8": 2615}, 750, 8, 448, 50,
         "amd-rocm"),
    _acc("amd-mi325x", "amd", 256, 6.0, {"bf16": 1307, "fp8": 2615}, 1000, 8, 448, 50,
         "amd-rocm"),
    _acc("amd-mi355x", "amd", 288, 8.0, {"bf16": 2516, "fp8": 5033, "fp4": 10066}, 1400, 8,
         538, 50, "amd-rocm"),
    _acc("intel-gaudi3", "intel", 128, 3.7, {"bf16": 1835, "fp8": 1835}, 900, 8, 600, 50,
         "intel-gaudi"),
    _acc("google-tpu-v6e", "google", 32, 1.64, {"bf16": 918, "int8": 1836}, 300, 256, 400, 25,
         "google-tpu"),
]


def _sys(
    id_: str, acc: str, n: int, kw: float, price: float, *, whole_rack: bool = False,
    ru: int | None = 8, rent_only: bool = False,
) -> System:
    kwargs: dict[str, Any] = dict(
        id=id_, vendor=acc.split("-")[0], name=id_, accelerator=acc, accelerators=n,
        power_kw_max=kw, whole_rack=whole_rack, rack_units=None if whole_rack else ru,
        sources=_SRC,
    )
    if rent_only:
        kwargs.update(rent_only=True, rent_usd_per_accelerator_hour=2.0, power_kw_max=None)
    else:
        kwargs.update(price_usd=price)
    return System(**kwargs)


SYSTEMS: list[System] = [
    _sys("nvidia-hgx-h100", "nvidia-h100-sxm", 8, 10.2, 250_000),
    _sys("nvidia-hgx-h200", "nvidia-h200-sxm", 8, 10.2, 300_000),
    _sys("nvidia-hgx-b200", "nvidia-b200-sxm", 8, 14.3, 450_000),
    _sys("nvidia-gb200-nvl72", "nvidia-gb200", 72, 120.0, 3_300_000, whole_rack=True),
    _sys("nvidia-gb300-nvl72", "nvidia-gb300", 72, 135.0, 3_900_000, whole_rack=True),
    _sys("nvidia-l40s-pcie8", "nvidia-l40s", 8, 5.0, 90_000, ru=4),
    _sys("amd-mi300x-oam8", "amd-mi300x", 8, 9.0, 180_000),
    _sys("amd-mi325x-oam8", "amd-mi325x", 8, 11.0, 220_000),
    _sys("amd-mi355x-oam8", "amd-mi355x", 8, 14.0, 320_000),
    _sys("intel-gaudi3-oam8", "intel-gaudi3", 8, 9.5, 125_000),
    _sys("google-tpu-v6e-8", "google-tpu-v6e", 8, 3.0, 1.0, rent_only=True),
]


def _model(id_: str, **kw: Any) -> Model:
    return Model(id=id_, name=id_, sources=_SRC, **kw)


MODELS: list[Model] = [
    _model("llama-2-70b", params_total_b=69.0, params_active_b=69.0, layers=80,
           hidden_size=8192, attention_heads=64, kv_heads=8, head_dim=128,
           intermediate_size=28672, vocab_size=32000, max_context_tokens=4096),
    _model("llama-3.1-8b", params_total_b=8.03, params_active_b=8.03, layers=32,
           hidden_size=4096, attention_heads=32, kv_heads=8, head_dim=128,
           intermediate_size=14336, vocab_size=128256, max_context_tokens=131072),
    _model("llama-3.1-70b", params_total_b=70.6, params_active_b=70.6, layers=80,
           hidden_size=8192, attention_heads=64, kv_heads=8, head_dim=128,
           intermediate_size=28672, vocab_size=128256, max_context_tokens=131072),
    _model("llama-3.3-70b", params_total_b=70.6, params_active_b=70.6, layers=80,
           hidden_size=8192, attention_heads=64, kv_heads=8, head_dim=128,
           intermediate_size=28672, vocab_size=128256, max_context_tokens=131072),
    _model("llama-3.1-405b", params_total_b=405.8, params_active_b=405.8, layers=126,
           hidden_size=16384, attention_heads=128, kv_heads=8, head_dim=128,
           intermediate_size=53248, vocab_size=128256, max_context_tokens=131072),
    _model("mixtral-8x7b", params_total_b=46.7, params_active_b=12.9, layers=32,
           hidden_size=4096, attention_heads=32, kv_heads=8, head_dim=128, experts=8,
           experts_per_token=2, moe_intermediate_size=14336, vocab_size=32000,
           max_context_tokens=32768),
    _model("deepseek-r1", params_total_b=671.0, params_active_b=37.0, layers=61,
           hidden_size=7168, attention_heads=128, kv_heads=128, head_dim=128,
           attention="mla", kv_lora_rank=512, qk_rope_head_dim=64, intermediate_size=18432,
           experts=256, experts_per_token=8, shared_experts=1, moe_intermediate_size=2048,
           dense_layers=3, vocab_size=129280, max_context_tokens=163840, mtp_layers=1),
    _model("gpt-oss-120b", params_total_b=116.8, params_active_b=5.1, layers=36,
           hidden_size=2880, attention_heads=64, kv_heads=8, head_dim=64, experts=128,
           experts_per_token=4, moe_intermediate_size=2880, sliding_window_tokens=128,
           sliding_window_layers=18, vocab_size=201088, max_context_tokens=131072),
    _model("qwen3-32b", params_total_b=32.8, params_active_b=32.8, layers=64,
           hidden_size=5120, attention_heads=64, kv_heads=8, head_dim=128,
           intermediate_size=25600, vocab_size=151936, max_context_tokens=131072),
    _model("qwen3-235b-a22b", params_total_b=235.1, params_active_b=22.2, layers=94,
           hidden_size=4096, attention_heads=64, kv_heads=4, head_dim=128, experts=128,
           experts_per_token=8, moe_intermediate_size=1536, vocab_size=151936,
           max_context_tokens=131072),
]


def reference_catalog(merge: Catalog | None = None) -> Catalog:
    """The built-in fixture catalog; entries of `merge` (a loaded catalog) take precedence."""
    accs = {a.id: a for a in ACCELERATORS}
    systems = {s.id: s for s in SYSTEMS}
    models = {m.id: m for m in MODELS}
    calibration: dict[str, Any] = {}
    if merge is not None:
        accs.update(merge.accelerators)
        systems.update(merge.systems)
        models.update(merge.models)
        calibration = dict(merge.calibration)
    return Catalog(accelerators=accs, systems=systems, models=models, calibration=calibration)
