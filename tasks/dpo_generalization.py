"""``dpo_generalization``: how DPO-training the subject model toward value i shifts its support for value j.

For each value i, trl's DPOTrainer trains the subject model (LoRA through peft unless ``lora=false``)
on value i's ``train`` conflict scenarios: prompt = the user message as a one-turn chat in the
model's chat template (as the evaluation renders it), chosen = ``action_follow``, rejected =
``action_ignore``. a(i, j) is the trained model's mean forced-choice preference for the upholding
reply on value j's ``eval`` scenarios (the measure ``prompt_steering`` uses); a(∅, j) is the untrained
model's. M(i, j) = (a(i, j) − a(∅, j)) / (1 − a(∅, j)). Replicates: split halves of every value's eval
scenarios. A run whose loss becomes NaN/inf stops; its row is NaN and ``extra["diverged"]`` says why.

``train_splits=K`` (GPU users) re-trains everything on K random re-splits of each value's scenarios into
train/eval (same sizes) and appends each re-split's split-half pair to the replicates (their full
matrices go to ``extra``): the replicates then also vary the training data. It multiplies the cost by
K+1. Every training run and every evaluation is a cached step, so a killed build resumes.
"""

from __future__ import annotations

import math

import numpy as np

from vgbench import GroundTruth, RunContext, Task, ValueSet, hookimpl
from vgbench.data.records import data_fingerprint, load_records, require_values
from vgbench.fingerprint import fingerprint
from vgbench.provenance import provenance
from vgbench.scoring import SPLIT_HALF
from vgbench.steps import StepCache
from vgbench.task_helpers import (
    first_per_value,
    normalised_shift,
    selected_values,
    split_half_indices,
    typed_options,
)
from vgbench.training.dpo import TRAINING_OPTIONS
from vgbench.types import matrix_to_json

#: Defaults sized so that constraints9 (9 values × 24 train pairs, 16 eval scenarios) builds on the
#: embedded model in under an hour on 2 CPU cores: one pass over each value's pairs (training time
#: grows with epochs × pairs), split into batches of 2 to get 12 optimizer steps from that pass.
#: learning_rate 0 = 2e-4 with LoRA, 5e-6 for full fine-tuning; beta 0.1 is trl's and the DPO paper's;
#: max_length 256 truncates none of the shipped scenarios (longest prompt + reply: ~200 tokens).


class DPOGeneralization(Task):
    """DPO toward each value, measured on every value's conflict scenarios."""

    name = "dpo_generalization"
    description = "Shift in forced-choice support for value j after DPO training toward value i."
    version = "1"
    cell_meaning = "normalised gain in preferring j's upholding reply after DPO training toward i"
    default_options = {**TRAINING_OPTIONS, "values": "", "limit_train": 0, "limit_eval": 0, "n_splits": 4,
                       "eval_batch_size": 8, "train_splits": 0}

    def build(self, value_set: ValueSet, context: RunContext) -> GroundTruth:
        """Train one model per value and evaluate each on all values; every run is a resumable step."""
        from vgbench.training.dpo import training_settings

        opts = typed_options(self.default_options, context.options, {k: 1 for k in ("batch_size", "lora_r", "n_splits", "eval_batch_size", "max_length")})
        values, train, evals = _scenarios(self.name, value_set, opts)
        model = context.subject_model()
        settings = training_settings(**{k: opts[k] for k in TRAINING_OPTIONS}, seed=context.seed, device=context.device)
        runner = _Runner(self, context, model, settings, opts, data_fingerprint("scenarios", value_set.name))
        splits = [(train, evals)] + [_resplit(train, evals, context.seed + k) for k in range(1, int(opts["train_splits"]) + 1)]
        runner.advance = context.tracker(sum(runner.units(len(values), tr, ev) for tr, ev in splits),
                                         f"{self.name} on {value_set.name}")
        results = [runner.split(values, tr, ev) for tr, ev in splits]

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
            "training": main["training"],
            "diverged": {v: t["reason"] for v, t in main["training"].items() if t["status"] != "ok"},
            "steps": runner.counts,
        }
        if len(splits) > 1:
            extra["train_split_matrices"] = [matrix_to_json(m) for m in full_matrices[1:]]
            extra["train_split_training"] = [r["training"] for r in results[1:]]
        return GroundTruth(
            task=self.name, task_version=self.version, value_set=value_set.name, value_ids=tuple(values),
            matrix=full_matrices[0], replicates=tuple(replicates), replicate_kind=SPLIT_HALF,
            provenance=provenance(**model.provenance(), data_hash=runner.data_hash, seed=context.seed,
                                  training=settings, trainer="trl DPOTrainer", options=opts, backend="transformers",
                                  n_train={v: sum(s["value"] == v for s in train) for v in values},
                                  n_eval={v: len(groups[v]) for v in values},
                                  cost_note="train_splits=K multiplies the build's cost by K+1"),
            extra=extra,
        )


