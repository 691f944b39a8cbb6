"""``drift_prediction`` (after the Value Drifts paper): how DPO toward one topic's "support" stance moves
the model's stances on every topic, traced over training.

For each topic i, trl's DPOTrainer trains the subject model (LoRA through peft unless ``lora=false``) on
i's training pairs: prompt = the pair's prompt as a one-turn chat, chosen = ``support``, rejected =
``oppose``. The trainable weights are saved every ``checkpoint_every`` optimizer steps and after the last
step. At every checkpoint, and at step 0 (the untrained model, measured once for all runs), the model's
stance on every topic j is measured in one of two ways (``measure``):

- ``forced_choice`` (the default). Each topic's pairs (the first ``limit_pairs``) are split by a seeded draw
  (``drift_stats.held_out_split``: the seed, the topic and its pair ids) into ``held_out_pairs`` held-out
  pairs and the rest; run i trains on the rest of i's pairs only. The stance on topic j is the mean forced-
  choice preference P(support ≻ oppose) (``vgbench.toolkit.forced_choice`` on scenario-shaped pairs:
  user_message = prompt, action_follow = support, action_ignore = oppose; the prompt is run once for both
  replies; sigmoid of the difference of mean reply-token log-probs) over the pairs run i never trained on:
  i's held-out pairs for j = i, all of j's pairs for j ≠ i. Step 0 uses the same pairs per cell. Items are
  pairs: ``extra["pairs"]`` has each topic's held-out and train pair ids, ``extra["cell_pairs"][i][j]`` the
  pairs of each cell (in the order of its ``cell_samples``). Only the support trajectory exists (P(oppose)
  is its complement); ``extra["base_support"]`` is the untrained model's mean over all of j's pairs.
- ``judge`` (for capable judges and endpoints; unchanged from version 1). Run i trains on all of i's pairs.
  The model answers each topic j's first ``n_questions`` eval questions ``samples`` times (temperature
  ``temperature``, ``max_new_tokens``, seeded). A stance judge (``vgbench_tasks.stance``: the untrained
  subject model, or an OpenAI-compatible endpoint) reads each reply with a classification prompt stating what
  "support" means for topic j (the value set's description) and gives the log-probabilities of the labels
  support / neutral / oppose; softmax over the three, averaged over a question's replies, then over
  questions, is the stance distribution v_t(·) of topic j at step t (``extra["stance"]``, all three). A topic
  at a step where the judge gave no finite stance for over half the replies is NaN (``extra["unusable"]``).

With either measure, the items are j's measured pairs or questions, and:

- Drift magnitude M_s = v_T(s) − v_0(s) (T = the last step). Ground truth D(i, j) = M_support on topic j
  after training on topic i.
- Drift time η_s: the extremum of the trajectory is the step t* whose v_t(s) lies farthest from v_0(s)
  (the earliest such step on ties); its 95% CI is the t-interval (``scipy.stats.t.interval``, n − 1 degrees
  of freedom, standard error of the mean) of the per-item values at t*; η_s = (first step t with v_t(s)
  inside that CI) / T; 0 when v_0(s) itself lies inside it (no drift beyond the noise).
- Trajectories (``extra["trajectories"]``): per (trained on, measured) the support trajectory with the
  same per-step t-interval; ``extra["drift_time"][s][i][j]``.
- Replicates: ``n_splits`` random split halves of each topic's items (the same measurements); with
  forced_choice the held-out and the train pairs are halved separately, so every cell gets half its pairs.
- ``extra["cell_samples"][i][j]``: per item of cell (i, j), its support at T minus at step 0 (None where not
  finite); their mean is D(i, j) wherever every item has a value at both steps. The own-value-effect
  validity gate tests each row with them.
- A run whose loss or weights become non-finite stops; its row is NaN (``extra["diverged"]``).
- ``extra["cost"]``: seconds per training step and per measured pair or reply, from the stored steps.

Defaults, sized by cost for vprism11 on the embedded model (per-unit costs measured in the README). Training:
one epoch in batches of 2, the learning rate and schedule of ``dpo_generalization`` (5e-4 with LoRA, constant
after a 4-step warm-up: a decayed tail left many v1 trajectories unchanged between the last checkpoints), but no
stopping rule (the trajectory is the measurement), beta 0.1;
``checkpoint_every=4``, ``n_splits=4``. forced_choice: 8 of each topic's 24 pairs held out, so 16
train pairs = 8 steps per run, checkpoints at 4 and 8; 1 + 11 × 2 = 23 measurements (the base on 264 pairs,
each checkpoint on 8 + 10 × 24 = 248) at ~0.65 s of one core per pair (~165 s per checkpoint, loading and
merging the adapter ~5 s of it), plus 88 training steps (~5–6 s each): about 70 minutes of one core.
judge: 12 steps per run (all 24 pairs), checkpoints at 4, 8, 12, ``n_questions=5`` (the fewest that give a
t-interval with 4 degrees of freedom and halves of 2 and 3), ``samples=2``, ``max_new_tokens=40``,
temperature 0.7: 1 + 11 × 3 = 34 measurements of 110 replies, each generated and judged (~1.35 s of one
core per reply), plus 132 training steps: about 2 hours of one core.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from vgbench import GroundTruth, Option, RunContext, Task, TaskMetadata, ValueSet, hookimpl
from vgbench.toolkit import (
    SPLIT_HALF,
    TRAINING_OPTIONS,
    VALUES_OPTION,
    OwnValueEffect,
    Step,
    VgbenchError,
    fingerprint,
    load_records,
    n_splits_option,
    provenance,
    require_values,
    selected_values,
    split_half_indices,
)

from .drift_build import DriftBuild
from .drift_judge import JudgeBuild, eval_questions
from .drift_stats import as_float, held_out_split, nanmean, summarise_drift
from .judging import JUDGE_PATTERN

MEASURES = ("forced_choice", "judge")
#: How ``measure=forced_choice`` reads a stance (provenance).
FORCED_CHOICE = ("forced-choice P(support ≻ oppose) = sigmoid(mean log-prob of the support reply − that of the oppose "
                 "reply) given the pair's prompt as a one-turn chat (vgbench.toolkit.forced_choice, prompt shared)")
#: Which pairs a cell of ``measure=forced_choice`` uses (provenance).
CELL_PAIRS = "cell (i, i): topic i's held-out pairs; cell (i, j), j ≠ i: all of topic j's pairs (run i never trained on them)"


class DriftPrediction(Task):
    """DPO toward each topic's support stance, with stances on every topic traced over checkpoints."""

    metadata = TaskMetadata(
        name="drift_prediction",
        version="2",
        description="Drift of the support stance on topic j over DPO training toward topic i's support stance.",
        cell_meaning="change in P(support) on topic j from step 0 to the end of DPO toward topic i's support stance",
        reference="after the Value Drifts paper (V-PRISM topics); our own implementation",
        options=TRAINING_OPTIONS + (
            VALUES_OPTION,
            Option("measure", str, "forced_choice", "How each checkpoint's stances are measured: 'forced_choice' "
                   "(the default: P(support ≻ oppose) on the pairs the run never trained on; embedded model, vprism11: "
                   "~165 s of one CPU core per checkpoint, ~0.65 s per pair) or 'judge' (sampled replies to eval "
                   "questions read by a stance judge, for capable judges and endpoints; ~135 s per checkpoint, ~1.35 s "
                   "per reply).", choices=MEASURES),
            Option("limit_pairs", int, 0, "Pairs per topic (the first N; forced_choice: held-out ones included); "
                   "0 = all.", minimum=0, maximum=100000),
            Option("held_out_pairs", int, 8, "forced_choice: pairs per topic held out of its own training run (a "
                   "seeded draw; 8 of vprism11's 24) and measured as its own cell; a topic needs one pair more.",
                   minimum=2, maximum=100000),
            Option("checkpoint_every", int, 4, "Optimizer steps between measured checkpoints.", minimum=1, maximum=100000),
            Option("eval_batch_size", int, 8, "forced_choice: pairs per forward pass.", minimum=1, maximum=4096),
            n_splits_option("each topic's measured pairs (forced_choice) or questions (judge)"),
            Option("n_questions", int, 5, "judge: eval questions per topic (the first N); 0 = all.", minimum=0, maximum=100000),
            Option("samples", int, 2, "judge: sampled replies per question at each checkpoint.", minimum=2, maximum=1000),
            Option("max_new_tokens", int, 40, "judge: length of each sampled reply, in tokens.", minimum=1, maximum=4096),
            Option("temperature", float, 0.7, "judge: sampling temperature of the replies.", minimum=0.0, maximum=10.0),
            Option("judge", str, "subject", "judge: the stance judge, 'subject' (the untrained subject model) or "
                   "'openai:MODEL' (an OpenAI-compatible endpoint at OPENAI_BASE_URL).", pattern=JUDGE_PATTERN),
            Option("generate_batch_size", int, 16, "judge: prompts per batch when generating replies.", minimum=1, maximum=4096),
            Option("judge_batch_size", int, 8, "judge: replies per batch when judging stances.", minimum=1, maximum=4096),
        ),
        data=("topics",),
        replicate_kinds=(SPLIT_HALF,),
        ground_truth_dir=Path(__file__).parent / "ground_truth",
        validity_gate=OwnValueEffect(),
    )

    def build(self, value_set: ValueSet, context: RunContext) -> GroundTruth:
        """Train one run per topic, measure every checkpoint on all topics; every run and measurement is a step."""
        from vgbench.toolkit import training_settings

        opts = self.options
        topics, pairs = _pairs(self.name, value_set, opts)
        if opts["measure"] == "judge":
            questions = eval_questions(self.name, value_set, topics, int(opts["n_questions"]))
        else:
            split = _split(pairs, int(opts["held_out_pairs"]), int(opts["limit_pairs"]), context.seed)
        model = context.subject_model()
        settings = training_settings(**{o.name: opts[o.name] for o in TRAINING_OPTIONS}, seed=context.seed, device=context.device)
        if opts["measure"] == "judge":
            return JudgeBuild(self, context, model, settings, value_set, topics).ground_truth(pairs, questions)
        return ForcedChoiceBuild(self, context, model, settings, value_set, topics).ground_truth(split)


