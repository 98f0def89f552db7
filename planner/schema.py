"""Pydantic v2 models for catalog entries and problem files.

Every model is frozen and forbids unknown keys, so a typo in a YAML file is an error that names
the key, never a silently ignored setting. Units are part of every field name.
"""

from __future__ import annotations

import datetime
import math
from collections import Counter
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from planner.units import parse_quantity


class Strict(BaseModel):
    """Base: frozen, unknown keys forbidden, docstrings become field descriptions."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, populate_by_name=True
    )


# --------------------------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------------------------


class Confidence(StrEnum):
    high = "high"
    medium = "medium"
    low = "low"


class SourceKind(StrEnum):
    DS = "DS"
    """Vendor datasheet or official vendor document."""
    MB = "MB"
    """Measured benchmark."""
    EST = "EST"
    """Analyst or third-party estimate, market survey."""
    DER = "DER"
    """Derived by arithmetic from cited numbers (the note shows the working)."""
    FIT = "FIT"
    """Fitted by `planner calibrate` to measured results."""
    USER = "USER"
    """Supplied by the user of planner."""


class Source(Strict):
    """Where a number comes from and how much to trust it."""

    source: str = Field(min_length=3)
    """URL or document the value was taken from."""
    confidence: Confidence
    """high: primary source, cross-checked; medium: primary unchecked or two secondaries; low."""
    kind: SourceKind = SourceKind.DS
    """DS datasheet, MB measured, EST estimate, DER derived, FIT fitted, USER user-supplied."""
    note: str | None = None
    """Working for derived values, or caveats (e.g. 'estimate: 8 x TDP plus host')."""


Sources = dict[str, Source]


class Sourced(Strict):
    """Mixin: every numeric field that is set must be covered by `sources`.

    A key of `sources` is a field name (or a dotted path into a mapping field, e.g.
    `tflops_dense.fp8`); the key `default` covers every field without a key of its own.
    """

    sources: Sources = Field(default_factory=dict)
    """Provenance per field name; `default` applies to fields not listed."""

    @model_validator(mode="after")
    def _every_number_has_a_source(self) -> Sourced:
        if "default" in self.sources:
            unknown = [
                k
                for k in self.sources
                if k != "default" and k.split(".")[0] not in type(self).model_fields
            ]
        else:
            unknown = [k for k in self.sources if k.split(".")[0] not in type(self).model_fields]
            missing = [
                name
                for name in _numeric_fields_set(self)
                if name not in self.sources
                and not any(k.startswith(name + ".") for k in self.sources)
            ]
            if missing:
                raise ValueError(
                    "no source for " + ", ".join(missing) + "; add them under `sources` "
                    "(or a `default` source)"
                )
        if unknown:
            raise ValueError(
                "`sources` names unknown fields: " + ", ".join(sorted(unknown))
            )
        return self


def _numeric_fields_set(entry: BaseModel) -> list[str]:
    names = []
    for name in type(entry).model_fields:
        if name in ("sources", "id"):
            continue
        value = getattr(entry, name)
        if isinstance(value, bool):
            continue
        if isinstance(value, BaseModel):  # e.g. tco_tiers: numbers one level down
            value = value.model_dump()
        if isinstance(value, int | float) or (
            isinstance(value, dict)
            and any(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values())
        ):
            names.append(name)
    return names


# --------------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------------

def _not_bool(value: Any) -> Any:
    """YAML reads `true` as a boolean, which pydantic would take for 1."""
    if isinstance(value, bool):
        raise ValueError("expected a number")
    return value


NOT_BOOL = BeforeValidator(_not_bool)
"""On every number: `power_mw: true` is a mistake, not 1 MW."""


Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", min_length=2, max_length=80)]
PositiveFloat = Annotated[float, NOT_BOOL, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, NOT_BOOL, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, NOT_BOOL, Field(gt=0, le=1, allow_inf_nan=False)]


class Precision(StrEnum):
    bf16 = "bf16"
    fp8 = "fp8"
    fp4 = "fp4"
    int8 = "int8"


class Cooling(StrEnum):
    air = "air"
    liquid = "liquid"


class Accelerator(Sourced):
    """One accelerator chip (GPU, TPU, LPU, ...)."""

    id: Id
    """Catalog id, e.g. `nvidia-h200-sxm`."""
    vendor: str = Field(min_length=2)
    """Vendor, lower case (nvidia, amd, intel, google, groq, ...)."""
    name: str
    """Marketing name."""
    memory_gb: PositiveFloat
    """Usable device memory (HBM / GDDR / SRAM) in GB (1e9 bytes)."""
    memory_bandwidth_tbps: PositiveFloat
    """Peak device-memory bandwidth in TB/s."""
    tflops_dense: Annotated[dict[Precision, PositiveFloat], Field(min_length=1)]
    """Dense (no 2:4 sparsity) peak TFLOPS per supported precision (at least one)."""
    tdp_w: PositiveFloat | None = None
    """Thermal design / total graphics power per chip, W (None where not published)."""
    scale_up_domain: Annotated[int, NOT_BOOL, Field(ge=1)]
    """Accelerators in one scale-up (NVLink / Infinity Fabric / ICI) domain."""
    scale_up_bandwidth_gb_per_s: PositiveFloat
    """Scale-up bandwidth per accelerator, GB/s, unidirectional (per direction)."""
    scale_out_bandwidth_gb_per_s: PositiveFloat
    """Scale-out (InfiniBand / Ethernet) bandwidth per accelerator, GB/s, unidirectional."""
    software_stack: str = Field(min_length=2)
    """Serving software stack whose calibrated efficiencies apply (e.g. `nvidia-trtllm`)."""


class TcoTiers(Strict):
    """Published all-in cost per accelerator-hour (InferenceX `costh`/`costn`/`costr`)."""

    hyperscaler_usd_per_accelerator_hour: PositiveFloat | None = None
    """Hyperscaler owns the chips, 4-year economic life (InferenceX `costh`)."""
    neocloud_usd_per_accelerator_hour: PositiveFloat | None = None
    """Neocloud owns the chips, 4-year life (InferenceX `costn`)."""
    rental_usd_per_accelerator_hour: PositiveFloat | None = None
    """3-year rental contract, 25% upfront (InferenceX `costr`)."""


class System(Sourced):
    """The unit one buys or rents: a server, or a rack-scale system."""

    id: Id
    """Catalog id, e.g. `nvidia-hgx-h200`."""
    vendor: str = Field(min_length=2)
    """Vendor of the accelerators, lower case."""
    name: str
    """Human-readable name."""
    accelerator: Id
    """Id of the accelerator this system carries."""
    accelerators: Annotated[int, NOT_BOOL, Field(ge=1)]
    """Accelerators per system."""
    power_kw_max: PositiveFloat | None = None
    """Maximum (nameplate / provisioned) IT power of one system, kW. None for rent-only."""
    power_kw_idle: NonNegativeFloat | None = None
    """Idle IT power, kW; default 30% of max when not given."""
    rack_units: Annotated[int, NOT_BOOL, Field(ge=1, le=60)] | None = None
    """Height in rack units; None when the system is a whole rack."""
    whole_rack: bool = False
    """True for rack-scale systems (NVL72): one system fills one rack position."""
    cooling: Cooling = Cooling.air
    """Cooling it needs: air or direct liquid cooling."""
    price_usd: PositiveFloat | None = None
    """Purchase price of one system in USD; None for rent-only systems."""
    price_includes: str | None = None
    """What `price_usd` covers (e.g. 'server with 8 GPUs, no cluster network')."""
    rent_usd_per_accelerator_hour: PositiveFloat | None = None
    """Cloud rental price per accelerator-hour, if it can be rented."""
    tco_tiers: TcoTiers | None = None
    """Published all-in $/accelerator-hour tiers, if any."""
    all_in_power_kw_per_accelerator: PositiveFloat | None = None
    """All-in facility power per accelerator used with `tco_tiers` (InferenceX), kW."""
    availability: Fraction = 0.97
    """Share of time capacity is usable (failures, maintenance)."""
    available_from: str | None = None
    """First general availability, e.g. '2025-Q3' (informative)."""
    rent_only: bool = False
    """True when the system cannot be bought (e.g. TPUs)."""

    @model_validator(mode="after")
    def _form_factor(self) -> System:
        if not self.rent_only:
            if self.price_usd is None:
                raise ValueError("price_usd is required unless rent_only: true")
            if self.power_kw_max is None:
                raise ValueError("power_kw_max is required unless rent_only: true")
            if not self.whole_rack and self.rack_units is None:
                raise ValueError("give rack_units, or whole_rack: true")
        elif self.rent_usd_per_accelerator_hour is None and self.tco_tiers is None:
            raise ValueError("a rent_only system needs rent_usd_per_accelerator_hour")
        if (
            self.power_kw_idle is not None
            and self.power_kw_max is not None
            and self.power_kw_idle > self.power_kw_max
        ):
            raise ValueError(
                f"power_kw_idle {self.power_kw_idle} exceeds power_kw_max {self.power_kw_max}"
            )
        return self

    @property
    def idle_kw(self) -> float:
        """Idle power, kW (30% of max when not given)."""
        if self.power_kw_idle is not None:
            return self.power_kw_idle
        return 0.3 * (self.power_kw_max or 0.0)


class AttentionKind(StrEnum):
    gqa = "gqa"
    mla = "mla"


class Model(Sourced):
    """A served model's architecture: what sets its memory, FLOPs and bytes per token."""

    id: Id
    """Catalog id, e.g. `llama-3.3-70b`."""
    name: str
    """Human-readable name."""
    hf_repo: str | None = None
    """Hugging Face repository the serving recipe points at."""
    params_total_b: PositiveFloat
    """Total parameters, billions."""
    params_active_b: PositiveFloat
    """Parameters active per token, billions (= total for dense models)."""
    layers: Annotated[int, NOT_BOOL, Field(ge=1)]
    """Transformer layers."""
    hidden_size: Annotated[int, NOT_BOOL, Field(ge=1)]
    """Model (residual) width."""
    attention_heads: Annotated[int, NOT_BOOL, Field(ge=1)]
    """Query heads."""
    kv_heads: Annotated[int, NOT_BOOL, Field(ge=1)]
    """Key/value heads (GQA); for MLA the number of attention heads."""
    head_dim: Annotated[int, NOT_BOOL, Field(ge=1)]
    """Dimension per head (for MLA: the non-rope q/k head dim)."""
    attention: AttentionKind = AttentionKind.gqa
    """Attention kind: gqa (incl. MHA/MQA) or mla."""
    kv_lora_rank: Annotated[int, NOT_BOOL, Field(ge=1)] | None = None
    """MLA compressed KV latent size (DeepSeek: 512)."""
    qk_rope_head_dim: Annotated[int, NOT_BOOL, Field(ge=1)] | None = None
    """MLA decoupled rope key dim cached beside the latent (DeepSeek: 64)."""
    intermediate_size: Annotated[int, NOT_BOOL, Field(ge=1)] | None = None
    """Dense MLP intermediate size."""
    experts: Annotated[int, NOT_BOOL, Field(ge=1)] = 1
    """Routed experts per MoE layer (1 for dense)."""
    experts_per_token: Annotated[int, NOT_BOOL, Field(ge=1)] = 1
    """Routed experts activated per token."""
    shared_experts: Annotated[int, NOT_BOOL, Field(ge=0)] = 0
    """Always-active shared experts per MoE layer."""
    moe_intermediate_size: Annotated[int, NOT_BOOL, Field(ge=1)] | None = None
    """Intermediate size of one expert."""
    dense_layers: Annotated[int, NOT_BOOL, Field(ge=0)] = 0
    """Leading layers with a dense MLP in an otherwise MoE model (DeepSeek-V3/R1: 3)."""
    sliding_window_tokens: Annotated[int, NOT_BOOL, Field(ge=1)] | None = None
    """Sliding-window size of windowed attention layers, if any."""
    sliding_window_layers: Annotated[int, NOT_BOOL, Field(ge=0)] = 0
    """Layers that use the sliding window (their KV cache is capped at the window)."""
    vocab_size: Annotated[int, NOT_BOOL, Field(ge=1)]
    """Vocabulary size."""
    max_context_tokens: Annotated[int, NOT_BOOL, Field(ge=1)]
    """Maximum context length (input + output) in tokens."""
    mtp_layers: Annotated[int, NOT_BOOL, Field(ge=0)] = 0
    """Multi-token-prediction heads shipped with the model (DeepSeek: 1), usable as drafts."""

    @property
    def is_moe(self) -> bool:
        return self.experts > 1

    @model_validator(mode="after")
    def _shape(self) -> Model:
        if self.params_active_b > self.params_total_b:
            raise ValueError("params_active_b exceeds params_total_b")
        if self.experts_per_token > self.experts:
            raise ValueError("experts_per_token exceeds experts")
        if self.dense_layers > self.layers or self.sliding_window_layers > self.layers:
            raise ValueError("dense_layers and sliding_window_layers are at most layers")
        if self.is_moe and self.dense_layers == self.layers:
            raise ValueError("a MoE model (experts > 1) needs a MoE layer: dense_layers below "
                             "layers")
        if self.is_moe and self.moe_intermediate_size is None and \
                self.experts_per_token == self.experts:
            # an expert's size is then derived from (total - active) ÷ the experts never active
            raise ValueError("experts_per_token equal to experts needs moe_intermediate_size")
        if self.attention == AttentionKind.mla and (
            self.kv_lora_rank is None or self.qk_rope_head_dim is None
        ):
            raise ValueError("attention: mla needs kv_lora_rank and qk_rope_head_dim")
        if self.attention == AttentionKind.gqa and self.attention_heads % self.kv_heads:
            raise ValueError(
                f"attention_heads {self.attention_heads} is not a multiple of kv_heads "
                f"{self.kv_heads}"
            )
        return self


