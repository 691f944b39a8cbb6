"""``dpo_generalization``: how DPO-training the subject model toward value i shifts its support for value j.

For each value i, trl's DPOTrainer trains the subject model (LoRA through peft unless ``lora=false``)
on value i's ``train`` conflict scenarios: prompt = the user message as a one-turn chat in the
model's chat template (as the evaluation renders it), chosen = ``action_follow``, rejected =
``action_ignore``. a(i, j) is the trained model's mean forced-choice preference for the upholding
reply on value j's ``eval`` scenarios (the measure ``prompt_steering`` uses); a(∅, j) is the untrained
model's. M(i, j) = (a(i, j) − a(∅, j)) / (1 − a(∅, j)). Replicates: split halves of every value's eval
scenarios. A run whose loss becomes NaN/inf stops; its row is NaN and ``extra["diverged"]`` says why.
``extra["cell_samples"][i][j]``: the per-scenario shifts (p_i(s) − p_∅(s)) / (1 − a(∅, j)) of j's eval
scenarios, whose mean is M(i, j); the own-value-effect validity gate tests each row with them.

``train_splits=K`` (GPU users) re-trains everything on K random re-splits of each value's scenarios into
train/eval (same sizes) and appends each re-split's split-half pair to the replicates (their full
matrices go to ``extra``): the replicates then also vary the training data. It multiplies the cost by
K+1. Every training run and every evaluation is a cached step, so a killed build resumes.

``filter_train=T`` (0 < T < 1) trains only on the pairs whose own value's judge (the ``judge_agreement``
judge of that value, on the subject model) prefers the upholding reply with P ≥ T: the filtered-data
build of the research note. Its matrix, put beside the unfiltered one with ``vgbench compare``, shows
how much the ground truth depends on noisy training pairs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vgbench import GroundTruth, Option, RunContext, Task, TaskMetadata, ValueSet, hookimpl
from vgbench.toolkit import (
    SPLIT_HALF,
    TRAINING_OPTIONS,
    VALUES_OPTION,
    DPORuns,
    OwnValueEffect,
    Step,
    VgbenchError,
    data_fingerprint,
    fingerprint,
    first_per_value,
    load_records,
    matrix_to_json,
    n_splits_option,
    normalised_shift,
    provenance,
    require_values,
    selected_values,
    shift_samples,
    split_half_indices,
)

class DPOGeneralization(Task):
    """DPO toward each value, measured on every value's conflict scenarios."""

    metadata = TaskMetadata(
        name="dpo_generalization",
        version="1",
        description="Shift in forced-choice support for value j after DPO training toward value i.",
        cell_meaning="normalised gain in preferring j's upholding reply after DPO training toward i",
        reference="Direct Preference Optimization (Rafailov et al., 2023), trained with trl's DPOTrainer",
        options=TRAINING_OPTIONS + (
            VALUES_OPTION,
            Option("limit_train", int, 0, "Train scenarios per value (the first N); 0 = all.", minimum=0, maximum=100000),
            Option("limit_eval", int, 0, "Eval scenarios per value (the first N); 0 = all.", minimum=0, maximum=100000),
            n_splits_option("the eval scenarios"),
            Option("eval_batch_size", int, 8, "Prompts per forward pass when evaluating.", minimum=1, maximum=4096),
            Option("train_splits", int, 0, "Re-train on K random train/eval re-splits (cost × K+1); 0 = none.",
                   minimum=0, maximum=100),
            Option("filter_train", float, 0.0, "Train only on pairs the value's own judge prefers with P ≥ T; 0 = all.",
                   minimum=0.0, maximum=1.0),
        ),
        data=("scenarios",),
        replicate_kinds=(SPLIT_HALF,),
        ground_truth_dir=Path(__file__).parent / "ground_truth",
        validity_gate=OwnValueEffect(),
    )

    def build(self, value_set: ValueSet, context: RunContext) -> GroundTruth:
        """Train one model per value and evaluate each on all values; every run is a resumable step."""
        from vgbench.toolkit import training_settings

        opts = self.options
        values, train, evals = _scenarios(self.name, value_set, opts)
        model = context.subject_model()
        train_filter = None
        if float(opts["filter_train"]) > 0:
            train, train_filter = _agreeing_pairs(self, value_set, train, float(opts["filter_train"]), context,
                                                  int(opts["eval_batch_size"]))
        settings = training_settings(**{o.name: opts[o.name] for o in TRAINING_OPTIONS}, seed=context.seed, device=context.device)
        build = _Build(self, context, model, settings, opts, data_fingerprint("scenarios", value_set.name),
                       f"{self.name} on {value_set.name}")
        splits = [(train, evals)] + [_resplit(train, evals, context.seed + k) for k in range(1, int(opts["train_splits"]) + 1)]
        results = [build.split(values, tr, ev, f" (re-split {k})" if k else "") for k, (tr, ev) in enumerate(splits)]

        replicates, full_matrices = [], []
        for k, (res, (_, ev)) in enumerate(zip(results, splits)):
            groups = {v: [n for n, s in enumerate(ev) if s["value"] == v] for v in values}
            matrix = lambda idx, res=res, groups=groups: _matrix(res, groups, idx)  # noqa: E731
            full_matrices.append(matrix(range(len(ev))))
            pairs = split_half_indices(groups, int(opts["n_splits"]) if k == 0 else 1, context.seed + k)
            replicates += [m for a, b in pairs for m in (matrix(a), matrix(b))]
        main = results[0]
        groups = {v: [n for n, s in enumerate(evals) if s["value"] == v] for v in values}
        base_rate = {v: float(np.mean(main["base"][groups[v]])) for v in values}
        extra = {
            "base_rate": base_rate,
            "rates": matrix_to_json(_rates(main, groups, range(len(evals)))[1:]),
            "cell_samples": shift_samples(main["rows"], main["base"], groups, values),
            "training": main["training"],
            "diverged": {v: t["reason"] for v, t in main["training"].items() if t["status"] != "ok"},
            "steps": build.counts,
        }
        if train_filter is not None:
            extra["train_filter"] = train_filter
        if len(splits) > 1:
            extra["train_split_matrices"] = [matrix_to_json(m) for m in full_matrices[1:]]
            extra["train_split_training"] = [r["training"] for r in results[1:]]
        return GroundTruth(
            task=self.name, task_version=self.version, value_set=value_set.name, value_ids=tuple(values),
            matrix=full_matrices[0], replicates=tuple(replicates), replicate_kind=SPLIT_HALF,
            provenance=provenance(**model.provenance(), data_hash=build.data_hash, seed=context.seed,
                                  training=settings, trainer="trl DPOTrainer", options=opts, backend="transformers",
                                  n_train={v: sum(s["value"] == v for s in train) for v in values},
                                  n_eval={v: len(groups[v]) for v in values},
                                  cost_note="train_splits=K multiplies the build's cost by K+1"),
            extra=extra,
        )