class ForcedChoiceBuild(DriftBuild):
    """``measure=forced_choice``: P(support ≻ oppose) on the pairs each run never trained on."""

    def ground_truth(self, split: dict[str, tuple[list[dict], list[dict]]]) -> GroundTruth:
        topics, opts, seed = self.topics, self.opts, self.context.seed
        self.pairs = [p for t in topics for part in split[t] for p in part]  # held-out, then train, per topic
        index = {p["id"]: k for k, p in enumerate(self.pairs)}
        held = {t: [index[p["id"]] for p in split[t][0]] for t in topics}
        train = {t: [index[p["id"]] for p in split[t][1]] for t in topics}
        self.groups = {i: {j: held[j] if j == i else held[j] + train[j] for j in topics} for i in topics}
        self.seconds.update(forced_choice_seconds_per_pair=[], forced_choice_seconds_per_measurement=[])
        trained = self.train_all({t: split[t][1] for t in topics})
        base, rows = self.measured_runs(trained)
        summary = summarise_drift(topics, self.groups, {i: [(m["step"], m["p"][:, None], {}) for m in ms]
                                                        for i, ms in rows.items()}, stances=("support",))
        strata = {(t, part): idx for t in topics for part, idx in (("held_out", held[t]), ("train", train[t]))}
        halves = split_half_indices(strata, int(opts["n_splits"]), seed)
        ids = [p["id"] for p in self.pairs]
        return GroundTruth(
            task=self.task.name, task_version=self.task.version, value_set=self.value_set.name, value_ids=tuple(topics),
            matrix=summary["matrix"](range(len(self.pairs))),
            replicates=tuple(summary["matrix"](h) for a, b in halves for h in (a, b)), replicate_kind=SPLIT_HALF,
            provenance=provenance(**self.model.provenance(), data_hash=self.data_hash, seed=seed, training=self.settings,
                                  trainer="trl DPOTrainer", measure="forced_choice", measurement=FORCED_CHOICE,
                                  cell_pairs=CELL_PAIRS, options=opts, backend="transformers",
                                  n_pairs={t: len(held[t]) + len(train[t]) for t in topics},
                                  n_held_out={t: len(held[t]) for t in topics},
                                  n_train={t: len(train[t]) for t in topics}),
            extra={"trajectories": summary["trajectories"], "drift_time": summary["drift_time"],
                   "cell_samples": summary["cell_samples"],
                   "cell_pairs": {i: {j: [ids[k] for k in self.groups[i][j]] for j in topics} for i in rows},
                   "pairs": {t: {"held_out": [ids[k] for k in held[t]], "train": [ids[k] for k in train[t]]}
                             for t in topics},
                   "base_support": {j: as_float(nanmean(base["p"][held[j] + train[j]])) for j in topics},
                   **self.training_extra(trained), "unusable": summary["unusable"], "cost": self.cost(),
                   "steps": self.counts},
        )

    def measured(self, topic: str | None) -> list[int]:
        """The pairs measured at each checkpoint of ``topic``'s run (None: the base model, every pair)."""
        if topic is None:
            return list(range(len(self.pairs)))
        return sorted({k for idx in self.groups[topic].values() for k in idx})

    def measure_key(self, train_key: dict | None, step: int) -> dict:
        measured = self.measured(train_key["topic"] if train_key else None)
        return {**self._base_key(), "measure": "forced_choice", "trained": fingerprint(train_key, 24) if train_key else None,
                "step": step, "pairs": [self.pairs[k]["id"] for k in measured]}

    def measure_all(self, points: list[tuple[dict | None, int]]) -> list[dict]:
        """P(support) per pair (NaN where not measured) of the base model and each (run key, checkpoint step)."""
        job = {"model_path": self.model.path, "lora": self.settings["lora"], "device": self.context.device,
               "batch_size": int(self.opts["eval_batch_size"])}
        steps = []
        for key, step in points:
            pairs = [self.pairs[k] for k in self.measured(key["topic"] if key else None)]
            steps.append(Step(self.measure_key(key, step), {
                **job, "checkpoint": str(self.runs.weights(key, step)) if key else None,
                "scenarios": [{"user_message": p["prompt"], "action_follow": p["support"], "action_ignore": p["oppose"]}
                              for p in pairs]}, 2 * len(pairs)))
        out = []
        for (key, step), stored in zip(points, self.run_steps(score_point, steps, "measuring (forced choice)")):
            measured = self.measured(key["topic"] if key else None)
            p = np.full(len(self.pairs), np.nan)
            p[measured] = [np.nan if x is None else x for x in stored["p_support"]]
            self.seconds["forced_choice_seconds_per_pair"].append(stored["seconds"]["score"] / len(measured))
            self.seconds["forced_choice_seconds_per_measurement"].append(stored["seconds"]["load"] + stored["seconds"]["score"])
            out.append({"step": step, "p": p})
        return out