class Mode(StrEnum):
    aggregated = "aggregated"
    prefill = "prefill"
    decode = "decode"


MAX_TOKENS_PER_S_PER_ACCELERATOR = 1e6
"""Output tokens/s one accelerator may be measured at: 54× the best MLPerf v5.1 result per
accelerator (18,370, a B200 on Llama 3.1 8B Offline); more is a unit or typing mistake."""


class MeasuredRow(Strict):
    """One measured operating point of a deployment (user CSV or catalogs/measured/). Each
    number is bounded by what a real deployment can have, so a typing mistake cannot buy a
    fleet for nothing."""

    system: Id
    """System id the measurement was taken on."""
    model: Id
    """Model id."""
    precision: Precision
    """Weight precision."""
    tp: Annotated[int, NOT_BOOL, Field(ge=1, le=1024)] = 1
    """Tensor-parallel degree."""
    pp: Annotated[int, NOT_BOOL, Field(ge=1, le=1024)] = 1
    """Pipeline-parallel degree."""
    ep: Annotated[int, NOT_BOOL, Field(ge=1, le=4096)] = 1
    """Expert-parallel degree."""
    concurrency: Annotated[int, NOT_BOOL, Field(ge=1, le=1_000_000)]
    """Concurrent requests per replica."""
    input_tokens: Annotated[int, NOT_BOOL, Field(ge=1, le=10_000_000)]
    """Input tokens per request."""
    output_tokens: Annotated[int, NOT_BOOL, Field(ge=1, le=10_000_000)]
    """Output tokens per request."""
    output_tokens_per_s: PositiveFloat
    """Output tokens per second of one replica (at most MAX_TOKENS_PER_S_PER_ACCELERATOR per
    accelerator, tp × pp of them)."""
    ttft_ms: Annotated[float, NOT_BOOL, Field(gt=0, le=1e7, allow_inf_nan=False)]
    """Time to first token, ms."""
    tpot_ms: Annotated[float, NOT_BOOL, Field(gt=0, le=1e7, allow_inf_nan=False)]
    """Time per output token, ms."""
    source: str = Field(min_length=1)
    """Where the measurement comes from."""
    mode: Mode = Mode.aggregated
    """Serving mode the row describes."""

    @model_validator(mode="after")
    def _a_rate_an_accelerator_can_reach(self) -> MeasuredRow:
        per_accelerator = self.output_tokens_per_s / (self.tp * self.pp)
        if per_accelerator > MAX_TOKENS_PER_S_PER_ACCELERATOR:
            raise ValueError(
                f"column 'output_tokens_per_s': found {self.output_tokens_per_s:g} over tp × pp "
                f"= {self.tp * self.pp} accelerators, {per_accelerator:.3g} each; expected at "
                f"most {MAX_TOKENS_PER_S_PER_ACCELERATOR:g} per accelerator")
        return self


