"""Give back the systems a rounded plan does not need (`consolidate`), and fit a fleet to a
plan's replicas (`fit_fleet`).

Rounding a relaxed plan (`solve.round_up`) keeps the relaxation's split of every workload's
demand over its pools and rounds each pool up on its own: up to one more replica per pool and
side, then up to one more system per system type and site. On a small fleet that is most of
the distance to the relaxation (bench x-large at 0.3× demand: 6.6 GB200 NVL72 racks of the LP
rounded to 8 in one period, the rounded plan 17% over the LP). Here, one period at a time and
the costliest systems first, a system type at a site sheds its last system when the replicas
above its previous whole system can go:

- a replica is dropped where its workload's demand is still served without it;
- or moved to another pool of its workload that has room on systems already counted (same
  period, any site where that replica may run), or replaced by a smaller replica on the same
  systems.

A move is kept only where it lowers the plan's cost: the systems' installed cost and the
purchases (at an owned site they follow the largest need so far, since nothing is resold) and
the racks they occupy, plus busy energy. The caller checks the result against every limit
(fewer systems keep power, racks and quotas, but a vendor policy or a purchase cap may not
hold) and keeps the rounded plan otherwise.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable

import pyomo.environ as pyo

from planner.coefficients import ModelData, rack_count
from planner.formulation import pool_keys, serving_rate

Pair = tuple[int, str]
"""A (candidate, site) pair."""
Place = tuple[str, str]
"""A (system, site) pair."""


def fit_fleet(model: pyo.ConcreteModel, data: ModelData) -> None:
    """The fewest systems that hold the model's replicas: n ≥ Σ a·x ÷ (A·availability) at cloud
    sites; at owned sites purchases that never fall over the horizon, so n is the largest need
    so far (or what exists); racks ⌈n ÷ per rack⌉."""
    systems = data.candidates["system"].to_numpy()
    used: dict[tuple[str, str, str], float] = defaultdict(float)
    for (k, l, p), var in model.x.items():
        used[(str(systems[k]), l, p)] += data.replica_accelerators[k] * (var.value or 0)
    need = {key: _systems_for(data, key[0], used.get(key, 0.0)) for key in model.n}
    owned = set(data.owned_sites)
    for s, l in data.sl:
        if l not in owned:
            for p in data.periods:
                model.n[s, l, p].set_value(need[(s, l, p)])
            continue
        for p, buy, installed in _owned_path(data, s, l, [need[(s, l, p)] for p in data.periods]):
            # a held system (purchases bounded to 0) may need more than stands there: its
            # supply row flags it (`solve.limit_excess`) rather than Pyomo warning on stdout
            model.buy[s, l, p].set_value(buy, skip_validation=True)
            model.n[s, l, p].set_value(installed)
            model.r[s, l, p].set_value(rack_count(installed, data.systems_per_rack[(s, l)]))


def _systems_for(data: ModelData, system: str, accelerators: float) -> int:
    return math.ceil(accelerators / _usable(data, system) - 1e-9)


def _usable(data: ModelData, system: str) -> float:
    """Accelerators one system holds replicas on: A · availability."""
    return data.accelerators[system] * data.availability[system]


def _owned_path(data: ModelData, system: str, site: str, need: list[int]
                ) -> list[tuple[str, int, int]]:
    """(period, purchases, installed) at an owned site whose systems needed are `need` by
    period: buy what exceeds the existing systems and the purchases so far."""
    path, bought = [], 0
    for p, needed in zip(data.periods, need, strict=True):
        existing = data.existing.get((system, site, p), 0)
        buy = max(0, needed - existing - bought)
        bought += buy
        path.append((p, buy, existing + bought))
    return path


def consolidate(model: pyo.ConcreteModel, data: ModelData,
                stop: Callable[[], bool] = lambda: False) -> int:
    """Drop systems the model's integral plan (replicas and fleet, as `solve.round_up` leaves
    it) does not need, moving or dropping replicas as the module docstring says; rewrite its
    replicas, served rates and fleet. Returns how many systems were given back, summed over
    periods. Cost minimization only (the demand is a constant). When `stop()` turns true (Ctrl-C,
    the time limit) it ends after the system it is giving back: every step leaves a whole plan,
    and on bench x-large at 2.9× its demand the steps took 6 s."""
    plan = _Plan(model, data)
    dropped = 0
    for i, p in enumerate(data.periods):
        for place in sorted(plan.places, key=lambda sl: (-plan.system_cost(sl, p), sl)):
            while plan.need[place][i] > 0 and not stop() and plan.shed_one(place, p):
                dropped += 1
    if dropped:
        plan.write(model)
    return dropped


class _Plan:
    """An integral plan as plain tables, with the served capacity per pool kept up to date."""

    def __init__(self, model: pyo.ConcreteModel, data: ModelData) -> None:
        self.data = data
        c = data.candidates
        self.workload = [str(w) for w in c["workload"]]
        self.system = [str(s) for s in c["system"]]
        self.pool = pool_keys(data)
        self.side = [("aggregated", "prefill", "decode").index(str(m)) for m in c["mode"]]
        self.pairs_of: dict[str, list[Pair]] = defaultdict(list)
        """Where each workload's replicas may run, smallest replicas first."""
        pools: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for k, l in data.kl:
            self.pairs_of[self.workload[k]].append((k, l))
            pools[self.workload[k]].add((self.pool[k], l))
        for pairs in self.pairs_of.values():
            pairs.sort(key=lambda kl: (data.replica_accelerators[kl[0]], kl))
        # sorted, so that sums run in one order whatever the hash seed: the plan is the same
        # from run to run
        self.pools_of = {w: sorted(found) for w, found in pools.items()}
        self.pinned: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
        for (w, p, l), share in data.site_demand.items():
            self.pinned[(w, p)].append((l, share))
        self.places = sorted(data.sl)
        self.owned = set(data.owned_sites)
        self.position = {p: i for i, p in enumerate(data.periods)}

        self.x: dict[tuple[int, str, str], int] = {}
        self.capacity: dict[tuple[str, str, str, str], list[float]] = {}
        """Per (workload, pool, site, period): served rate of [aggregated, prefill, decode]."""
        self.used: dict[tuple[str, str, str], float] = defaultdict(float)
        """Accelerators in use per (system, site, period)."""
        self.on: dict[tuple[str, str, str], set[int]] = defaultdict(set)
        """Candidates with replicas per (system, site, period)."""
        for (k, l, p), var in model.x.items():
            if round(var.value or 0):
                self.add(k, l, p, round(var.value or 0))
        self.need = {(s, l): [_systems_for(data, s, self.used[(s, l, p)]) for p in data.periods]
                     for s, l in data.sl}
        """Systems the replicas need, per (system, site) and period index."""
        self._installed: dict[Place, list[int]] = {}

    def add(self, k: int, l: str, p: str, count: int) -> None:
        """x[k,l,p] += count, with the capacity and accelerators it brings."""
        w = self.workload[k]
        self.x[(k, l, p)] = self.x.get((k, l, p), 0) + count
        self.on[(self.system[k], l, p)].add(k)
        rates = self.capacity.setdefault((w, self.pool[k], l, p), [0.0, 0.0, 0.0])
        rates[self.side[k]] += count * serving_rate(self.data, k, w, p)
        self.used[(self.system[k], l, p)] += count * self.data.replica_accelerators[k]

    def served(self, w: str, p: str) -> bool:
        """Whether w's demand in p is served: Σ_l min(D, Σ_pools min(agg + prefill,
        agg + decode)) ≥ D, and every site share pinned by a forecast."""
        demand = self.data.demand[(w, p)]
        at_site: dict[str, float] = defaultdict(float)
        for pool, l in self.pools_of.get(w, []):
            at_site[l] += self.pool_rate(w, pool, l, p)
        tolerance = 1e-9 * max(1.0, demand)
        if sum(min(demand, v) for v in at_site.values()) < demand - tolerance:
            return False
        return all(min(demand, at_site.get(l, 0.0)) >= share - tolerance
                   for l, share in self.pinned[(w, p)])

    def pool_rate(self, w: str, pool: str, l: str, p: str) -> float:
        """What a pool serves of w in p: min(agg + prefill, agg + decode), the model's two
        serving rows."""
        agg, prefill, decode = self.capacity.get((w, pool, l, p), (0.0, 0.0, 0.0))
        return min(agg + prefill, agg + decode)

    def room(self, place: Place, p: str) -> float:
        """Accelerators free on the systems of `place` that p already counts."""
        s, l = place
        installed = self.installed(place)[self.position[p]]
        return installed * _usable(self.data, s) - self.used[(s, l, p)]

    def installed(self, place: Place) -> list[int]:
        """Systems of `place` counted per period index: at an owned site the largest need so
        far (or what exists), at a cloud site the need."""
        s, l = place
        if l not in self.owned:
            return self.need[place]
        if place not in self._installed:
            self._installed[place] = [n for _, _, n in _owned_path(self.data, s, l,
                                                                   self.need[place])]
        return self._installed[place]

    def fleet_cost(self, place: Place, need: list[int]) -> float:
        """Installed cost and purchases of `place` for systems needed `need` by period, and at
        an owned site the charge of the racks they occupy ($M)."""
        s, l = place
        d = self.data
        if l not in self.owned:
            return sum(d.installed_cost[(s, l, p)] * n
                       for p, n in zip(d.periods, need, strict=True))
        return sum(d.installed_cost[(s, l, p)] * n + d.buy_cost[(s, l, p)] * buy
                   + d.rack_cost.get((l, p), 0.0) * rack_count(n, d.systems_per_rack[(s, l)])
                   for p, buy, n in _owned_path(d, s, l, need))

    def system_cost(self, place: Place, p: str) -> float:
        s, l = place
        return self.data.installed_cost[(s, l, p)] + self.data.buy_cost.get((s, l, p), 0.0)

    def shed_one(self, place: Place, p: str) -> bool:
        """Free the accelerators above place's last whole system but one in p, by dropping or
        moving replicas; keep the change only where the plan's cost falls."""
        s, l = place
        i = self.position[p]
        overflow = self.used[(s, l, p)] - (self.need[place][i] - 1) * _usable(self.data, s)
        moves: list[tuple[int, str, int]] = []
        freed = 0.0
        on_place = sorted((k for k in self.on[(s, l, p)] if self.x[(k, l, p)]),
                          key=lambda k: (-self.data.replica_accelerators[k], k))
        for k in on_place:
            while freed < overflow - 1e-9 and self.x[(k, l, p)] > 0:
                self.add(k, l, p, -1)
                moves.append((k, l, -1))
                freed += self.data.replica_accelerators[k]
                if not self.served(self.workload[k], p):
                    moved = self._move_to_room(k, place, p)
                    if moved is None:
                        self.add(k, l, p, 1)
                        moves.pop()
                        freed -= self.data.replica_accelerators[k]
                        break
                    moves.append(moved)
                    if (self.system[moved[0]], moved[1]) == place:
                        freed -= self.data.replica_accelerators[moved[0]]
            if freed >= overflow - 1e-9:
                break
        fewer = [*self.need[place]]
        fewer[i] -= 1
        saving = self.fleet_cost(place, self.need[place]) - self.fleet_cost(place, fewer)
        busy = sum(self.data.replica_cost[(k, l_, p)] * delta for k, l_, delta in moves)
        if freed >= overflow - 1e-9 and saving - busy > 1e-12:
            self.need[place] = fewer
            self._installed.pop(place, None)
            return True
        for k, l_, delta in reversed(moves):
            self.add(k, l_, p, -delta)
        return False

    def _move_to_room(self, k: int, place: Place, p: str) -> tuple[int, str, int] | None:
        """One replica of k's workload added where it restores the demand: where systems
        counted in p have room for it, or on `place` itself if it is smaller than k's; None if
        nowhere."""
        w = self.workload[k]
        size = self.data.replica_accelerators
        for k2, l2 in self.pairs_of[w]:
            there = (self.system[k2], l2)
            fits = size[k2] < size[k] if there == place else \
                self.room(there, p) >= size[k2] - 1e-9
            if not fits:
                continue
            self.add(k2, l2, p, 1)
            if self.served(w, p):
                return (k2, l2, 1)
            self.add(k2, l2, p, -1)
        return None

    def write(self, model: pyo.ConcreteModel) -> None:
        """The plan's replicas into `model`, its served rates u = min(agg + prefill,
        agg + decode, D) and y = min(D, Σ u), and its fleet (`fit_fleet`)."""
        for key, var in model.x.items():
            var.set_value(self.x.get(key, 0), skip_validation=True)
        for (w, pool, l, p), var in model.u.items():
            var.set_value(min(self.pool_rate(w, pool, l, p), self.data.demand[(w, p)]),
                          skip_validation=True)
        at_site: dict[tuple[str, str, str], float] = defaultdict(float)
        for (w, _, l, p), var in model.u.items():
            at_site[(w, l, p)] += var.value or 0.0
        for (w, l, p), var in model.y.items():
            var.set_value(min(self.data.demand[(w, p)], at_site[(w, l, p)]),
                          skip_validation=True)
        fit_fleet(model, self.data)