class _Build:
    """The cached training runs and evaluations of one build."""

    def __init__(self, task: Task, context: RunContext, model, settings: dict, opts: dict, data_hash: str, label: str):
        self.task, self.context, self.model, self.settings, self.opts = task, context, model, settings, opts
        self.data_hash, self.label = data_hash, label
        self.steps = context.steps(task.name)
        self.runs = DPORuns(self.steps, model.path, settings)
        self.counts = {"trained": 0, "evaluated": 0, "reused": 0}

    def split(self, values: list[str], train: list[dict], evals: list[dict], suffix: str) -> dict:
        """Base and per-value p_follow on ``evals`` (NaN rows for diverged runs) and the training logs."""
        from vgbench.toolkit import chat

        pairs = {v: [s for s in train if s["value"] == v] for v in values}
        runs = self.runs.train(
            {v: (self._train_key(v, ps), [{"messages": chat(s["user_message"]), "chosen": s["action_follow"],
                                           "rejected": s["action_ignore"]} for s in ps]) for v, ps in pairs.items()},
            label=f"{self.label}: training{suffix}", evaluation_key=lambda key, _: self._eval_key(key, evals))
        for run in runs.values():
            self.counts["trained" if run.ran else "reused"] += 1
        ok = [v for v in values if runs[v].result["status"] == "ok"]
        p = self.evaluate_all([None] + [runs[v].key for v in ok], evals, f"{self.label}: evaluating{suffix}")
        trained = dict(zip(ok, p[1:]))
        rows = [trained.get(v, np.full(len(evals), np.nan)) for v in values]
        training = {v: {"status": run.result["status"], "reason": run.result["reason"],
                        "weights": str(self.runs.weights(run.key)) if v in ok else None, **run.result["log"]}
                    for v, run in runs.items()}
        return {"base": p[0], "rows": np.stack(rows), "training": training}

    def _train_key(self, value: str, pairs: list[dict]) -> dict:
        return {"task": self.task.name, "version": self.task.version, "model": self.model.weights_hash,
                "data": self.data_hash, "value": value, "train": [s["id"] for s in pairs], "settings": self.settings}

    def _eval_key(self, train_key: dict | None, evals: list[dict]) -> dict:
        return {"task": self.task.name, "version": self.task.version, "model": self.model.weights_hash,
                "data": self.data_hash, "trained": fingerprint(train_key, 24) if train_key else None,
                "scenarios": [s["id"] for s in evals]}

    def evaluate_all(self, trained: list[dict | None], evals: list[dict], label: str) -> list[np.ndarray]:
        """Cached forced-choice p_follow on ``evals`` of the base model (None) and each trained run (its key)."""
        job = {"model_path": self.model.path, "lora": self.settings["lora"], "device": self.context.device,
               "batch_size": int(self.opts["eval_batch_size"]), "scenarios": evals}
        steps = [Step(self._eval_key(key, evals), {**job, "weights": str(self.runs.weights(key)) if key else None},
                      2 * len(evals)) for key in trained]
        p = self.steps.run(evaluate_run, steps, label=label)
        self.counts["reused"] += p.reused
        self.counts["evaluated"] += len(p.ran)
        return [np.asarray(x, float) for x in p]