Efficiency = Annotated[float, NOT_BOOL, Field(gt=0, le=1, allow_inf_nan=False)] | None
Microseconds = Annotated[float, NOT_BOOL, Field(ge=0, le=1e6, allow_inf_nan=False)] | None


class StackCalibration(Strict):
    """One software stack's performance-model parameters (`planner calibrate` fits them;
    `planner.performance.params.Params` says what each does). A parameter left out keeps its
    default."""

    compute_eff_fp8: Efficiency = None
    """Share of dense FP8 peak TFLOPS reached by GEMMs."""
    compute_eff_fp4: Efficiency = None
    """Share of dense FP4 peak TFLOPS reached by GEMMs."""
    compute_eff_bf16: Efficiency = None
    """Share of dense BF16 peak TFLOPS (FP8's when left out)."""
    bw_eff: Efficiency = None
    """Share of HBM bandwidth reached in decode."""
    step_overhead_ms: Annotated[float, NOT_BOOL, Field(ge=0, le=1000, allow_inf_nan=False)] | None = None
    """Fixed time per decode step, ms."""
    server_tail: Annotated[float, NOT_BOOL, Field(ge=1, le=100, allow_inf_nan=False)] | None = None
    """p99 / mean multiplier of queueing and prefill interference (Server scenario)."""
    comm_eff: Efficiency = None
    """Share of scale-up bandwidth reached by collectives."""
    comm_latency_us: Microseconds = None
    """Latency of one collective in the scale-up domain, µs."""
    scale_out_latency_us: Microseconds = None
    """Latency of one collective across systems, µs."""
    cross_domain_eff: Efficiency = None
    """Efficiency of traffic that leaves the scale-up domain."""
    source: str | None = None
    """Where the values come from."""
    rows: Annotated[int, NOT_BOOL, Field(ge=0)] | None = None
    """Measured results the fit used."""
    groups: Annotated[int, NOT_BOOL, Field(ge=0)] | None = None
    """Groups of results (system, model, scenario) the fit used."""
    median_abs_error: NonNegativeFloat | None = None
    """Median absolute relative error of the fit."""
    worst_abs_error: NonNegativeFloat | None = None
    """Worst absolute relative error of the fit."""
    fitted_on: str | datetime.date | None = None
    """Date of the fit."""


