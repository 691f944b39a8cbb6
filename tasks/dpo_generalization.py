"""``dpo_generalization``: how DPO-training the subject model toward value i shifts its support for value j.

Training: for each value i and each of ``runs`` independent runs, trl's DPOTrainer trains the subject model
(LoRA through peft unless ``lora=false``) on value i's train pairs: prompt = the user message as a one-turn chat
in the model's chat template (as the evaluation renders it), chosen = ``action_follow``, rejected =
``action_ignore``. Run r has seed (context seed + r) and its own data order; run 0 uses the shipped train/eval
split, run r ≥ 1 a re-split of value i's scenarios into train/eval of the same sizes. A fraction ``held_out``
(at least 4) of the run's train pairs is held out of training: every ``eval_every`` steps trl measures the DPO
reward margin on them, and the run stops once it reaches ``target_margin`` (the same for every value) or at
``max_steps``. The learning rate rises over ``warmup_steps`` and then stays constant. Each run's curves, why it
stopped and its held-out ids are in ``extra["training"][i][r]``.

Evaluation (forced choice, the measure ``prompt_steering`` uses): run r of value i on every scenario (train and
eval) of each other value j, which it never trained on, and on its own eval split for j = i; the untrained model
once on every scenario. a(i, j) is the trained model's mean P(follow) on the cell's scenarios, a(∅, j) the
untrained model's on the same scenarios (``extra["evaluated_on"]``).
M_r(i, j) = (a(i, j) − a(∅, j)) / (1 − a(∅, j)); the matrix is the mean of the runs' M_r, the replicates are the M_r (kind ``training_runs``: the ceiling is
their mean pairwise Spearman, Spearman–Brown corrected to the number of runs). A run whose loss becomes NaN/inf
stops; its row of M_r is NaN (``extra["diverged"]``), and the row is NaN when every run of the value diverged.
``extra["cell_samples"][i][j]``: every run's per-scenario shifts (p_i(s) − p_∅(s)) / (1 − a(∅, j)),
concatenated; the own-value-effect validity gate tests each row with them. Every training run and every evaluation is a
cached step, so a killed build resumes.

``filter_train=T`` (0 < T < 1) trains only on the pairs whose own value's judge (the ``judge_agreement``
judge of that value, on the subject model) prefers the upholding reply with P ≥ T: the filtered-data
build of the research note. Its matrix, put beside the unfiltered one with ``vgbench compare``, shows
how much the ground truth depends on noisy training pairs.
"""

from __future__ import annotations

import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vgbench import GroundTruth, Option, RunContext, Task, TaskMetadata, ValueSet, hookimpl
from vgbench.toolkit import (
    STOPPING_OPTIONS,
    TRAINING_OPTIONS,
    TRAINING_RUNS,
    VALUES_OPTION,
    DPORuns,
    OwnValueEffect,
    RunSpec,
    Step,
    VgbenchError,
    data_fingerprint,
    fingerprint,
    first_per_value,
    held_out_minimum,
    held_out_split,
    load_reply_pairs,
    matrix_to_json,
    provenance,
    require_values,
    scenario_shifts,
    selected_values,
    training_options,
)