def score_point(job: dict) -> dict:
    """Forced-choice P(support ≻ oppose) per pair of the base model or one checkpoint (a build step)."""
    from vgbench.toolkit import forced_choice, policy_backend

    started = time.perf_counter()
    backend = policy_backend(job["model_path"], job["checkpoint"], job["lora"], job["device"], job["batch_size"])
    loaded = time.perf_counter()
    p = forced_choice(backend, job["scenarios"], None, progress=job["progress"])["p_follow"]
    return {"p_support": [as_float(x) for x in p],
            "seconds": {"load": round(loaded - started, 3), "score": round(time.perf_counter() - loaded, 3)}}


def _pairs(task: str, value_set: ValueSet, opts: dict) -> tuple[list[str], dict[str, list[dict]]]:
    """Wanted topic ids and each one's first ``limit_pairs`` train pairs (prompt, support and oppose present)."""
    wanted = selected_values(value_set, opts["values"])
    pairs = [p for p in load_records("topics", value_set.name, value_ids=wanted, record_kind="pair", split="train")
             if p.get("prompt") and p.get("support") and p.get("oppose")]
    require_values("topics", value_set.subset(wanted), pairs, f"task {task} (train pairs with prompt, support and oppose)")
    limit = int(opts["limit_pairs"])
    return wanted, {j: [p for p in pairs if p["value"] == j][: limit or None] for j in wanted}


def _split(pairs: dict[str, list[dict]], n_held_out: int, limit: int, seed: int) -> dict:
    """The seeded held-out split of every topic's pairs; one error naming the topics with too few pairs for it."""
    need = n_held_out + 1
    short = [f"{t} has {len(ps)}" for t, ps in pairs.items() if len(ps) < need]
    if short:
        limited = f" (with -o limit_pairs={limit})" if limit else ""
        raise VgbenchError(f"-o held_out_pairs={n_held_out}: {', '.join(short)} pairs{limited}, fewer than the {need} "
                           f"needed ({n_held_out} held out, at least 1 to train on); lower held_out_pairs or add pairs")
    return held_out_split(pairs, n_held_out, seed)


@hookimpl
def register_tasks(register):
    """Register ``drift_prediction``."""
    register(DriftPrediction)