class CalibrationFile(Strict):
    """A catalog directory's `calibration.yaml`."""

    stacks: dict[Name, StackCalibration] = Field(default_factory=dict)
    """Parameters per software stack id (e.g. `nvidia-trtllm`)."""


class Catalog(Strict):
    """Everything loaded from catalog files, indexed by id."""

    accelerators: dict[str, Accelerator] = Field(default_factory=dict)
    """Accelerators by id."""
    systems: dict[str, System] = Field(default_factory=dict)
    """Systems by id."""
    models: dict[str, Model] = Field(default_factory=dict)
    """Models by id."""
    calibration: dict[str, Any] = Field(default_factory=dict)
    """Fitted performance-model parameters per software stack (see performance.calibration)."""


class CatalogFile(Strict):
    """The shape of one catalog YAML file; any of the lists may be absent."""

    accelerators: list[Accelerator] = Field(default_factory=list)
    """Accelerator entries."""
    systems: list[System] = Field(default_factory=list)
    """System entries."""
    models: list[Model] = Field(default_factory=list)
    """Model entries."""


# --------------------------------------------------------------------------------------------
# Problem files
# --------------------------------------------------------------------------------------------


def _quantity(unit: str) -> BeforeValidator:
    """Accept a number (already in `unit`) or a string like '20MW' / '350 kW' / '1.5M tok/s'."""

    def convert(value: Any) -> Any:
        if isinstance(value, str):
            return parse_quantity(value, unit)
        return value

    return BeforeValidator(convert)


