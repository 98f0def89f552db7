"""Pencil-and-paper MIPs, at least one per constraint family, with their exact optimum.

Toy economics (see conftest): capex only, $100k per toy-a (8 accelerators, 10 kW, 10U),
$150k per toy-b (8 accelerators, 5 kW, 10U), one year, life one year, r = 0.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from planner.coefficients import build_data
from planner.errors import InputError, NoPlanError
from planner.formulation import build_model, serving_rate
from planner.plan import check_invariants, describe_binding
from planner.problem import load_problem
from planner.solve import SolveOptions, _run, lp_relaxation, solve
from tests.conftest import candidate, candidates, toy_problem

BOTH = candidates(candidate("toy-a", 1000), candidate("toy-b", 1200))


def fleet_of(plan, period="p1"):
    f = plan.fleet[plan.fleet["period"] == period]
    return {(r.site, r.system): r.systems for r in f.itertuples()}


def test_demand_picks_the_cheapest_cover(solve_toy):
    # toy-a: 10 × $100k = $1.0M; toy-b: ⌈10000/1200⌉ = 9 × $150k = $1.35M
    plan = solve_toy(toy_problem(), BOTH)
    assert plan.tco_usd["total"] == pytest.approx(1_000_000)
    assert fleet_of(plan) == {("dc1", "toy-a"): 10}
    assert plan.deployments["output_tokens_per_s"].sum() == pytest.approx(10_000)


def test_power_cap_forces_the_more_efficient_system(solve_toy):
    # 48 kW: any toy-a leaves too little power (a=1 needs b ≥ 8: 50 kW), so 9 × toy-b = 45 kW
    problem = toy_problem()
    problem["sites"][0]["power_mw"] = 0.048
    plan = solve_toy(problem, BOTH)
    assert fleet_of(plan) == {("dc1", "toy-b"): 9}
    assert plan.tco_usd["total"] == pytest.approx(1_350_000)
    assert [b.kind for b in plan.bindings] == ["power"]  # 3 kW left < one 5 kW toy-b


def test_power_cap_mixes_systems_when_it_binds(solve_toy):
    # 64 kW: a toy-a + b toy-b with 10a + 5b ≤ 64 and 1000a + 1200b ≥ 10000, cost 100a + 150b
    # ($k): a=4,b=5 needs 65 kW ✗; a=3,b=6 → 10200 tok/s, 60 kW, $1.2M ✓ (a=2,b=7 → $1.25M;
    # a=0,b=9 → $1.35M)
    problem = toy_problem()
    problem["sites"][0]["power_mw"] = 0.064
    plan = solve_toy(problem, BOTH)
    assert fleet_of(plan) == {("dc1", "toy-a"): 3, ("dc1", "toy-b"): 6}
    assert plan.tco_usd["total"] == pytest.approx(1_200_000)


def test_racks_force_a_second_hall(solve_toy):
    # a 40 kW, 42U rack takes min(40/10, 42/10) = 4 toy-a; dc1 has one rack position
    problem = toy_problem(sites=[
        {"id": "dc1", "power_mw": 1, "pue": 1.0, "racks": 1, "electricity_usd_per_kwh": 0},
        {"id": "dc2", "power_mw": 1, "pue": 1.0, "racks": 10, "electricity_usd_per_kwh": 0},
    ])
    plan = solve_toy(problem, BOTH)
    fleet = fleet_of(plan)
    assert fleet.get(("dc1", "toy-a"), 0) <= 4
    assert sum(fleet.values()) == 10
    assert plan.tco_usd["total"] == pytest.approx(1_000_000)
    sites = plan.sites.set_index("site")
    assert sites.loc["dc1", "racks"] <= 1


def test_rack_power_excludes_a_liquid_rack_from_an_air_hall(solve_toy):
    # toy-rack (72 accelerators, 100 kW, liquid) would be cheapest per token, but dc1 is an air
    # hall with 40 kW racks, so it cannot stand there; dc2 is liquid-cooled with 120 kW racks
    table = candidates(candidate("toy-a", 1000), candidate("toy-rack", 12000, accelerators=72))
    problem = toy_problem(systems=["toy-a", "toy-rack"])
    plan = solve_toy(problem, table)
    assert fleet_of(plan) == {("dc1", "toy-a"): 10}
    problem["sites"].append({"id": "dc2", "power_mw": 1, "pue": 1.0, "racks": 2,
                             "rack_power_kw": 120, "liquid_cooling": True,
                             "electricity_usd_per_kwh": 0})
    plan = solve_toy(problem, table)
    assert fleet_of(plan) == {("dc2", "toy-rack"): 1}
    assert plan.tco_usd["total"] == pytest.approx(900_000)


def test_forecast_step_buys_in_period_two_not_one(solve_toy):
    # two half-years; the annuity is charged only while installed: buying 5 in p1 and 5 in p2
    # costs 5 × 50k + 10 × 50k = $750k, buying all 10 in p1 costs $1M
    problem = toy_problem(periods=[{"id": "p1", "hours": 4380}, {"id": "p2", "hours": 4380}])
    problem["workloads"][0]["demand"] = {"p1": 5000, "p2": 10000}
    plan = solve_toy(problem, BOTH)
    bought = plan.fleet.set_index(["period", "system"])["purchased"]
    assert bought[("p1", "toy-a")] == 5
    assert bought[("p2", "toy-a")] == 5
    assert plan.tco_usd["total"] == pytest.approx(750_000)


def test_existing_fleet_is_used_before_buying(solve_toy):
    problem = toy_problem(existing=[{"site": "dc1", "system": "toy-a", "count": 6}])
    plan = solve_toy(problem, BOTH)
    row = plan.fleet.iloc[0]
    assert (row.system, row.systems, row.existing, row.purchased) == ("toy-a", 10, 6, 4)
    assert plan.tco_usd["total"] == pytest.approx(400_000)


def test_an_existing_system_not_allowed_serves_but_is_never_bought(solve_toy):
    # toy-b is not in `systems:`, but 5 of them stand at dc1: 6,000 of the 10,000 tok/s come
    # from them (sunk capex), the rest from 4 toy-a bought at $100k
    problem = toy_problem(systems=["toy-a"],
                          existing=[{"site": "dc1", "system": "toy-b", "count": 5}])
    plan = solve_toy(problem, BOTH)
    fleet = plan.fleet.set_index("system")
    assert (fleet.loc["toy-b", "systems"], fleet.loc["toy-b", "purchased"]) == (5, 0)
    assert (fleet.loc["toy-a", "systems"], fleet.loc["toy-a", "purchased"]) == (4, 4)
    assert plan.tco_usd["total"] == pytest.approx(400_000)
    assert "existing 5 × toy-b at dc1 kept and used; none bought (the system is not among the " \
           "allowed ones)" in plan.notes
    assert check_invariants(plan, _data(plan, held=["toy-b"])) == []
    plan.fleet.loc[plan.fleet["system"] == "toy-b", "purchased"] = 1  # as a faulty plan would
    assert check_invariants(plan, _data(plan, held=["toy-b"])) == [
        "toy-b at dc1 in p1: 1 bought, but only those that stand there may be used"]


def test_a_held_system_is_not_bought_even_where_nothing_else_serves(solve_toy):
    problem = toy_problem(systems=["toy-a"],
                          existing=[{"site": "dc1", "system": "toy-b", "count": 5}])
    with pytest.raises(NoPlanError, match="infeasible") as caught:
        solve_toy(problem, candidates(candidate("toy-b", 1200)))  # only toy-b serves: 6,000
    assert caught.value.diagnosis == ["workload chat, p1: 4,000 of 10,000 output tok/s cannot be "
                                      "served by any allowed system within its SLO and sites; "
                                      "only the existing 5 × toy-b can, and none is bought",
                                      "workload chat: the allowed systems cannot serve it: toy-a: "
                                      "no candidate deployment at its sites"]


def test_too_few_vendors_once_a_held_system_retires_is_named(solve_toy):
    # two vendors in p1 (toy-a bought, toy-b standing), one in p2 once toy-b retires
    problem = toy_problem(periods=[{"id": "p1", "hours": 4380}, {"id": "p2", "hours": 4380}],
                          systems=["toy-a"], policy={"min_vendors": 2},
                          existing=[{"site": "dc1", "system": "toy-b", "count": 2,
                                     "retires_after": "p1"}])
    problem["workloads"][0]["demand"] = {"p1": 10000, "p2": 10000}
    with pytest.raises(NoPlanError) as info:
        solve_toy(problem, BOTH)
    assert info.value.diagnosis == ["policy.min_vendors (2), p2: 1 vendor(s) short: fewer "
                                    "vendors' systems can stand or serve there then"]


def test_existing_systems_too_tall_for_the_racks_say_so(solve_toy):
    problem = toy_problem(existing=[{"site": "dc1", "system": "toy-a", "count": 2}])
    problem["sites"][0]["rack_units"] = 6  # toy-a is 10 U
    with pytest.raises(InputError, match="10 U each is over the site's rack_units of 6"):
        solve_toy(problem, BOTH)


def test_existing_systems_the_site_cannot_hold_are_an_input_error(solve_toy):
    problem = toy_problem(existing=[{"site": "dc1", "system": "toy-rack", "count": 2}])
    with pytest.raises(InputError, match=r"existing\[0\]: 2 × toy-rack at dc1: .*; expected a "
                       "site whose racks hold them"):
        solve_toy(problem, BOTH)


def test_a_charge_per_occupied_rack_packs_the_fleet_into_fewer_racks(solve_toy):
    # 20 kW racks hold 2 toy-a (10 kW) or 4 toy-b (5 kW); at $240k per rack-year the cheapest
    # 10,000 tok/s is 7 toy-b (8,400 tok/s, 2 racks) + 2 toy-a (2,000, 1 rack): $1.05M + $0.2M
    # + 3 racks × $240k = $1.97M, against 10 toy-a in 5 racks ($2.2M) or 9 toy-b in 3 ($2.07M)
    problem = toy_problem()
    problem["sites"][0].update(rack_power_kw=20, rack_usd_per_month=20_000)
    plan = solve_toy(problem, BOTH)
    fleet = plan.fleet.set_index("system")
    assert (fleet.loc["toy-b", "systems"], fleet.loc["toy-a", "systems"]) == (7, 2)
    assert fleet["racks"].sum() == 3
    assert plan.tco_usd["facility"] == pytest.approx(3 * 240_000)
    assert plan.tco_usd["total"] == pytest.approx(1_970_000)


def test_existing_fleet_retires_after_its_last_period(solve_toy):
    problem = toy_problem(periods=[{"id": "p1", "hours": 4380}, {"id": "p2", "hours": 4380}],
                          existing=[{"site": "dc1", "system": "toy-a", "count": 10,
                                     "retires_after": "p1"}])
    problem["workloads"][0]["demand"] = {"p1": 10000, "p2": 10000}
    plan = solve_toy(problem, BOTH)
    bought = plan.fleet.set_index(["period", "system"])["purchased"]
    assert bought[("p2", "toy-a")] == 10
    assert plan.tco_usd["total"] == pytest.approx(10 * 50_000)


def test_disaggregated_pools_match_rates(solve_toy):
    # aggregated: 1000 tok/s per system → 8 systems; prefill 4000 + decode 2000 per system:
    # 2 prefill + 4 decode systems serve 8000 → 6 systems
    table = candidates(candidate("toy-a", 1000),
                       candidate("toy-a", 4000, mode="prefill"),
                       candidate("toy-a", 2000, mode="decode"))
    problem = toy_problem(systems=["toy-a"])
    problem["workloads"][0]["demand"] = {"p1": 8000}
    plan = solve_toy(problem, table)
    by_mode = plan.deployments.groupby("mode")["replicas"].sum().to_dict()
    assert by_mode == {"prefill": 2, "decode": 4}
    assert plan.tco_usd["total"] == pytest.approx(600_000)
    assert check_invariants(plan, _data(plan)) == []


def test_replicas_pack_into_systems(solve_toy):
    # 2-accelerator replicas of 300 tok/s: 4 per system = 1200 tok/s; 10000 → 34 replicas
    # → ⌈34/4⌉ = 9 systems (a replica cannot straddle two servers)
    table = candidates(candidate("toy-a", 300, accelerators=2))
    plan = solve_toy(toy_problem(systems=["toy-a"]), table)
    assert plan.fleet["systems"].sum() == 9
    assert plan.deployments["replicas"].sum() == 34


def test_a_replica_faster_than_the_demand_serves_only_the_demand_in_the_relaxation(
        write_problem):
    # demand 1,000 tok/s; a whole-system replica of 100,000 tok/s, or 1-accelerator replicas of
    # 200 tok/s (5 of them = 5/8 of a system). Uncapped, the LP would buy 1% of a system
    # ($1k); capped at the demand the big replica needs a whole system ($100k), so the LP takes
    # 5/8 of a system of small ones: $62.5k. The MIP needs one whole system either way.
    problem = toy_problem(systems=["toy-a"])
    problem["workloads"][0]["demand"] = {"p1": 1000}
    data = build_data(load_problem(write_problem(problem)), candidates(
        candidate("toy-a", 100_000), candidate("toy-a", 200, accelerators=1)))
    assert [serving_rate(data, k, "chat", "p1") for k in (0, 1)] == [1.0, 0.2]
    relaxed = lp_relaxation(data)
    assert _run(relaxed, SolveOptions()).objective == pytest.approx(0.0625)
    result = solve(data, SolveOptions(shadow_prices=False))
    assert result.objective == pytest.approx(0.1)
    served = sum(data.rate[k] * (var.value or 0) for (k, _, _), var in result.model.x.items())
    assert served >= 1.0 - 1e-9


def test_replicas_are_bounded_by_what_alone_serves_the_demand(write_problem):
    # demand 1,000 tok/s: at most 1 replica of 100,000 tok/s, 5 of 200, 3 of 450 (⌈1000/450⌉);
    # served rates at most the demand. Maximizing the served scale multiplies the demand by a
    # variable, so there the counts stay free.
    table = candidates(candidate("toy-a", 100_000), candidate("toy-a", 200, accelerators=1),
                       candidate("toy-a", 450, accelerators=2))
    problem = toy_problem(systems=["toy-a"])
    problem["workloads"][0]["demand"] = {"p1": 1000}
    model = build_model(build_data(load_problem(write_problem(problem)), table))
    assert [model.x[k, "dc1", "p1"].ub for k in range(3)] == [1, 5, 3]
    assert model.y["chat", "dc1", "p1"].ub == pytest.approx(1.0)
    assert all(var.ub == pytest.approx(1.0) for var in model.u.values())
    problem["objective"] = "max_served_scale"
    scaled = build_model(build_data(load_problem(write_problem(problem)), table))
    assert all(var.ub is None for var in [*scaled.x.values(), *scaled.y.values()])


def test_availability_keeps_spare_capacity(solve_toy, tmp_path):
    # the shipped-style availability of 0.97: 8 × 0.97 = 7.76 usable accelerators per system,
    # so 10 replicas of 8 need ⌈80/7.76⌉ = 11 systems
    catalog = tmp_path / "avail.yaml"
    import yaml

    from tests.conftest import TOY_CATALOG

    data = yaml.safe_load(TOY_CATALOG.read_text())
    for s in data["systems"]:
        s["availability"] = 0.97
    data.pop("models")
    data.pop("accelerators")
    for s in data["systems"]:
        s["id"] = s["id"] + "-97"
    catalog.write_text(yaml.safe_dump(data))
    problem = toy_problem(systems=["toy-a-97"], catalog=[str(TOY_CATALOG), str(catalog)])
    plan = solve_toy(problem, candidates(candidate("toy-a-97", 1000)))
    assert plan.fleet["systems"].sum() == 11


def test_cloud_site_rents_by_the_hour(solve_toy):
    # 10 toy-a rented at $2/accelerator-hour for a year: 10 × 8 × 8760 × 2 = $1,401,600
    problem = toy_problem(sites=[{"id": "cloud", "kind": "cloud"}], systems=["toy-a", "toy-b"])
    plan = solve_toy(problem, BOTH)
    assert fleet_of(plan) == {("cloud", "toy-a"): 10}
    assert plan.tco_usd["rent"] == pytest.approx(1_401_600)
    assert plan.tco_usd["capex"] == 0


def test_cloud_quota_sends_the_rest_on_premises(solve_toy):
    problem = toy_problem(sites=[
        {"id": "dc1", "power_mw": 1, "pue": 1.0, "racks": 100, "electricity_usd_per_kwh": 0},
        {"id": "cloud", "kind": "cloud", "max_accelerators": 16},
    ])
    # owning is cheaper here (1 year life) — rent only if forced; check quota holds anyway
    plan = solve_toy(problem, BOTH)
    cloud = plan.fleet[plan.fleet["site"] == "cloud"]["accelerators"].sum()
    assert cloud <= 16
    assert plan.tco_usd["total"] == pytest.approx(1_000_000)


def test_a_binding_cloud_quota_is_reported_and_valued(solve_toy):
    # 10 kW owned: 2 toy-b (2,400 tok/s, $300k) + 8 rented toy-a (8,000, 8 × $140,160) =
    # $1,421,280 with the quota of 64 accelerators all used; 8 more accelerators let 1 owned
    # toy-a + 9 rented serve exactly 10,000 tok/s for $1,361,440: worth $59,840
    problem = toy_problem(sites=[
        {"id": "dc1", "power_mw": 0.01, "pue": 1.0, "racks": 100, "electricity_usd_per_kwh": 0},
        {"id": "cloud", "kind": "cloud", "max_accelerators": 64},
    ])
    plan = solve_toy(problem, BOTH)
    assert fleet_of(plan) == {("dc1", "toy-b"): 2, ("cloud", "toy-a"): 8}
    assert plan.tco_usd["total"] == pytest.approx(1_421_280)
    (quota,) = [b for b in plan.bindings if b.kind == "quota"]
    assert (quota.site, quota.period, quota.used, quota.limit, quota.step) == \
        ("cloud", "p1", 64, 64, 8)
    assert quota.value_usd == pytest.approx(59_840)
    # per MW and per rack count only the owned hall's 2,400 tok/s, per accelerator all 10,400
    m = plan.metrics
    assert (m["output_tokens_per_s_per_mw"], m["output_tokens_per_s_per_rack"]) == \
        pytest.approx((2_400 / 0.010, 2_400 / 1))
    assert m["output_tokens_per_s_per_accelerator"] == pytest.approx(10_400 / 80)


def test_vendor_share_policy(solve_toy):
    # at most half the accelerators from one vendor: a = b → 5 + 5 → 11000 tok/s, $1.25M
    problem = toy_problem(policy={"max_vendor_share": 0.5})
    plan = solve_toy(problem, BOTH)
    assert fleet_of(plan) == {("dc1", "toy-a"): 5, ("dc1", "toy-b"): 5}
    assert plan.tco_usd["total"] == pytest.approx(1_250_000)


def test_min_vendors_policy(solve_toy):
    problem = toy_problem(policy={"min_vendors": 2})
    plan = solve_toy(problem, BOTH)
    fleet = fleet_of(plan)
    assert set(s for _, s in fleet) == {"toy-a", "toy-b"}
    # cheapest with both: a=9,b=1 → 10200 tok/s, $1.05M
    assert plan.tco_usd["total"] == pytest.approx(1_050_000)


@pytest.mark.parametrize("policy, expected", [
    # 9 purchases over the caps at least (9 × 1,200 tok/s); the cheapest 9: 5 toy-b + 4 toy-a
    ({"max_purchases": {"toy-a": 0, "toy-b": 0}}, "policy.max_purchases of toy-b, p1: 5 more "
     "purchases needed (cap 0)"),
    # a share two vendors can meet, but toy-b's cap leaves toy-a too few: 2 + 2 systems
    ({"max_vendor_share": 0.5, "max_purchases": {"toy-b": 2}}, "policy.max_vendor_share (0.5), "
     "p1: "),
])
def test_a_policy_that_leaves_no_plan_is_named(solve_toy, policy, expected):
    # the elastic re-solve had no slack for these: it blamed the demand ("cannot be served by
    # any allowed system")
    with pytest.raises(NoPlanError) as info:
        solve_toy(toy_problem(policy=policy), BOTH)
    assert any(line.startswith(expected) for line in info.value.diagnosis), info.value.diagnosis
    assert not any("cannot be served" in line for line in info.value.diagnosis)


def test_a_served_scale_of_zero_is_no_plan(solve_toy):
    # no power at all: the best scale is 0, which exited 0 with "$nan" per million tokens
    problem = toy_problem(objective="max_served_scale")
    problem["sites"][0]["power_mw"] = 0
    with pytest.raises(NoPlanError, match=r"the limits leave room to serve none of the demand "
                       r"\(served scale 0\)"):
        solve_toy(problem, BOTH)


def test_min_vendors_beyond_the_vendors_there_are_says_so(solve_toy):
    # named before any re-solve: no fleet of these systems has three vendors
    with pytest.raises(NoPlanError) as info:
        solve_toy(toy_problem(policy={"min_vendors": 3}), BOTH)
    assert info.value.diagnosis == ["policy.min_vendors is 3, but the allowed systems that may "
                                    "stand at a site come from 2 vendor(s): otherco, toyco"]


def test_a_vendor_share_below_one_over_the_vendors_says_so(solve_toy):
    # two vendors: one holds at least half; the elastic re-solve had asked each of them for
    # "accelerators more than its share allows", which no count gives
    with pytest.raises(NoPlanError) as info:
        solve_toy(toy_problem(policy={"max_vendor_share": 0.49}), BOTH)
    assert info.value.diagnosis == [
        "policy.max_vendor_share is 0.49, but the allowed systems that may stand at a site come "
        "from 2 vendor(s): otherco, toyco, so one of them holds at least 1/2 of the "
        "accelerators: expected a share of at least 0.5, or systems of more vendors"]


@pytest.mark.parametrize("sites, demand, expected", [
    (None, {"p1": 0}, "with every workload's demand 0; expected some demand to scale"),
    ([{"id": "cloud", "kind": "cloud"}], None, "with no limit on renting at cloud; expected a "
     "max_accelerators quota there, or policy.budget_usd"),
])
def test_a_served_scale_without_a_maximum_is_refused(solve_toy, sites, demand, expected):
    # HiGHS reported these infeasible, "no single cause" found
    problem = toy_problem(objective="max_served_scale")
    if sites is not None:
        problem["sites"] = sites
    if demand is not None:
        problem["workloads"][0]["demand"] = demand
    with pytest.raises(InputError) as info:
        solve_toy(problem, BOTH)
    assert expected in str(info.value)


def test_supply_cap_limits_purchases(solve_toy):
    problem = toy_problem(policy={"max_purchases": {"toy-a": 4}})
    plan = solve_toy(problem, BOTH)
    # 4 toy-a (4000) + 5 toy-b (6000) = $1.15M
    assert fleet_of(plan) == {("dc1", "toy-a"): 4, ("dc1", "toy-b"): 5}
    assert any(b.kind == "supply" for b in plan.bindings)
    # a cap is a system's, not a site's: the JSON row names it as the system
    (row,) = [r for r in plan.binding_rows() if r["kind"] == "supply"]
    assert (row["site"], row["system"], row["period"]) == (None, "toy-a", "p1")


def test_max_served_scale(solve_toy):
    # 100 kW of toy-b only: 20 systems × 1200 = 24000 tok/s = 2.4 × the 10000 demand
    problem = toy_problem(objective="max_served_scale", systems=["toy-b"])
    problem["sites"][0]["power_mw"] = 0.1
    plan = solve_toy(problem, BOTH)
    assert plan.served_scale == pytest.approx(2.4)
    assert plan.fleet["systems"].sum() == 20


def test_binding_power_is_valued_by_a_resolve(solve_toy):
    # 65 kW: a=4,b=5 → exactly 10000 tok/s in exactly 65 kW for $1.15M (a=3,b=6 costs $1.2M)
    problem = toy_problem()
    problem["sites"][0]["power_mw"] = 0.065
    plan = solve_toy(problem, BOTH)
    assert fleet_of(plan) == {("dc1", "toy-a"): 4, ("dc1", "toy-b"): 5}
    power = [b for b in plan.bindings if b.kind == "power"]
    assert len(power) == 1
    # +1 MW lets toy-a do it all: $1.0M, so one more MW is worth $150k
    assert power[0].value_usd == pytest.approx(150_000)


def test_power_too_small_is_infeasible_and_names_the_shortfall(solve_toy):
    problem = toy_problem()
    problem["sites"][0]["power_mw"] = 0.01
    with pytest.raises(NoPlanError) as info:
        solve_toy(problem, BOTH)
    text = " ".join(info.value.diagnosis)
    # cheapest in power: 9 toy-b = 45 kW against 10 kW → short by 35 kW
    assert "site dc1, p1: power short by 35 kW" in text


def test_racks_too_few_are_named(solve_toy):
    problem = toy_problem()
    problem["sites"][0]["racks"] = 2
    with pytest.raises(NoPlanError) as info:
        solve_toy(problem, BOTH)
    # 8 systems fit in 2 racks (4 each); 10 toy-a need 3 racks
    assert "site dc1, p1: 1 more rack positions needed (limit 2)" in " ".join(info.value.diagnosis)


def test_budget_cap_is_named(solve_toy):
    problem = toy_problem(policy={"budget_usd": 500_000})
    with pytest.raises(NoPlanError) as info:
        solve_toy(problem, BOTH)
    assert "budget short by $500.00k" in " ".join(info.value.diagnosis)
    # $1k short of the $1M the demand needs: it had read "short by $0.00M"
    with pytest.raises(NoPlanError) as info:
        solve_toy(toy_problem(policy={"budget_usd": 999_000}), BOTH)
    assert "budget short by $1.00k" in " ".join(info.value.diagnosis)


def test_a_budget_that_caps_the_served_scale_is_what_binds(solve_toy):
    # $550k buys 4 toy-a ($100k, 1,000 tok/s) and a toy-b ($150k, 1,200): 5,200 of the
    # 10,000 tok/s, all of the budget; the report had said nothing binds
    problem = toy_problem(objective="max_served_scale", policy={"budget_usd": 550_000})
    plan = solve_toy(problem, BOTH)
    assert plan.served_scale == pytest.approx(0.52)
    (budget,) = plan.bindings
    assert (budget.kind, budget.used, budget.limit, budget.unit, budget.value_usd) == \
        ("budget", pytest.approx(550_000), 550_000, "USD", None)
    # one more $1M: $1.55M buys 14 toy-a and a toy-b, 15,200 tok/s, 1.52×: one more whole mix
    assert budget.value_scale == pytest.approx(1.0)
    assert describe_binding(budget, 1.0).endswith("one more $1M serves 1.000× more of the "
                                                  "demand mix")


def test_a_budget_a_cost_minimum_uses_up_binds_without_a_value(solve_toy):
    # 10 toy-a for $1M under a $1M budget: it binds, but more of it saves nothing, so it is not
    # re-solved, and no note blames the time limit for the missing value
    plan = solve_toy(toy_problem(policy={"budget_usd": 1_000_000}), BOTH, shadow_prices=True)
    (budget,) = plan.bindings
    assert (budget.kind, budget.value_usd, budget.value_scale) == ("budget", None, None)
    assert not [note for note in plan.notes if "not computed" in note], plan.notes


def test_no_candidate_for_a_workload_is_named(solve_toy):
    table = candidates(candidate("toy-a", 1000, workload="other"))
    problem = toy_problem(systems=["toy-a"])
    with pytest.raises(NoPlanError) as info:
        solve_toy(problem, table)
    assert "workload chat" in " ".join(info.value.diagnosis)


def _data(plan, held=()):
    """What check_invariants needs from the data: availability (all 1.0 in the toy catalog)
    and the held systems."""
    return SimpleNamespace(availability=dict.fromkeys(plan.fleet["system"], 1.0),
                           held=list(held))
