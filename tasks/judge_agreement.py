"""``judge_agreement``: how alike two judges rank the same reply pairs when each judges by one value only.

Judge i is the subject model (or an OpenAI-compatible endpoint, ``-o judge=openai:MODEL``) told to
judge by value i alone. Every judge compares the two replies (follow/ignore) of every scenario in a
shared pool (the value set's eval scenarios, ``pool_per_value`` per value), in both orders; its
preference for the follow reply is P(A)/(P(A)+P(B)) from next-token log-probs, averaged over the
two orders so that position bias cancels. G(i, j) = Spearman ρ between judge i's and judge j's
preference vectors over the pool; the diagonal is 1 (NaN for a judge without a usable stance,
whose row and column are NaN). Replicates: the same matrix on random halves of the pool.
A high agreement can be value-blind (every judge ranking by the pair alone); the validity gate
(``judge_dependence``) tests, from ``extra["preferences"]``, whether judge i favours the upholding
reply on value i's pairs more than the other judges do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vgbench import GroundTruth, Option, RunContext, Task, TaskMetadata, ValueSet, hookimpl
from vgbench.toolkit import (
    BATCH_SIZE_OPTION,
    SPLIT_HALF,
    VALUES_OPTION,
    JudgeDependence,
    Step,
    data_fingerprint,
    first_per_value,
    load_reply_pairs,
    n_splits_option,
    provenance,
    require_values,
    selected_values,
    split_half_indices,
)

from .judging import JUDGE_PATTERN, both_order_chats, finite_or_none, judge_pass, judge_system_prompt, make_judge, pass_preferences, to_json


def agreement_matrix(prefs: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Spearman ρ between rows of ``prefs`` [judges, items] over items both judged; NaN for unusable rows."""
    from scipy.stats import spearmanr

    n = len(prefs)
    g = np.full((n, n), np.nan)
    for i in range(n):
        if not usable[i]:
            continue
        g[i, i] = 1.0
        for j in range(i + 1, n):
            both = np.isfinite(prefs[i]) & np.isfinite(prefs[j])
            x, y = prefs[i, both], prefs[j, both]
            if usable[j] and both.sum() >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
                g[i, j] = g[j, i] = float(spearmanr(x, y).statistic)
    return g


def unusable_reason(pref: np.ndarray) -> str | None:
    """Why a judge's preference vector carries no stance (None when it does)."""
    finite = pref[np.isfinite(pref)]
    if finite.size * 2 < pref.size:
        return f"no A/B answer on {pref.size - finite.size} of {pref.size} pairs"
    if np.ptp(finite) == 0:
        return "the same preference for every pair"
    return None


class JudgeAgreement(Task):
    """Agreement between single-value judges on a shared pool of reply pairs."""

    metadata = TaskMetadata(
        name="judge_agreement",
        version="1",
        description="Spearman agreement between judges that each compare reply pairs by one value only.",
        cell_meaning="Spearman ρ between value i's and value j's judges' preferences over a shared pool of reply pairs",
        reference="",
        options=(
            Option("judge", str, "subject", "Who judges: 'subject' (the subject model) or 'openai:MODEL' "
                   "(an OpenAI-compatible endpoint at OPENAI_BASE_URL).", pattern=JUDGE_PATTERN),
            Option("pool_per_value", int, 8, "Eval scenarios per value in the shared pool; 0 = all.",
                   minimum=0, maximum=100000),
            VALUES_OPTION,
            n_splits_option("the pool"),
            BATCH_SIZE_OPTION,
        ),
        data=("scenarios",),
        replicate_kinds=(SPLIT_HALF,),
        ground_truth_dir=Path(__file__).parent / "ground_truth",
        validity_gate=JudgeDependence(),
    )

    def build(self, value_set: ValueSet, context: RunContext) -> GroundTruth:
        """Every judge scores the whole pool in both orders; each judge's pass is one resumable step."""
        opts = self.options
        wanted = selected_values(value_set, opts["values"])
        values = [value_set.value(v) for v in wanted]
        pool = load_reply_pairs(value_set.name, value_ids=wanted, split="eval")
        require_values("scenarios", value_set.subset(wanted), pool, f"task {self.name}")
        if int(opts["pool_per_value"]):
            pool = first_per_value(pool, int(opts["pool_per_value"]))
        judge = make_judge(str(opts["judge"]), context, int(opts["batch_size"]))
        data_hash = data_fingerprint("scenarios", value_set.name)
        systems = [judge_system_prompt(v) for v in values]
        job = {"judge": str(opts["judge"]), "context": context.for_worker(), "batch_size": int(opts["batch_size"])}
        steps = [Step({"task": self.name, "version": self.version, "judge": judge.identity, "data": data_hash,
                       "system": system, "pool": [s["id"] for s in pool]},
                      {**job, "chats": both_order_chats(system, pool)}, 2 * len(pool)) for system in systems]
        stored = context.steps(self.name).run(judge_pass, steps, label=f"{self.name} on {value_set.name}")
        prefs, position_bias = [], {}
        for value, logp in zip(values, stored):
            preference, p_a = pass_preferences(logp, len(pool))
            prefs.append(preference)
            position_bias[value.id] = finite_or_none(np.nanmean(p_a)) if np.isfinite(p_a).any() else None
        prefs = np.stack(prefs)  # [n_values, n_pool]
        reasons = {v: r for v, r in zip(wanted, map(unusable_reason, prefs)) if r}
        usable = np.array([v not in reasons for v in wanted])
        groups = {v: [k for k, s in enumerate(pool) if s["value"] == v] for v in wanted}
        halves = split_half_indices(groups, int(opts["n_splits"]), context.seed)
        replicates = [agreement_matrix(prefs[:, h], usable) for a, b in halves for h in (a, b)]
        subject = context.subject_model().provenance() if opts["judge"] == "subject" else {"subject_model": context.model}
        return GroundTruth(
            task=self.name, task_version=self.version, value_set=value_set.name,
            value_ids=tuple(wanted), matrix=agreement_matrix(prefs, usable), replicates=tuple(replicates),
            replicate_kind=SPLIT_HALF,
            provenance=provenance(**subject, judge=judge.identity, data_hash=data_hash, seed=context.seed,
                                  n_pool=len(pool), options=opts),
            extra={"judge": judge.identity, "unusable_judges": reasons,
                   "pool": [s["id"] for s in pool],
                   "preferences": {v: to_json(p) for v, p in zip(wanted, prefs)},
                   "position_bias_p_a": position_bias,
                   "judge_prompts": {v.id: judge_system_prompt(v) for v in values}},
        )


@hookimpl
def register_tasks(register):
    """Register ``judge_agreement``."""
    register(JudgeAgreement)