def _label(value: Any) -> Any:
    """YAML reads `2027` as an int and `2027-01-01` as a date; a period label is text either
    way, as it is in a forecast CSV."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"

PeriodId = Annotated[
    str, BeforeValidator(_label), Field(min_length=1, max_length=40, pattern=_NAME)
]
"""A period label such as `2027H1`, `2027` or `2027-01-01` (read as text)."""

Name = Annotated[str, Field(min_length=1, max_length=40, pattern=_NAME)]
"""A site or workload id (letters, digits, `.`, `_`, `-`): it appears in messages, CSV and paths."""

# Sanity limits on problem numbers. They are far beyond any real fleet; they exist so that a typo
# (1e30 for 1e3) is an input error naming the field, not a solver lost in 1e300-sized coefficients.
MAX_DEMAND_TOK_S = 1e12
"""Peak output tokens/s of one workload in one period."""
MIN_DEMAND_TOK_S = 1e-3
"""The least demand that is not 0: below it HiGHS's tolerances (1e-7 thousand tok/s) take a
demand for covered with no replica at all (a demand of 1e-6 tok/s was planned with none)."""


def _csv_name(value: str) -> str:
    if not value.strip().lower().endswith(".csv"):  # '1.5M tok/s' alone is not a demand
        raise ValueError("expected demand per period ({2027H1: 1.5M tok/s, ...}) or a .csv "
                         "file name")
    return value


def _listed_once(values: list[Any]) -> list[Any]:
    counts = Counter(values)
    repeated = [str(getattr(v, "value", v)) for v, n in counts.items() if n > 1]
    if repeated:  # a system listed twice was two systems to the MIP, with a different optimum
        raise ValueError(f"{', '.join(repr(r) for r in repeated)} listed more than once; "
                         "expected each once")
    return values


ONCE_EACH = AfterValidator(_listed_once)
"""A list of ids or choices in which each may appear once."""


def _zero_or_servable(value: float) -> float:
    if 0 < value < MIN_DEMAND_TOK_S:
        raise ValueError(f"expected 0 or at least {MIN_DEMAND_TOK_S:g} output tokens/s")
    return value
MAX_POWER_MW = 1e5
"""Power budget of one site (100 GW)."""
MAX_COUNT = 10**7
"""Racks, systems or accelerators counted in one place."""
MAX_PERIODS = 1000
"""Periods in one problem (twenty years of weeks): 500 solve in 9 s; 20,000 took minutes to
build, past any time limit."""
MAX_PERIOD_HOURS = 87_840.0
"""Hours in one period (ten years)."""
MAX_USD = 1e15
"""Any money amount."""

Count = Annotated[int, NOT_BOOL, Field(ge=0, le=MAX_COUNT)]

MegaWatts = Annotated[float, NOT_BOOL, _quantity("MW"), Field(ge=0, le=MAX_POWER_MW, allow_inf_nan=False)]
KiloWatts = Annotated[float, NOT_BOOL, _quantity("kW"), Field(gt=0, le=1e4, allow_inf_nan=False)]


class Period(Strict):
    """One planning period."""

    id: PeriodId
    """Period label, e.g. `2027H1`; periods are listed in time order."""
    hours: Annotated[float, NOT_BOOL, Field(gt=0, le=MAX_PERIOD_HOURS, allow_inf_nan=False)] = 8760.0
    """Hours in the period (4380 for a half year; at most ten years)."""


class CostBasis(StrEnum):
    capex = "capex"
    tco_tier = "tco_tier"


class TcoTier(StrEnum):
    hyperscaler = "hyperscaler"
    neocloud = "neocloud"
    rental = "rental"


class Finance(Strict):
    """How money is counted."""

    discount_rate: Annotated[float, NOT_BOOL, Field(ge=0, le=1, allow_inf_nan=False)] = 0.08
    """Annual discount rate (WACC) for the capital recovery factor and discounting."""
    life_years: Annotated[float, NOT_BOOL, Field(ge=0.1, le=30, allow_inf_nan=False)] = 4.0
    """Economic life of purchased systems, years (InferenceX uses 4; at least 0.1)."""
    network_install_share: Annotated[float, NOT_BOOL, Field(ge=0, le=2, allow_inf_nan=False)] = 0.12
    """Cluster network, cabling and installation as a share of system price."""
    maintenance_share: Annotated[float, NOT_BOOL, Field(ge=0, le=1, allow_inf_nan=False)] = 0.05
    """Maintenance and support per year as a share of system price."""
    software_usd_per_accelerator_year: Annotated[
        float, NOT_BOOL, Field(ge=0, le=1e7, allow_inf_nan=False)
    ] = 0.0
    """Software licences per accelerator-year (e.g. NVIDIA AI Enterprise)."""
    cost_basis: CostBasis = CostBasis.capex
    """`capex`: build costs bottom-up; `tco_tier`: price owned systems at a published
    all-in $/accelerator-hour tier with all-in kW per accelerator (seed table)."""
    tco_tier: TcoTier = TcoTier.hyperscaler
    """Which published tier to use when cost_basis is tco_tier."""


class SiteKind(StrEnum):
    owned = "owned"
    cloud = "cloud"


class Site(Strict):
    """A place where systems run: an owned / colocated data hall, or a cloud region."""

    id: Name
    """Site id, e.g. `dc1`."""
    kind: SiteKind = SiteKind.owned
    """`owned` (power, racks, energy) or `cloud` (systems rented per accelerator-hour)."""
    power_mw: MegaWatts | dict[PeriodId, MegaWatts] | None = None
    """Facility power budget in MW (incl. PUE), one value or one per period id."""
    pue: Annotated[float, NOT_BOOL, Field(ge=1, le=3, allow_inf_nan=False)] = 1.3
    """Power usage effectiveness: facility power / IT power."""
    racks: Count | dict[PeriodId, Count] | None = None
    """Rack positions, one value or one per period id (None: unlimited)."""
    rack_power_kw: KiloWatts = 40.0
    """Power one rack position can deliver, kW."""
    rack_units: Annotated[int, NOT_BOOL, Field(ge=1, le=60)] = 42
    """Usable rack units per rack."""
    liquid_cooling: bool = False
    """Whether direct liquid cooling is available (needed by liquid-cooled systems)."""
    electricity_usd_per_kwh: Annotated[float, NOT_BOOL, Field(ge=0, le=100, allow_inf_nan=False)] = 0.08
    """Electricity price, $/kWh."""
    colocation_usd_per_kw_month: Annotated[float, NOT_BOOL, Field(ge=0, le=1e5, allow_inf_nan=False)] = 0.0
    """Facility charge on provisioned IT kW per month (colocation: CBRE's North American
    wholesale average was $184/kW-month in H2 2024)."""
    datacenter_capex_usd_per_mw: Annotated[float, NOT_BOOL, Field(ge=0, le=1e9, allow_inf_nan=False)] = 0.0
    """An owned hall's construction cost per MW of critical IT load, charged like colocation on
    each installed system's provisioned IT kW, as an annuity over datacenter_life_years at the
    discount rate (Cushman & Wakefield 2025: $11.7M/MW, the average of 19 US markets)."""
    datacenter_life_years: Annotated[float, NOT_BOOL, Field(ge=1, le=60, allow_inf_nan=False)] = 10.0
    """Years the hall's capex is recovered over (10 in cliffcenter.com's inference-economics
    calculator; buildings are often written off over 15–20)."""
    rack_usd_per_month: Annotated[float, NOT_BOOL, Field(ge=0, le=1e7, allow_inf_nan=False)] = 0.0
    """Per occupied rack position per month, on top of the per-kW charges: cabinet, PDUs and
    top-of-rack gear, or a colocation's per-cabinet fee. Charged on the racks the plan uses
    (whole racks: a half-full rack pays in full)."""
    rent_markup: Annotated[float, NOT_BOOL, Field(gt=0, le=10, allow_inf_nan=False)] = 1.0
    """Multiplier on catalog rental prices at a cloud site."""
    max_accelerators: Count | None = None
    """Cap on accelerators at this site (e.g. cloud quota)."""

    @model_validator(mode="after")
    def _owned_needs_power(self) -> Site:
        if self.kind == SiteKind.owned and self.power_mw is None:
            raise ValueError("an owned site needs power_mw")
        return self


Milliseconds = Annotated[float, NOT_BOOL, Field(gt=0, le=1e7, allow_inf_nan=False)]


class Slo(Strict):
    """Latency targets (p99)."""

    ttft_ms: Milliseconds | None = None
    """Time to first token limit, ms."""
    tpot_ms: Milliseconds | None = None
    """Time per output token limit, ms."""


class Speculative(Strict):
    """Speculative decoding (draft model or MTP heads)."""

    draft_tokens: Annotated[int, NOT_BOOL, Field(ge=1, le=8)] = 3
    """Tokens proposed per step."""
    acceptance_rate: Annotated[float, NOT_BOOL, Field(gt=0, lt=1, allow_inf_nan=False)] = 0.7
    """Probability each drafted token is accepted."""


class Workload(Strict):
    """One stream of requests to serve."""

    id: Name
    """Workload id, e.g. `chat`."""
    model: Id
    """Model id from the catalog."""
    precision: Precision | Annotated[list[Precision], Field(min_length=1), ONCE_EACH] = Precision.fp8
    """Weight precision to serve at, or a list of acceptable precisions (each system then
    serves at any listed precision it supports, e.g. [fp4, fp8])."""
    input_tokens: Annotated[int, NOT_BOOL, Field(ge=1, le=2_000_000)]
    """Mean input tokens per request."""
    output_tokens: Annotated[int, NOT_BOOL, Field(ge=1, le=2_000_000)]
    """Mean output tokens per request."""
    slo: Slo = Field(default_factory=Slo)
    """Latency targets."""
    demand: dict[PeriodId, Annotated[
        float, NOT_BOOL, _quantity("tok/s"), Field(ge=0, le=MAX_DEMAND_TOK_S, allow_inf_nan=False),
        AfterValidator(_zero_or_servable)
    ]] | Annotated[str, AfterValidator(_csv_name)] | None = None
    """Peak output tokens/s per period id: 0, or from MIN_DEMAND_TOK_S to 1e12; a number, or
    text such as `1.5M tok/s`. Or a forecast CSV of this workload (relative to the problem
    file): columns period, output_tokens_per_s (or requests_per_s), optional site, and an
    optional workload column that then names this workload."""
    utilization: Fraction = 0.6
    """Average / peak demand: share of peak capacity that delivers tokens on average."""
    headroom: Annotated[float, NOT_BOOL, Field(ge=0, le=5, allow_inf_nan=False)] = 0.0
    """Extra capacity over peak demand, as a share (0.2 = 20%)."""
    sites: Annotated[list[Name], Field(min_length=1), ONCE_EACH] | None = None
    """Sites allowed to serve this workload (None: all)."""
    speculative: Speculative | None = None
    """Allow speculative decoding with these settings."""
    disaggregated: bool = True
    """Allow disaggregated prefill/decode pools."""

    @property
    def precisions(self) -> list[Precision]:
        """The acceptable precisions, in the order given."""
        return self.precision if isinstance(self.precision, list) else [self.precision]


class ExistingFleet(Strict):
    """Systems already installed at the start of the horizon."""

    site: Name
    """Site id."""
    system: Id
    """System id."""
    count: Annotated[int, NOT_BOOL, Field(ge=0, le=10**6)]
    """Number of systems."""
    retires_after: PeriodId | None = None
    """Last period id in which these systems are available (None: whole horizon)."""


class Policy(Strict):
    """Optional policy constraints."""

    vendors: Annotated[list[Name], Field(min_length=1), ONCE_EACH] | None = None
    """Allowed vendors (None: all)."""
    max_vendor_share: Fraction | None = None
    """Largest share of installed accelerators any one vendor may have."""
    min_vendors: Annotated[int, NOT_BOOL, Field(ge=1)] | None = None
    """Least number of vendors in the fleet in every period."""
    budget_usd: Annotated[float, NOT_BOOL, Field(gt=0, le=MAX_USD, allow_inf_nan=False)] | None = None
    """Cap on total discounted cost over the horizon."""
    max_purchases: dict[Id, Annotated[int, NOT_BOOL, Field(ge=0, le=10**6)]] | None = None
    """Supply cap: most systems of a given system id bought per period."""


class Objective(StrEnum):
    min_tco = "min_tco"
    max_served_scale = "max_served_scale"


class Problem(Strict):
    """A capacity-planning problem (YAML)."""

    name: str = Field(min_length=1)
    """Problem name."""
    description: str | None = None
    """Free text."""
    periods: list[Period] = Field(min_length=1, max_length=MAX_PERIODS)
    """Planning periods in time order."""
    finance: Finance = Field(default_factory=Finance)
    """Money assumptions."""
    sites: list[Site] = Field(min_length=1)
    """Sites."""
    systems: Annotated[list[Id], Field(min_length=1), ONCE_EACH] | None = None
    """System ids allowed (None: every catalog system)."""
    workloads: list[Workload] = Field(min_length=1)
    """Workloads to serve."""
    forecast: Annotated[str, Field(min_length=1)] | None = None
    """Demand forecast CSV (path relative to this file): period,workload,output_tokens_per_s."""
    performance: Annotated[str, Field(min_length=1)] | None = None
    """Measured-performance CSV (path relative to this file), replacing the analytic model."""
    existing: list[ExistingFleet] = Field(default_factory=list)
    """Fleet already installed."""
    policy: Policy = Field(default_factory=Policy)
    """Policy constraints."""
    objective: Objective = Objective.min_tco
    """min_tco, or max_served_scale (largest multiple of the demand mix that fits)."""
    catalog: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    """Extra catalog files or directories (relative to this file)."""

    @field_validator("periods")
    @classmethod
    def _unique_periods(cls, periods: list[Period]) -> list[Period]:
        _no_duplicates([p.id for p in periods], "period")
        return periods

    @field_validator("sites")
    @classmethod
    def _unique_sites(cls, sites: list[Site]) -> list[Site]:
        _no_duplicates([s.id for s in sites], "site")
        return sites

    @field_validator("workloads")
    @classmethod
    def _unique_workloads(cls, workloads: list[Workload]) -> list[Workload]:
        _no_duplicates([w.id for w in workloads], "workload")
        return workloads

    @model_validator(mode="after")
    def _references(self) -> Problem:
        period_ids = [p.id for p in self.periods]
        site_ids = {s.id for s in self.sites}
        sites_list = ", ".join(s.id for s in self.sites)
        errors: list[str] = []
        for s in self.sites:
            for field in ("power_mw", "racks"):
                value = getattr(s, field)
                if isinstance(value, dict):
                    for k in value:
                        if k not in period_ids:
                            errors.append(f"sites.{s.id}.{field}: unknown period '{k}'")
                    for k in period_ids:
                        if k not in value:
                            errors.append(f"sites.{s.id}.{field}: no value for period '{k}'")
        for w in self.workloads:
            for k in w.demand if isinstance(w.demand, dict) else {}:
                if k not in period_ids:
                    errors.append(
                        f"workloads.{w.id}.demand: unknown period '{k}' "
                        f"(periods are {', '.join(period_ids)})"
                    )
            for site in w.sites or []:
                if site not in site_ids:
                    errors.append(
                        f"workloads.{w.id}.sites: unknown site '{site}' (sites are {sites_list})"
                    )
        for i, e in enumerate(self.existing):
            if e.site not in site_ids:
                errors.append(f"existing.{i}.site: unknown site '{e.site}' (sites are {sites_list})")
            if e.retires_after is not None and e.retires_after not in period_ids:
                errors.append(f"existing.{i}.retires_after: unknown period '{e.retires_after}'")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def site(self, site_id: str) -> Site:
        return next(s for s in self.sites if s.id == site_id)


def _no_duplicates(ids: list[str], what: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"duplicate {what} id '{i}'")
        seen.add(i)


def site_value(value: float | Mapping[str, float] | None, period: str) -> float:
    """A site's per-period quantity (scalar or mapping); +inf when not set."""
    if value is None:
        return math.inf
    if isinstance(value, Mapping):
        return float(value[period])
    return float(value)


Format = Literal["table", "json", "csv"]