class DPOGeneralization(Task):
    """DPO toward each value, measured on every value's conflict scenarios."""

    metadata = TaskMetadata(
        name="dpo_generalization",
        version="2",
        description="Shift in forced-choice support for value j after DPO training toward value i.",
        cell_meaning="normalised gain in preferring j's upholding reply after DPO training toward i",
        reference="Direct Preference Optimization (Rafailov et al., 2023), trained with trl's DPOTrainer",
        options=training_options(max_steps=64) + STOPPING_OPTIONS + (
            VALUES_OPTION,
            Option("limit_train", int, 0, "Train scenarios per value (the first N); 0 = all.", minimum=0, maximum=100000),
            Option("limit_eval", int, 0, "Eval scenarios per value (the first N); 0 = all.", minimum=0, maximum=100000),
            Option("runs", int, 2, "Independent training runs per value (own seed and data order; from the second "
                   "on, a re-split of the value's scenarios); the matrix is their mean, their agreement the ceiling.",
                   minimum=1, maximum=100),
            Option("eval_batch_size", int, 8, "Prompts per forward pass when evaluating.", minimum=1, maximum=4096),
            Option("filter_train", float, 0.0, "Train only on pairs the value's own judge prefers with P ≥ T; 0 = all.",
                   minimum=0.0, maximum=1.0),
        ),
        data=("scenarios",),
        replicate_kinds=(TRAINING_RUNS,),
        ground_truth_dir=Path(__file__).parent / "ground_truth",
        validity_gate=OwnValueEffect(),
    )

    def training(self, value_set: ValueSet, context: RunContext, needs_weights: bool = False) -> "Training":
        """Every (value, run) of this build's options trained or read back from the cache, with what it trained and
        is evaluated on. ``needs_weights``: a stored run whose weights are gone is trained again (another task
        evaluates it); otherwise only while this task's evaluation of it is not stored."""
        from vgbench.toolkit import training_settings

        opts = self.options
        values, train, evals = _scenarios(self.name, value_set, opts)
        fraction = float(opts["held_out"])
        _require_pairs({v: sum(s["value"] == v for s in train) for v in values}, fraction, "")
        splits = [(train, evals)] + [_resplit(train, evals, context.seed + r) for r in range(1, int(opts["runs"]))]
        model = context.subject_model()
        train_filter = agreeing = None
        if float(opts["filter_train"]) > 0:
            agreeing, train_filter = _agreeing_pairs(self, value_set, train + evals, float(opts["filter_train"]),
                                                     context, int(opts["eval_batch_size"]))
        plan = {(v, r): _plan_run(v, tr, ev, agreeing, fraction, context.seed + r)
                for r, (tr, ev) in enumerate(splits) for v in values}
        if agreeing is not None:
            _require_pairs({v: min(len(plan[v, r]["fit"]) + len(plan[v, r]["held"]) for r in range(len(splits)))
                            for v in values}, fraction, f" after filter_train={opts['filter_train']}")
        settings = training_settings(**{o.name: opts[o.name] for o in TRAINING_OPTIONS}, seed=context.seed,
                                     target_margin=float(opts["target_margin"]), eval_every=int(opts["eval_every"]),
                                     precompute_reference=True, device=context.device)
        build = _Build(self, context, model, settings, opts, data_fingerprint("scenarios", value_set.name),
                       f"{self.name} on {value_set.name}")
        everything = [s for v in values for s in train + evals if s["value"] == v]
        by_id = {s["id"]: s for s in everything}
        evaluated_on = {(v, r): [s for s in everything if s["value"] != v] + [by_id[k] for k in p["eval"]]
                        for (v, r), p in plan.items()}
        runs = build.train(plan, None if needs_weights else evaluated_on)
        return Training(values, plan, everything, evaluated_on, runs, build, settings, len(splits), train, evals,
                        train_filter)

    def build(self, value_set: ValueSet, context: RunContext) -> GroundTruth:
        """Train ``runs`` models per value, evaluate each on every value; every run and evaluation is a step."""
        t = self.training(value_set, context)
        results = t.build.evaluate(t)
        values, plan, everything, build, settings, model = t.values, t.plan, t.everything, t.build, t.settings, t.model
        train, evals, train_filter, opts, n_runs = t.train, t.evals, t.train_filter, self.options, t.n_runs
        run_matrices = [results["matrix"][r] for r in range(n_runs)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a value whose every run diverged: a NaN row
            matrix = np.nanmean(np.stack(run_matrices), axis=0)
        training = {v: [results["training"][v, r] for r in range(n_runs)] for v in values}
        by_value = {v: [s["id"] for s in everything if s["value"] == v] for v in values}
        extra = {
            "base_rate": {v: float(np.mean([results["base"][k] for k in by_value[v]])) for v in values},
            "run_matrices": [matrix_to_json(m) for m in run_matrices],
            "rates": [matrix_to_json(results["rates"][r]) for r in range(n_runs)],
            "diagonal_base_rate": [{v: results["diagonal_base"][v, r] for v in values} for r in range(n_runs)],
            "cell_samples": results["cell_samples"],
            "evaluated_on": {"off_diagonal": "every scenario of value j (its train and eval splits)",
                             "diagonal": {v: {str(r): plan[v, r]["eval"] for r in range(n_runs)} for v in values}},
            "training": training,
            "stopped": {v: [t["stopped"] for t in runs] for v, runs in training.items()},
            "diverged": {v: {str(r): t["reason"] for r, t in enumerate(runs) if t["status"] != "ok"}
                         for v, runs in training.items() if any(t["status"] != "ok" for t in runs)},
            "steps": build.counts,
        }
        if train_filter is not None:
            extra["train_filter"] = train_filter
        return GroundTruth(
            task=self.name, task_version=self.version, value_set=value_set.name, value_ids=tuple(values),
            matrix=matrix, replicates=tuple(run_matrices), replicate_kind=TRAINING_RUNS,
            provenance=provenance(**model.provenance(), data_hash=build.data_hash, seed=context.seed,
                                  training=settings, trainer="trl DPOTrainer", options=opts, backend="transformers",
                                  runs=n_runs, run_seeds=[context.seed + r for r in range(n_runs)],
                                  n_train={v: sum(s["value"] == v for s in train) for v in values},
                                  n_eval={v: sum(s["value"] == v for s in evals) for v in values},
                                  n_trained_on={v: [len(plan[v, r]["fit"]) for r in range(n_runs)] for v in values},
                                  n_held_out={v: [len(plan[v, r]["held"]) for r in range(n_runs)] for v in values},
                                  evaluated_on={"off_diagonal": "every scenario of value j (train and eval splits)",
                                                "diagonal": "the run's own eval split of value i",
                                                "n_off_diagonal": {v: len(by_value[v]) for v in values},
                                                "n_diagonal": {v: [len(plan[v, r]["eval"]) for r in range(n_runs)]
                                                               for v in values}},
                                  cost_note="runs=K trains and evaluates K models per value"),
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

    def train(self, plan: dict, evaluated_on: dict | None) -> dict:
        """Every (value, run) of ``plan`` trained or read back: ``{(v, r): (RunSpec, TrainedRun)}``. With
        ``evaluated_on`` ((v, r) → scenarios), a stored run whose weights are gone is trained again only while its
        evaluation on them is not stored; without it, always (the weights are needed)."""
        from vgbench.toolkit import chat

        def pairs(scenarios):
            return [{"messages": chat(s["user_message"]), "chosen": s["action_follow"], "rejected": s["action_ignore"]}
                    for s in scenarios]

        specs, name_of = {}, {}
        for (v, r), p in plan.items():
            run_settings = {**self.settings, "seed": self.settings["seed"] + r}
            key = {"task": self.task.name, "version": self.task.version, "model": self.model.weights_hash,
                   "data": self.data_hash, "value": v, "train": [s["id"] for s in p["fit"]],
                   "held_out": [s["id"] for s in p["held"]], "settings": run_settings}
            specs[v, r] = RunSpec(key, pairs(p["fit"]), pairs(p["held"]), run_settings)
            name_of[fingerprint(key, 24)] = (v, r)

        def evaluation_key(key: dict, _) -> dict:
            if evaluated_on is None:
                return {"weights needed": fingerprint(key, 24)}  # never stored: missing weights are retrained
            return self._eval_key(key, evaluated_on[name_of[fingerprint(key, 24)]])

        trained = self.runs.train(specs, label=f"{self.label}: training", evaluation_key=evaluation_key)
        for run in trained.values():
            self.counts["trained" if run.ran else "reused"] += 1
        return {name: (specs[name], run) for name, run in trained.items()}

    def evaluate(self, training: "Training") -> dict:
        """Evaluate the untrained model on every scenario and each trained run on the other values' scenarios and
        its own eval split; the run matrices, rates, samples and training logs."""
        runs, evaluated_on, everything = training.runs, training.evaluated_on, training.everything
        ok = [name for name, (_, run) in runs.items() if run.result["status"] == "ok"]
        p = self.evaluate_all([None] + [runs[name][1].key for name in ok], [everything] + [evaluated_on[n] for n in ok],
                              f"{self.label}: evaluating")
        base = dict(zip([s["id"] for s in everything], p[0]))
        measured = {name: dict(zip([s["id"] for s in evaluated_on[name]], ps)) for name, ps in zip(ok, p[1:])}
        out = _run_matrices(training.values, training.plan, base, measured, everything)
        out["training"] = {
            (v, r): {"run": r, "seed": spec.settings["seed"], "status": run.result["status"],
                     "reason": run.result["reason"],
                     "weights": training.weights((v, r)),
                     **run.result["log"], "train_ids": spec.key["train"],
                     "held_out_ids": spec.key["held_out"], "eval_ids": training.plan[v, r]["eval"]}
            for (v, r), (spec, run) in runs.items()}
        return out

    def _eval_key(self, train_key: dict | None, scenarios: list[dict]) -> dict:
        return {"task": self.task.name, "version": self.task.version, "model": self.model.weights_hash,
                "data": self.data_hash, "trained": fingerprint(train_key, 24) if train_key else None,
                "scenarios": [s["id"] for s in scenarios]}

    def evaluate_all(self, trained: list[dict | None], scenarios: list[list[dict]], label: str) -> list[np.ndarray]:
        """Cached forced-choice p_follow of the base model (None) and each trained run (its key) on its scenarios."""
        job = {"model_path": self.model.path, "lora": self.settings["lora"], "device": self.context.device,
               "batch_size": int(self.opts["eval_batch_size"])}
        steps = [Step(self._eval_key(key, mine), {**job, "scenarios": mine,
                                                  "weights": str(self.runs.weights(key)) if key else None},
                      2 * len(mine)) for key, mine in zip(trained, scenarios)]
        p = self.steps.run(evaluate_run, steps, label=label)
        self.counts["reused"] += p.reused
        self.counts["evaluated"] += len(p.ran)
        return [np.asarray(x, float) for x in p]


@dataclass
class Training:
    """The DPO runs of one build: values, per (value, run) what it trains on and its eval ids (``plan``), every
    scenario, what each run is evaluated on, the runs ({(v, r): (RunSpec, TrainedRun)}) and how they were made."""

    values: list[str]
    plan: dict
    everything: list[dict]
    evaluated_on: dict
    runs: dict
    build: _Build
    settings: dict
    n_runs: int
    train: list[dict]
    evals: list[dict]
    train_filter: dict | None

    @property
    def model(self):
        """The subject model the runs start from."""
        return self.build.model

    def weights(self, name: tuple[str, int]) -> str | None:
        """Where run ``name``'s trained weights are (None for a run that diverged)."""
        spec, run = self.runs[name]
        return str(self.build.runs.weights(run.key)) if run.result["status"] == "ok" else None


def _run_matrices(values: list[str], plan: dict, base: dict, measured: dict, everything: list[dict]) -> dict:
    """Per run r: M_r (NaN rows for runs not measured), a_r(i, j), the base rate of each diagonal cell; and every
    cell's per-scenario shifts of all runs. ``base`` and ``measured[i, r]`` map scenario ids to P(follow)."""
    n_runs = 1 + max(r for _, r in plan)
    by_value = {v: [s["id"] for s in everything if s["value"] == v] for v in values}
    out = {"base": base, "matrix": {}, "rates": {}, "diagonal_base": {},
           "cell_samples": {i: {j: [] for j in values} for i in values}}
    for r in range(n_runs):
        m, rates = np.full((len(values), len(values)), np.nan), np.full((len(values), len(values)), np.nan)
        for a, i in enumerate(values):
            out["diagonal_base"][i, r] = float(np.mean([base[k] for k in plan[i, r]["eval"]]))
            if (i, r) not in measured:
                continue
            for b, j in enumerate(values):
                ids = plan[i, r]["eval"] if i == j else by_value[j]  # the untrained model on the same scenarios
                mine, base_p = np.array([measured[i, r][k] for k in ids]), np.array([base[k] for k in ids])
                a0 = float(base_p.mean())
                rates[a, b] = float(mine.mean())
                if a0 < 1.0:
                    m[a, b] = (rates[a, b] - a0) / (1.0 - a0)
                    out["cell_samples"][i][j] += scenario_shifts(mine, base_p)
        out["matrix"][r], out["rates"][r] = m, rates
    return out


def evaluate_run(job: dict) -> list[float]:
    """Forced-choice P(follow) on the job's scenarios of the base model (``weights`` None) or a trained one."""
    from vgbench.toolkit import forced_choice, policy_backend

    backend = policy_backend(job["model_path"], job["weights"], job["lora"], job["device"], job["batch_size"])
    return forced_choice(backend, job["scenarios"], None, progress=job["progress"])["p_follow"].tolist()


def _plan_run(value: str, train: list[dict], evals: list[dict], agreeing: set | None, fraction: float,
              seed: int) -> dict:
    """One run of ``value``: the pairs it trains on (``fit``), those held out for the stopping rule, its eval ids."""
    mine = [s for s in train if s["value"] == value and (agreeing is None or s["id"] in agreeing)]
    fit, held = held_out_split(mine, fraction, [seed, _value_seed(value)])
    return {"fit": fit, "held": held, "eval": [s["id"] for s in evals if s["value"] == value]}


def _require_pairs(counts: dict[str, int], fraction: float, where: str) -> None:
    """One error naming every value with too few train pairs for the held-out stopping rule."""
    need = held_out_minimum(fraction)
    short = [f"{v} ({n})" for v, n in counts.items() if n < need]
    if short:
        raise VgbenchError(f"too few train pairs{where} for the held-out stopping rule: {', '.join(short)}; each value "
                           f"needs at least {need} (at least 4 held out with held_out={fraction}, and at least 4 to "
                           "train on); use more train scenarios (limit_train), or a lower filter_train")


def _value_seed(value: str) -> int:
    """A stable number per value id, so that a value's re-split and held-out pairs do not depend on the others."""
    return zlib.crc32(value.encode())


def _scenarios(task: str, value_set: ValueSet, opts: dict) -> tuple[list[str], list[dict], list[dict]]:
    """Wanted value ids, their train and their eval scenarios (both replies present, limits applied)."""
    wanted = selected_values(value_set, opts["values"])
    subset = value_set.subset(wanted)
    out = []
    for split, limit in (("train", int(opts["limit_train"])), ("eval", int(opts["limit_eval"]))):
        records = load_reply_pairs(value_set.name, value_ids=wanted, split=split)
        require_values("scenarios", subset, records, f"task {task} ({split} split, with action_follow and action_ignore)")
        out.append(first_per_value(records, limit) if limit else records)
    return wanted, out[0], out[1]


def _agreeing_pairs(task: Task, value_set: ValueSet, scenarios: list[dict], threshold: float, context: RunContext,
                    batch_size: int) -> tuple[set, dict]:
    """The ids of the scenarios whose own value's judge (``judge_agreement``'s single-value judge on the subject
    model) prefers ``action_follow`` with P ≥ ``threshold``, and per value what was kept; each value's judging is a
    step (run on the context's executor). Every scenario is judged, since a re-split run trains on former eval ones."""
    from .judging import both_order_chats, judge_pass, judge_system_prompt, pass_preferences

    model = context.subject_model()
    by_value = {v: [s for s in scenarios if s["value"] == v] for v in dict.fromkeys(s["value"] for s in scenarios)}
    systems = {v: judge_system_prompt(value_set.value(v)) for v in by_value}
    steps = [Step({"judge": f"subject:{model.weights_hash}", "system": systems[v], "pairs": [s["id"] for s in mine]},
                  {"judge": "subject", "context": context.for_worker(), "batch_size": batch_size,
                   "chats": both_order_chats(systems[v], mine)}, 2 * len(mine))
             for v, mine in by_value.items()]
    judged = dict(zip(by_value, context.steps(task.name, "train_filter").run(
        judge_pass, steps, label=f"{task.name}: judging the train pairs (filter_train={threshold})")))
    kept, report = set(), {}
    for v, mine in by_value.items():
        preference, _ = pass_preferences(judged[v], len(mine))
        keep = [s["id"] for s, p in zip(mine, preference) if np.isfinite(p) and p >= threshold]
        kept.update(keep)
        report[v] = {"kept": len(keep), "of": len(mine), "threshold": threshold, "ids": [s["id"] for s in mine],
                     "preference": [None if not np.isfinite(p) else float(p) for p in preference]}
    empty = [v for v, r in report.items() if r["kept"] == 0]
    if empty:
        raise VgbenchError(f"-o filter_train={threshold}: no train pair of {', '.join(empty)} has its value's judge "
                           "prefer the upholding reply that strongly; lower the threshold")
    return kept, report


def _resplit(train: list[dict], evals: list[dict], seed: int) -> tuple[list[dict], list[dict]]:
    """Each value's scenarios re-drawn into train/eval of the original sizes (each value by its own seed)."""
    new_train, new_eval = [], []
    for v in dict.fromkeys(s["value"] for s in train):
        pool = [s for s in train + evals if s["value"] == v]
        n_train = sum(s["value"] == v for s in train)
        order = np.random.default_rng([seed, _value_seed(v)]).permutation(len(pool))
        new_train += [pool[k] for k in sorted(order[:n_train])]
        new_eval += [pool[k] for k in sorted(order[n_train:])]
    return new_train, new_eval


@hookimpl
def register_tasks(register):
    """Register ``dpo_generalization``."""
    register(DPOGeneralization)