def evaluate_run(job: dict) -> list[float]:
    """Forced-choice P(follow) on the eval scenarios of the base model (``weights`` None) or a trained one."""
    from vgbench.toolkit import TransformersBackend, forced_choice, get_backend, load_trained

    if job["weights"] is None:
        backend = get_backend(job["model_path"], job["device"], job["batch_size"])
    else:
        model, tokenizer = load_trained(job["model_path"], job["weights"], job["lora"], job["device"])
        backend = TransformersBackend(model, tokenizer, job["batch_size"])
    return forced_choice(backend, job["scenarios"], None, progress=job["progress"])["p_follow"].tolist()


def _rates(res: dict, groups: dict[str, list[int]], idx) -> np.ndarray:
    """[1 + n_values, n_values] mean p_follow: base first, then each trained model; over ``idx`` only."""
    keep = set(idx)
    p = np.vstack([res["base"][None, :], res["rows"]])
    return np.stack([p[:, [k for k in g if k in keep]].mean(axis=1) for g in groups.values()], axis=1)


def _matrix(res: dict, groups: dict[str, list[int]], idx) -> np.ndarray:
    rates = _rates(res, groups, idx)
    return normalised_shift(rates[1:], rates[0])


def _scenarios(task: str, value_set: ValueSet, opts: dict) -> tuple[list[str], list[dict], list[dict]]:
    """Wanted value ids, their train and their eval scenarios (both replies present, limits applied)."""
    wanted = selected_values(value_set, opts["values"])
    subset = value_set.subset(wanted)
    out = []
    for split, limit in (("train", int(opts["limit_train"])), ("eval", int(opts["limit_eval"]))):
        records = [s for s in load_records("scenarios", value_set.name, value_ids=wanted, split=split)
                   if s.get("action_follow") and s.get("action_ignore")]
        require_values("scenarios", subset, records, f"task {task} ({split} split, with action_follow and action_ignore)")
        out.append(first_per_value(records, limit) if limit else records)
    return wanted, out[0], out[1]


def _agreeing_pairs(task: Task, value_set: ValueSet, train: list[dict], threshold: float, context: RunContext,
                    batch_size: int) -> tuple[list[dict], dict]:
    """The train pairs whose own value's judge (``judge_agreement``'s single-value judge on the subject model)
    prefers ``action_follow`` with P ≥ ``threshold``, and per value what was kept; each value's judging is a step
    (run on the context's executor)."""
    from .judging import both_order_chats, judge_pass, judge_system_prompt, pass_preferences

    model = context.subject_model()
    by_value = {v: [s for s in train if s["value"] == v] for v in dict.fromkeys(s["value"] for s in train)}
    systems = {v: judge_system_prompt(value_set.value(v)) for v in by_value}
    steps = [Step({"judge": f"subject:{model.weights_hash}", "system": systems[v], "pairs": [s["id"] for s in mine]},
                  {"judge": "subject", "context": context.for_worker(), "batch_size": batch_size,
                   "chats": both_order_chats(systems[v], mine)}, 2 * len(mine))
             for v, mine in by_value.items()]
    judged = dict(zip(by_value, context.steps(task.name, "train_filter").run(
        judge_pass, steps, label=f"{task.name}: judging the train pairs (filter_train={threshold})")))
    kept, report = [], {}
    for v, mine in by_value.items():
        preference, _ = pass_preferences(judged[v], len(mine))
        kept += [s for s, p in zip(mine, preference) if np.isfinite(p) and p >= threshold]
        report[v] = {"kept": sum(1 for p in preference if np.isfinite(p) and p >= threshold), "of": len(mine),
                     "threshold": threshold, "preference": [None if not np.isfinite(p) else float(p) for p in preference]}
    empty = [v for v, r in report.items() if r["kept"] == 0]
    if empty:
        raise VgbenchError(f"-o filter_train={threshold}: no train pair of {', '.join(empty)} has its value's judge "
                           "prefer the upholding reply that strongly; lower the threshold")
    return kept, report


def _resplit(train: list[dict], evals: list[dict], seed: int) -> tuple[list[dict], list[dict]]:
    """Each value's scenarios re-drawn into train/eval of the original sizes."""
    rng = np.random.default_rng(seed)
    new_train, new_eval = [], []
    for v in dict.fromkeys(s["value"] for s in train):
        pool = [s for s in train + evals if s["value"] == v]
        n_train = sum(s["value"] == v for s in train)
        order = rng.permutation(len(pool))
        new_train += [pool[k] for k in sorted(order[:n_train])]
        new_eval += [pool[k] for k in sorted(order[n_train:])]
    return new_train, new_eval


@hookimpl
def register_tasks(register):
    """Register ``dpo_generalization``."""
    register(DPOGeneralization)
