"""The shipped catalog: every file validates, the promised entries exist, the numbers are sane,
every number has a source, and users can add their own files on top."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from planner.catalog import catalog_files, default_catalog_dir, load_catalog
from planner.errors import InputError
from planner.schema import AttentionKind, CatalogFile, Cooling, Precision

TOY = Path(__file__).parent / "data" / "toy-catalog.yaml"

REQUIRED_SYSTEMS = [
    "nvidia-hgx-h100", "nvidia-hgx-h200", "nvidia-hgx-b200", "nvidia-gb200-nvl72",
    "nvidia-gb300-nvl72", "nvidia-l40s-pcie8", "amd-mi300x-oam8", "amd-mi325x-oam8",
    "amd-mi355x-oam8", "intel-gaudi3-oam8", "google-tpu-v6e-8",
]
REQUIRED_MODELS = [
    "llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.3-70b", "llama-3.1-405b",
    "mixtral-8x7b", "deepseek-r1", "gpt-oss-120b", "qwen3-32b", "qwen3-235b-a22b",
]
GPU_VENDORS = {"nvidia", "amd", "intel"}

USER = {"default": {"source": "user test", "confidence": "low", "kind": "USER"}}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _write(tmp_path: Path, name: str, data: dict) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _accelerator(**changes) -> dict:
    entry = {
        "id": "my-gpu", "vendor": "myco", "name": "My GPU", "memory_gb": 96,
        "memory_bandwidth_tbps": 4.0, "tflops_dense": {"bf16": 1000, "fp8": 2000}, "tdp_w": 800,
        "scale_up_domain": 8, "scale_up_bandwidth_gb_per_s": 450,
        "scale_out_bandwidth_gb_per_s": 50, "software_stack": "my-stack", "sources": USER,
    }
    entry.update(changes)
    return entry


def _system(**changes) -> dict:
    entry = {
        "id": "my-server", "vendor": "myco", "name": "My 8-GPU server", "accelerator": "my-gpu",
        "accelerators": 8, "power_kw_max": 11.0, "rack_units": 8, "price_usd": 250000,
        "sources": USER,
    }
    entry.update(changes)
    return entry


# ---------------------------------------------------------------------------------------------
# the shipped files
# ---------------------------------------------------------------------------------------------

SHIPPED = catalog_files([default_catalog_dir()])


def test_the_shipped_catalog_has_files():
    names = {p.name for p in SHIPPED}
    assert {"nvidia.yaml", "amd.yaml", "intel.yaml", "google.yaml", "models.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_file_validates_on_its_own(path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    parsed = CatalogFile.model_validate(data)
    assert parsed.accelerators or parsed.systems or parsed.models


def test_the_shipped_catalog_loads_and_cross_checks(catalog):
    assert len(catalog.systems) >= len(REQUIRED_SYSTEMS) + 1
    for system in catalog.systems.values():
        assert system.accelerator in catalog.accelerators, system.id


@pytest.mark.parametrize("system_id", REQUIRED_SYSTEMS)
def test_required_system_exists(catalog, system_id):
    system = catalog.systems[system_id]
    assert system.vendor == system_id.split("-")[0]


@pytest.mark.parametrize("model_id", REQUIRED_MODELS)
def test_required_model_exists(catalog, model_id):
    assert model_id in catalog.models


def test_tpu_v6e_is_rent_only_with_a_rental_price(catalog):
    tpu = catalog.systems["google-tpu-v6e-8"]
    assert tpu.rent_only is True
    assert tpu.price_usd is None
    assert tpu.rent_usd_per_accelerator_hour is not None and tpu.rent_usd_per_accelerator_hour > 0


def test_at_least_one_non_gpu_inference_architecture(catalog):
    others = [s for s in catalog.systems.values() if s.vendor not in GPU_VENDORS | {"google"}]
    assert others, "expected a non-GPU inference system (e.g. an LPU) besides the TPU"
    assert all(not s.rent_only or s.rent_usd_per_accelerator_hour for s in others)


# ---------------------------------------------------------------------------------------------
# sources
# ---------------------------------------------------------------------------------------------


def _numeric_fields(entry) -> list[str]:
    names = []
    for name in type(entry).model_fields:
        value = getattr(entry, name)
        if name in ("id", "sources") or isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float | dict) or hasattr(value, "model_dump"):
            names.append(name)
    return names


def test_every_numeric_field_of_every_entry_has_a_source(catalog):
    entries = [*catalog.accelerators.values(), *catalog.systems.values(), *catalog.models.values()]
    for entry in entries:
        if "default" in entry.sources:
            continue
        for name in _numeric_fields(entry):
            assert name in entry.sources or any(k.startswith(name + ".") for k in entry.sources), (
                f"{entry.id}.{name} has no source"
            )


def test_every_source_is_substantial(catalog):
    entries = [*catalog.accelerators.values(), *catalog.systems.values(), *catalog.models.values()]
    for entry in entries:
        assert entry.sources, entry.id
        for key, source in entry.sources.items():
            assert len(source.source) >= 3, (entry.id, key)


def test_an_entry_missing_a_source_for_a_number_fails_naming_the_field(tmp_path):
    sources = {"memory_gb": USER["default"], "memory_bandwidth_tbps": USER["default"],
               "tflops_dense": USER["default"], "scale_up_domain": USER["default"],
               "scale_up_bandwidth_gb_per_s": USER["default"],
               "scale_out_bandwidth_gb_per_s": USER["default"]}  # no tdp_w
    path = _write(tmp_path, "mine.yaml", {"accelerators": [_accelerator(sources=sources)]})
    with pytest.raises(InputError) as info:
        load_catalog([path])
    (line,) = info.value.problems
    assert line.startswith(f"{path}: accelerators[0:my-gpu]: no source for tdp_w;")
    assert "memory_gb" not in line


def test_a_source_for_one_precision_covers_the_mapping(tmp_path):
    sources = {"default": USER["default"], "tflops_dense.fp8": USER["default"]}
    path = _write(tmp_path, "mine.yaml", {"accelerators": [_accelerator(sources=sources)]})
    assert "my-gpu" in load_catalog([path]).accelerators


def test_nested_price_tiers_need_a_source(tmp_path):
    sources = {k: USER["default"] for k in ("accelerators", "power_kw_max", "rack_units",
                                            "price_usd", "availability")}
    system = _system(sources=sources, tco_tiers={"hyperscaler_usd_per_accelerator_hour": 1.5})
    path = _write(tmp_path, "mine.yaml", {"accelerators": [_accelerator()], "systems": [system]})
    with pytest.raises(InputError) as info:
        load_catalog([path])
    assert "systems[0:my-server]: no source for tco_tiers" in info.value.problems[0]


def test_availability_default_still_needs_a_source(tmp_path):
    sources = {k: USER["default"] for k in ("accelerators", "power_kw_max", "rack_units",
                                            "price_usd")}
    path = _write(tmp_path, "mine.yaml",
                  {"accelerators": [_accelerator()], "systems": [_system(sources=sources)]})
    with pytest.raises(InputError) as info:
        load_catalog([path])
    assert "no source for availability" in info.value.problems[0]


def test_a_source_for_an_unknown_field_is_an_error(tmp_path):
    sources = {"default": USER["default"], "memory_gbps": USER["default"]}
    path = _write(tmp_path, "mine.yaml", {"accelerators": [_accelerator(sources=sources)]})
    with pytest.raises(InputError) as info:
        load_catalog([path])
    assert "`sources` names unknown fields: memory_gbps" in info.value.problems[0]


# ---------------------------------------------------------------------------------------------
# physical sanity
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("system_id", ["nvidia-gb200-nvl72", "nvidia-gb300-nvl72"])
def test_nvl72_is_a_liquid_cooled_whole_rack_of_72(catalog, system_id):
    system = catalog.systems[system_id]
    assert system.accelerators == 72
    assert system.whole_rack is True and system.rack_units is None
    assert system.cooling == Cooling.liquid
    assert catalog.accelerators[system.accelerator].scale_up_domain == 72
    assert 100 <= system.power_kw_max <= 160  # ~120-140 kW racks


def test_hgx_servers_are_eight_gpu_boxes_in_rack_units(catalog):
    for sid in ("nvidia-hgx-h100", "nvidia-hgx-h200", "nvidia-hgx-b200", "amd-mi300x-oam8",
                "amd-mi325x-oam8", "amd-mi355x-oam8", "intel-gaudi3-oam8"):
        system = catalog.systems[sid]
        assert system.accelerators == 8, sid
        assert system.whole_rack is False and 1 <= system.rack_units <= 12, sid
        assert 5 <= system.power_kw_max <= 20, sid


def test_accelerator_numbers_are_physical(catalog):
    for acc in catalog.accelerators.values():
        assert acc.memory_gb > 0 and acc.memory_bandwidth_tbps > 0, acc.id
        assert Precision.bf16 in acc.tflops_dense, acc.id
        assert acc.tdp_w is None or 100 <= acc.tdp_w <= 2000, acc.id
        if Precision.fp8 in acc.tflops_dense:
            assert acc.tflops_dense[Precision.fp8] >= acc.tflops_dense[Precision.bf16], acc.id
        if Precision.fp4 in acc.tflops_dense:
            assert acc.tflops_dense[Precision.fp4] >= acc.tflops_dense[Precision.fp8], acc.id


def test_system_power_covers_its_accelerators(catalog):
    for system in catalog.systems.values():
        acc = catalog.accelerators[system.accelerator]
        if system.power_kw_max is not None and acc.tdp_w is not None:
            assert system.power_kw_max * 1000 > system.accelerators * acc.tdp_w, system.id
        assert 0 < system.availability <= 1
        assert system.price_usd is not None or system.rent_only, system.id


def test_fp4_only_on_blackwell_and_mi355x(catalog):
    with_fp4 = {a.id for a in catalog.accelerators.values() if Precision.fp4 in a.tflops_dense}
    assert with_fp4 == {"nvidia-b200-sxm", "nvidia-gb200", "nvidia-gb300", "amd-mi355x"}


def test_hbm_sizes_match_the_datasheets(catalog):
    acc = catalog.accelerators
    assert acc["nvidia-h100-sxm"].memory_gb == 80
    assert acc["nvidia-h200-sxm"].memory_gb == 141
    assert acc["amd-mi300x"].memory_gb == 192
    assert acc["amd-mi355x"].memory_gb == 288
    assert acc["nvidia-h200-sxm"].memory_bandwidth_tbps > acc["nvidia-h100-sxm"].memory_bandwidth_tbps


def test_deepseek_r1_is_mla_moe(catalog):
    r1 = catalog.models["deepseek-r1"]
    assert r1.attention == AttentionKind.mla
    assert r1.kv_lora_rank == 512 and r1.qk_rope_head_dim == 64
    assert r1.experts == 256 and r1.experts_per_token == 8 and r1.is_moe
    assert r1.params_total_b == pytest.approx(671, rel=0.01)
    assert r1.params_active_b == pytest.approx(37, rel=0.01)


def test_model_shapes(catalog):
    models = catalog.models
    for mdl in models.values():
        assert mdl.params_active_b <= mdl.params_total_b, mdl.id
        if mdl.attention == AttentionKind.gqa:
            assert mdl.attention_heads % mdl.kv_heads == 0, mdl.id
    assert not models["llama-3.3-70b"].is_moe
    assert models["llama-3.1-405b"].params_total_b == pytest.approx(405, rel=0.01)
    assert models["mixtral-8x7b"].experts == 8 and models["mixtral-8x7b"].experts_per_token == 2
    assert models["qwen3-235b-a22b"].params_active_b == pytest.approx(22, rel=0.05)
    assert models["gpt-oss-120b"].is_moe


# ---------------------------------------------------------------------------------------------
# user catalogs on top of the shipped one
# ---------------------------------------------------------------------------------------------


def test_a_user_file_adds_an_accelerator_and_a_system(tmp_path):
    path = _write(tmp_path, "mine.yaml", {"accelerators": [_accelerator()], "systems": [_system()]})
    catalog = load_catalog([path])
    system = catalog.systems["my-server"]
    assert catalog.accelerators[system.accelerator].memory_gb == 96
    assert system.idle_kw == pytest.approx(3.3)  # 30% of max when not given
    assert "nvidia-hgx-h200" in catalog.systems  # the shipped catalog is still there


def test_a_user_system_may_use_a_shipped_accelerator(tmp_path):
    system = _system(id="nvidia-hgx-h200-quote", vendor="nvidia", accelerator="nvidia-h200-sxm")
    path = _write(tmp_path, "quote.yaml", {"systems": [system]})
    catalog = load_catalog([path])
    assert catalog.systems["nvidia-hgx-h200-quote"].price_usd == 250000


def test_a_user_directory_is_read_file_by_file(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    _write(folder, "a.yaml", {"accelerators": [_accelerator()]})
    _write(folder, "b.yaml", {"systems": [_system()]})
    (folder / "notes.txt").write_text("not yaml: [")
    catalog = load_catalog([folder])
    assert "my-server" in catalog.systems


def test_a_user_catalog_is_usable_in_a_problem(tmp_path):
    from planner.problem import load_problem

    cat = _write(tmp_path, "mine.yaml", {"accelerators": [_accelerator()], "systems": [_system()]})
    problem = {
        "name": "mine", "catalog": [cat.name], "periods": [{"id": "y1"}],
        "sites": [{"id": "dc1", "power_mw": 2}], "systems": ["my-server"],
        "workloads": [{"id": "chat", "model": "llama-3.1-8b", "input_tokens": 100,
                       "output_tokens": 100, "demand": {"y1": 1000}}],
    }
    inputs = load_problem(_write(tmp_path, "problem.yaml", problem))
    assert [s.id for s in inputs.systems] == ["my-server"]
    assert inputs.demand == {("chat", "y1"): 1000.0}


def test_the_toy_catalog_loads(catalog):
    toy = load_catalog([TOY])
    assert {"toy-a", "toy-b", "toy-rack"} <= set(toy.systems)
    assert len(toy.systems) == len(catalog.systems) + 3


def test_duplicate_id_across_files_names_both_files(tmp_path):
    system = _system(id="nvidia-hgx-h100", vendor="nvidia", accelerator="nvidia-h100-sxm")
    path = _write(tmp_path, "dup.yaml", {"systems": [system]})
    with pytest.raises(InputError) as info:
        load_catalog([path])
    (line,) = info.value.problems
    assert line.startswith(f"{path}: systems.nvidia-hgx-h100: duplicate id")
    assert str(default_catalog_dir() / "nvidia.yaml") in line


def test_duplicate_id_between_two_user_files(tmp_path):
    first = _write(tmp_path, "a.yaml", {"accelerators": [_accelerator()]})
    second = _write(tmp_path, "b.yaml", {"accelerators": [_accelerator(name="Other")]})
    with pytest.raises(InputError) as info:
        load_catalog([first, second])
    assert info.value.problems == [
        f"{second}: accelerators.my-gpu: duplicate id; already defined in {first}"
    ]


def test_a_missing_user_catalog_is_an_error(tmp_path):
    with pytest.raises(InputError) as info:
        load_catalog([tmp_path / "nope.yaml"])
    assert info.value.problems == [f"{tmp_path / 'nope.yaml'}: catalog file or directory not found"]


def test_an_empty_user_file_is_fine(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n")
    assert len(load_catalog([path]).systems) == len(load_catalog().systems)


def _toy_with(tmp_path: Path, where: str, index: int, **changes) -> Path:
    data = yaml.safe_load(TOY.read_text())
    data[where][index].update(changes)
    return _write(tmp_path, "mine.yaml", data)


@pytest.mark.parametrize("where, index, changes, expected", [
    # each validated, then crashed a solve (ZeroDivisionError) or misled it (negative KV size)
    ("models", 0, {"experts": 8, "experts_per_token": 8},
     "models[0:toy-model]: experts_per_token equal to experts needs moe_intermediate_size"),
    ("models", 0, {"experts": 8, "experts_per_token": 2, "dense_layers": 32},
     "models[0:toy-model]: a MoE model (experts > 1) needs a MoE layer"),
    ("models", 0, {"sliding_window_layers": 40, "sliding_window_tokens": 128},
     "models[0:toy-model]: dense_layers and sliding_window_layers are at most layers"),
    ("accelerators", 0, {"tflops_dense": {}}, "accelerators[0:toy-gpu].tflops_dense: found "
     "dict; expected a mapping with at least 1 item"),
    ("systems", 0, {"accelerators": 1_000_000}, "systems.toy-a.power_kw_max: found 10 kW; "
     "expected at least its accelerators' TDP, 1000000 × 1000 W = 1e+06 kW"),
])
def test_a_catalog_entry_no_hardware_or_model_can_have(tmp_path, where, index, changes,
                                                       expected):
    path = _toy_with(tmp_path, where, index, **changes)
    with pytest.raises(InputError) as info:
        load_catalog([path])
    assert any(line.startswith(f"{path}: {expected}") for line in info.value.problems), \
        info.value.problems


def test_a_shipped_file_named_again_is_read_once() -> None:
    # its ids had been reported as duplicates of themselves, one line each
    shipped = default_catalog_dir()
    again = load_catalog([shipped / "nvidia.yaml", shipped])
    assert again.systems == load_catalog().systems
