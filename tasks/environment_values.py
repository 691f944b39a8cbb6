"""``environment_values``: which values the untrained model gives up when the setting changes, and which values
move together.

No training. The subject model makes the forced choice on every scenario of every value (``limit`` caps it), each
rendered in every environment e (chat, the baseline, always among them). a(e, j) is its mean P(follow) on value j's
scenarios in e; value j's shift profile is the vector d_j = (a(e, j) − a(chat, j)) over the environments besides
chat. M(i, j) = −‖d_i − d_j‖₂ (0 on the diagonal): values whose support moves alike across settings are close.
Replicates: split halves of every value's scenarios (the same halves in every environment). ``extra`` has the rates,
the shifts, each environment's ranking of the values (by a(e, j), highest first) with Kendall's τ against chat's,
and the per-scenario differences p_e(s) − p_chat(s) the validity gate tests. Renderings longer than the model's
context are skipped and counted. Each environment's evaluation is one cached step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from vgbench import GroundTruth, Option, RunContext, Task, TaskMetadata, ValueSet, hookimpl
from vgbench.toolkit import (
    BATCH_SIZE_OPTION,
    SPLIT_HALF,
    VALUES_OPTION,
    Step,
    ValidityGate,
    data_fingerprint,
    first_per_value,
    load_reply_pairs,
    n_splits_option,
    provenance,
    require_values,
    selected_values,
)

from .environment_eval import (
    BASELINE,
    ENVIRONMENTS_OPTION,
    chosen_environments,
    environment_key,
    environment_preferences,
    fitting_scenarios,
    split_halves_by_value,
)


@dataclass(frozen=True)
class ValueSpecificShift(ValidityGate):
    """An environment must move some values' support more than others', or the profiles are noise."""

    name: ClassVar[str] = "value_specific_shift"
    description: ClassVar[str] = ("some environment shifts the values unequally: per environment, a Kruskal–Wallis "
                                  "test of the per-scenario differences p_e(s) − p_chat(s) across values; the "
                                  "smallest p, Bonferroni-corrected over environments, below alpha")

    def check(self, gt: GroundTruth) -> dict:
        """The verdict from ``extra["differences"]`` ({environment: {value: [p_e(s) − p_chat(s)]}})."""
        from scipy.stats import kruskal

        diffs = gt.extra.get("differences") if isinstance(gt.extra, dict) else None
        test = "Kruskal–Wallis across values per environment, Bonferroni over environments"
        if not isinstance(diffs, dict) or not diffs:
            return self.result("unknown", "no per-scenario differences stored", test=test)
        rows, ps = {}, []
        for env, by_value in diffs.items():
            groups = [np.asarray([x for x in xs if x is not None], float) for xs in by_value.values()]
            groups = [g for g in groups if g.size >= 2]
            if len(groups) < 2:
                rows[env] = {"verdict": "unknown", "statistic": None, "p": None}
                continue
            statistic, p = kruskal(*groups)
            ps.append(float(p))
            rows[env] = {"verdict": "value-specific" if p * len(diffs) < self.alpha else "not detected",
                         "statistic": float(statistic), "p": float(p)}
        if not ps:
            return self.result("unknown", "too few scenarios per value to test", test=test, rows=rows)
        corrected = min(1.0, min(ps) * len(diffs))
        found = sum(r["verdict"] == "value-specific" for r in rows.values())
        verdict = "valid" if corrected < self.alpha else "not valid"
        reason = (f"value-specific shifts {'found' if found else 'not detected'} in {found} of {len(diffs)} "
                  f"environments (smallest Bonferroni-corrected p = {corrected:.3g})")
        return self.result(verdict, reason, test=test, p=corrected, n=len(ps), computed_from="differences",
                           rows=rows)


class EnvironmentValues(Task):
    """The untrained model's support for each value in each environment; values compared by their shift profiles."""

    metadata = TaskMetadata(
        name="environment_values",
        version="1",
        description="Similarity of two values' shifts in the untrained model's support across environments "
                    "(negative distance between their profiles of a(e, j) − a(chat, j)).",
        cell_meaning="negative distance between values i's and j's support shifts across environments",
        reference="",
        options=(
            Option("limit", int, 0, "Scenarios per value (the first N, train and eval splits); 0 = all.",
                   minimum=0, maximum=100000),
            VALUES_OPTION,
            ENVIRONMENTS_OPTION,
            n_splits_option("every value's scenarios"),
            BATCH_SIZE_OPTION,
        ),
        data=("scenarios",),
        replicate_kinds=(SPLIT_HALF,),
        ground_truth_dir=Path(__file__).parent / "ground_truth",
        validity_gate=ValueSpecificShift(),
    )

    def build(self, value_set: ValueSet, context: RunContext) -> GroundTruth:
        """Score every scenario in every environment (one step per environment); profiles, matrix and rankings."""
        from scipy.stats import kendalltau

        opts = self.options
        wanted = selected_values(value_set, opts["values"])
        scenarios = load_reply_pairs(value_set.name, value_ids=wanted)
        require_values("scenarios", value_set.subset(wanted), scenarios, f"task {self.name}")
        if int(opts["limit"]):
            scenarios = first_per_value(scenarios, int(opts["limit"]))
        environments = chosen_environments(opts["environments"])
        model = context.subject_model()
        data_hash = data_fingerprint("scenarios", value_set.name)
        fits, skipped = fitting_scenarios(model.path, environments, scenarios)
        job = {"model_path": model.path, "device": context.device, "batch_size": int(opts["batch_size"]),
               "weights": None}
        steps = [Step({"task": self.name, "version": self.version, "model": model.weights_hash, "data": data_hash,
                       "environment": environment_key(env), "scenarios": [s["id"] for s in fits[env.name]]},
                      {**job, "environment": env, "scenarios": fits[env.name]}, 2 * len(fits[env.name]))
                 for env in environments]
        results = context.steps(self.name).run(environment_preferences, steps, label=f"{self.name} on {value_set.name}")
        names = [e.name for e in environments]
        p = {e: dict(zip((s["id"] for s in fits[e]), ps)) for e, ps in zip(names, results)}
        ids = {j: [s["id"] for s in scenarios if s["value"] == j and all(s["id"] in p[e] for e in names)]
               for j in wanted}  # the scenarios measured in every environment

        def rates(keep: dict[str, list[str]]) -> np.ndarray:
            return np.array([[np.mean([p[e][k] for k in keep[j]]) if keep[j] else np.nan for j in wanted]
                             for e in names])  # [environment, value]

        def matrix(keep: dict[str, list[str]]) -> np.ndarray:
            a = rates(keep)
            profiles = (a[1:] - a[0]).T  # [value, environment besides chat]
            return 0.0 - np.linalg.norm(profiles[:, None, :] - profiles[None, :, :], axis=-1)  # 0.0 -: no -0.0

        replicates = [matrix({j: [ids[j][k] for k in keep[j]] for j in wanted})
                      for keep in split_halves_by_value(ids, int(opts["n_splits"]), context.seed)]
        a = rates(ids)
        rankings, taus = {}, {}
        for n, e in enumerate(names):
            rankings[e] = [wanted[k] for k in np.argsort(-a[n], kind="stable")]
            if e != BASELINE:
                tau, tau_p = kendalltau(a[0], a[n])
                taus[e] = {"tau": float(tau), "p": float(tau_p)}
        extra = {
            "environments": {e.name: {"description": e.description, "fingerprint": environment_key(e),
                                      "source": e.path or "registered"} for e in environments},
            "rates": {e: dict(zip(wanted, map(float, a[n]))) for n, e in enumerate(names)},
            "shift": {e: dict(zip(wanted, map(float, a[n] - a[0]))) for n, e in enumerate(names) if e != BASELINE},
            "rankings": rankings,
            "kendall_tau": taus,
            "differences": {e: {j: [p[e][k] - p[BASELINE][k] for k in ids[j]] for j in wanted}
                            for e in names if e != BASELINE},
            "n_scenarios": {j: len(ids[j]) for j in wanted},
            "skipped": {e: k for e, k in skipped.items() if k},
            "n_skipped": sum(len(k) for k in skipped.values()),
            "steps": {"evaluated": len(results.ran), "reused": results.reused},
        }
        return GroundTruth(
            task=self.name, task_version=self.version, value_set=value_set.name, value_ids=tuple(wanted),
            matrix=matrix(ids), replicates=tuple(replicates), replicate_kind=SPLIT_HALF,
            provenance=provenance(**model.provenance(), data_hash=data_hash, seed=context.seed, options=opts,
                                  backend="transformers", environments=extra["environments"],
                                  n_scenarios=extra["n_scenarios"], n_skipped=extra["n_skipped"]),
            extra=extra,
        )


@hookimpl
def register_tasks(register):
    """Register ``environment_values``."""
    register(EnvironmentValues)