class _Runner:
    """Runs (or reads back) the cached training and evaluation steps of one build."""

    def __init__(self, task: Task, context: RunContext, model, settings: dict, opts: dict, data_hash: str):
        self.task, self.context, self.model, self.settings, self.opts = task, context, model, settings, opts
        self.data_hash = data_hash
        self.root = context.cache_dir / "tasks" / task.name
        self.steps = StepCache(self.root)
        self.counts = {"trained": 0, "evaluated": 0, "reused": 0}
        self.advance = lambda n: None

    def steps_per_run(self, n_pairs: int) -> int:
        """Optimizer steps of one training run (as the Trainer counts them)."""
        if self.settings["max_steps"] > 0:
            return self.settings["max_steps"]
        return math.ceil(self.settings["epochs"] * math.ceil(n_pairs / self.settings["batch_size"]))

    def units(self, n_values: int, train: list[dict], evals: list[dict]) -> int:
        """Progress units of one split: optimizer steps plus scored replies."""
        runs = sum(self.steps_per_run(sum(s["value"] == v for s in train)) for v in {s["value"] for s in train})
        return runs + (n_values + 1) * 2 * len(evals)

    def split(self, values: list[str], train: list[dict], evals: list[dict]) -> dict:
        """Base and per-value p_follow on ``evals`` (NaN rows for diverged runs) and the training logs."""
        base = self.evaluate(None, evals)
        rows, training = [], {}
        for v in values:
            pairs = [s for s in train if s["value"] == v]
            key, run = self.train(v, pairs, evals)
            training[v] = {"status": run["status"], "reason": run["reason"], "weights": run["path"], **run["log"]}
            if run["status"] == "ok":
                rows.append(self.evaluate((key, run), evals))
            else:
                rows.append(np.full(len(evals), np.nan))
                self.advance(2 * len(evals))
        return {"base": base, "rows": np.stack(rows), "training": training}

    def train(self, value: str, pairs: list[dict], evals: list[dict]) -> tuple[dict, dict]:
        """The cached training run on ``pairs`` (re-run if its weights are gone and still needed)."""
        from vgbench.models.backend import chat
        from vgbench.training import dpo

        key = {"task": self.task.name, "version": self.task.version, "model": self.model.weights_hash,
               "data": self.data_hash, "value": value, "train": [s["id"] for s in pairs], "settings": self.settings}
        out_dir = self.root / "trained" / fingerprint(key, 24)
        run = self._stored(key)
        if run is not None:
            weights_gone = run["status"] == "ok" and not out_dir.is_dir()
            if not weights_gone or self.steps.has(self._eval_key(key, evals)):
                self.counts["reused"] += 1
                self.advance(self.steps_per_run(len(pairs)))
                return key, {**run, "path": str(out_dir) if run["status"] == "ok" else None}
            self.steps.path(key).unlink()
        done = [0]

        def on_step(n: int) -> None:
            done[0] += n
            self.advance(n)

        examples = [{"messages": chat(s["user_message"]), "chosen": s["action_follow"],
                     "rejected": s["action_ignore"]} for s in pairs]
        run = self.steps.run(key, lambda: dpo.train_dpo(self.model.path, examples, out_dir, self.settings, on_step))
        self.advance(max(self.steps_per_run(len(pairs)) - done[0], 0))  # a diverged run stops early
        self.counts["trained"] += 1
        return key, run

    def _stored(self, key: dict):
        """A finished step's result, or None (a damaged step file is removed)."""
        if not self.steps.has(key):
            return None
        result = self.steps.run(key, lambda: None)
        if result is None:
            self.steps.path(key).unlink(missing_ok=True)
        return result

    def _eval_key(self, train_key: dict | None, evals: list[dict]) -> dict:
        return {"task": self.task.name, "version": self.task.version, "model": self.model.weights_hash,
                "data": self.data_hash, "trained": fingerprint(train_key, 24) if train_key else None,
                "scenarios": [s["id"] for s in evals]}

    def evaluate(self, trained: tuple[dict, dict] | None, evals: list[dict]) -> np.ndarray:
        """Cached forced-choice p_follow of the base (``trained`` None) or a trained model on ``evals``."""
        from vgbench.models.backend import TransformersBackend, get_backend
        from vgbench.models.preference import forced_choice
        from vgbench.training.dpo import load_trained

        key = self._eval_key(trained[0] if trained else None, evals)
        stored = self._stored(key)
        if stored is not None:
            self.counts["reused"] += 1
            self.advance(2 * len(evals))
            return np.asarray(stored, float)
        batch, device = int(self.opts["eval_batch_size"]), self.context.device
        if trained is None:
            backend = get_backend(self.model.path, device, batch)
        else:
            backend = TransformersBackend(*load_trained(self.model.path, trained[1]["path"], self.settings["lora"], device), batch)
        p = self.steps.run(key, lambda: forced_choice(backend, evals, None, progress=self.advance)["p_follow"].tolist())
        self.counts["evaluated"] += 1
        return np.asarray(p, float)


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
