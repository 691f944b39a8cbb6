"""``drift_prediction`` (after the Value Drifts paper): how DPO toward one topic's "support" stance moves
the model's stances on every topic, traced over training.

For each topic i, trl's DPOTrainer trains the subject model (LoRA through peft unless ``lora=false``) on
i's ``train`` preference pairs: prompt = the pair's prompt as a one-turn chat, chosen = ``support``,
rejected = ``oppose``. The trainable weights are saved every ``checkpoint_every`` optimizer steps and
after the last step. At every checkpoint, and at step 0 (the untrained model, measured once for all
runs), the model answers each topic j's first ``n_questions`` eval questions ``samples`` times
(temperature ``temperature``, ``max_new_tokens``, seeded). A stance judge (``vgbench_tasks.stance``: the
untrained subject model, or an OpenAI-compatible endpoint) reads each reply with a classification prompt
stating what "support" means for topic j (the value set's description) and gives the log-probabilities of the labels support /
neutral / oppose; softmax over the three, averaged over a question's replies, then over questions, is
the stance distribution v_t(·) of topic j at step t.

- Drift magnitude M_s = v_T(s) − v_0(s) (T = the last step). Ground truth D(i, j) = M_support on topic j
  after training on topic i.
- Drift time η_s: the extremum of the trajectory is the step t* whose v_t(s) lies farthest from v_0(s)
  (the earliest such step on ties); its 95% CI is the t-interval (``scipy.stats.t.interval``, n − 1 degrees
  of freedom, standard error of the mean) of the per-question values at t*; η_s = (first step t with
  v_t(s) inside that CI) / T; 0 when v_0(s) itself lies inside it (no drift beyond the noise).
- Trajectories (``extra["trajectories"]``): per (trained on, measured) the support trajectory with the
  same per-step t-interval; ``extra["stance"]`` has all three stances; ``extra["drift_time"][s][i][j]``.
- Replicates: split halves of each topic's questions (the same replies), ``n_splits`` random halvings.
- ``extra["cell_samples"][i][j]``: per question of topic j, its support at T minus at step 0 (None where the
  judge gave no finite stance); their mean is D(i, j) wherever every question has a stance at both steps. The
  own-value-effect validity gate tests each row with them.
- A run whose loss or weights become non-finite stops; its row is NaN (``extra["diverged"]``). A topic at
  a step where the judge gave no finite stance for over half the replies is NaN (``extra["unusable"]``).

Defaults, sized by cost for vprism11 on the embedded model (about 1 hour on 2 free CPU cores; measured
per-unit costs in the README): one epoch over each topic's 24 pairs in batches of 2 = 12 steps (learning
rate 2e-4 with LoRA, linearly decayed with no warm-up, beta 0.1), ``checkpoint_every=4`` (steps 0, 4, 8, 12:
four points per trajectory), ``n_questions=5`` (the fewest that give a t-interval with 4 degrees of
freedom and halves of 2 and 3), ``samples=2``, ``max_new_tokens=40``, temperature 0.7. That is
1 + 11 × 3 = 34 measurements of 11 × 5 × 2 = 110 replies, each generated and judged (~1.35 s of one core
per reply), plus 132 training steps (~6 s each).
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
    DPORuns,
    OwnValueEffect,
    Step,
    data_fingerprint,
    fingerprint,
    load_records,
    n_splits_option,
    provenance,
    require_values,
    selected_values,
    split_half_indices,
    training_options,
)

from .drift_stats import STANCES, as_float, nanmean, summarise_drift
from .judging import JUDGE_PATTERN


class DriftPrediction(Task):
    """DPO toward each topic's support stance, with stances on every topic traced over checkpoints."""

    metadata = TaskMetadata(
        name="drift_prediction",
        version="1",
        description="Drift of the support stance on topic j over DPO training toward topic i's support stance.",
        cell_meaning="change in P(support) on topic j from step 0 to the end of DPO toward topic i's support stance",
        reference="after the Value Drifts paper (V-PRISM topics); our own implementation",
        # its schedule stays what it was (linear decay, no warm-up): the shipped drift matrices were built with it
        options=training_options(lr_scheduler="linear", warmup_steps=0) + (
            VALUES_OPTION,
            Option("limit_pairs", int, 0, "Train pairs per topic (the first N); 0 = all.", minimum=0, maximum=100000),
            Option("checkpoint_every", int, 4, "Optimizer steps between measured checkpoints.", minimum=1, maximum=100000),
            Option("n_questions", int, 5, "Eval questions per topic (the first N); 0 = all.", minimum=0, maximum=100000),
            Option("samples", int, 2, "Sampled replies per question at each checkpoint.", minimum=2, maximum=1000),
            Option("max_new_tokens", int, 40, "Length of each sampled reply, in tokens.", minimum=1, maximum=4096),
            Option("temperature", float, 0.7, "Sampling temperature of the replies.", minimum=0.0, maximum=10.0),
            n_splits_option("each topic's questions"),
            Option("judge", str, "subject", "Stance judge: 'subject' (the untrained subject model) or 'openai:MODEL' "
                   "(an OpenAI-compatible endpoint at OPENAI_BASE_URL).", pattern=JUDGE_PATTERN),
            Option("generate_batch_size", int, 16, "Prompts per batch when generating replies.", minimum=1, maximum=4096),
            Option("judge_batch_size", int, 8, "Replies per batch when judging stances.", minimum=1, maximum=4096),
        ),
        data=("topics",),
        replicate_kinds=(SPLIT_HALF,),
        ground_truth_dir=Path(__file__).parent / "ground_truth",
        validity_gate=OwnValueEffect(),
    )

    def build(self, value_set: ValueSet, context: RunContext) -> GroundTruth:
        """Train one run per topic, measure every checkpoint on all topics; every run and measurement is a step."""
        from vgbench.toolkit import training_settings

        from .stance import make_stance_judge

        opts = self.options
        topics, questions, pairs = _records(self.name, value_set, opts)
        model = context.subject_model()
        settings = training_settings(**{o.name: opts[o.name] for o in TRAINING_OPTIONS}, seed=context.seed, device=context.device)
        judge = make_stance_judge(str(opts["judge"]), context, int(opts["judge_batch_size"]))
        run = _Build(self, context, model, settings, opts, judge, value_set, topics, questions)
        trained = run.train_all(pairs)
        ok = [t for t in topics if trained[t].result["status"] == "ok"]
        points = [(None, 0)] + [(trained[t].key, s) for t in ok for s in trained[t].result["checkpoints"]]
        measured = iter(run.measure_all(points))
        base = next(measured)
        rows = {t: [base] + [next(measured) for _ in trained[t].result["checkpoints"]] for t in ok}
        training = {t: {**r.result, "folder": str(run.runs.folder(r.key))} for t, r in trained.items()}
        groups = {j: [k for k, q in enumerate(questions) if q["value"] == j] for j in topics}
        summary = summarise_drift(topics, groups, {i: [(m["step"], run.per_question(m), m["unusable"]) for m in ms]
                                              for i, ms in rows.items()})
        halves = split_half_indices(groups, int(opts["n_splits"]), context.seed)
        replicates = [summary["matrix"](h) for a, b in halves for h in (a, b)]
        base_q = run.per_question(base)
        return GroundTruth(
            task=self.name, task_version=self.version, value_set=value_set.name, value_ids=tuple(topics),
            matrix=summary["matrix"](range(len(questions))), replicates=tuple(replicates), replicate_kind=SPLIT_HALF,
            provenance=provenance(**model.provenance(), data_hash=run.data_hash, seed=context.seed, training=settings,
                                  trainer="trl DPOTrainer", judge=judge.identity, options=opts, backend="transformers",
                                  n_questions={j: len(groups[j]) for j in topics},
                                  n_pairs={i: len(pairs[i]) for i in topics}),
            extra={"trajectories": summary["trajectories"], "stance": summary["stance"],
                   "drift_time": summary["drift_time"], "cell_samples": summary["cell_samples"],
                   "base_stance": {j: dict(zip(STANCES, map(as_float, nanmean(base_q[groups[j]])))) for j in topics},
                   "training": training, "diverged": {i: t["reason"] for i, t in training.items() if t["status"] != "ok"},
                   "unusable": summary["unusable"], "base_unusable": base["unusable"], "cost": run.cost(),
                   "steps": run.counts},
        )


class _Build:
    """The cached training runs and stance measurements of one build."""

    def __init__(self, task, context, model, settings, opts, judge, value_set, topics, questions):
        self.task, self.context, self.model, self.settings, self.opts = task, context, model, settings, opts
        self.judge, self.value_set, self.topics, self.questions = judge, value_set, topics, questions
        self.data_hash = data_fingerprint("topics", value_set.name)
        self.label = f"{task.name} on {value_set.name}"
        self.steps = context.steps(task.name)
        self.runs = DPORuns(self.steps, model.path, settings, checkpoint_every=int(opts["checkpoint_every"]))
        self.counts = {"trained": 0, "measured": 0, "reused": 0}
        self.replies = [(k, s) for k in range(len(questions)) for s in range(int(opts["samples"]))]
        self.seconds: dict[str, list[float]] = {"train_step": [], "generate": [], "judge": []}

    def _base_key(self) -> dict:
        return {"task": self.task.name, "version": self.task.version, "model": self.model.weights_hash,
                "data": self.data_hash}

    def _train_key(self, topic: str, pairs: list[dict]) -> dict:
        return {**self._base_key(), "topic": topic, "pairs": [p["id"] for p in pairs], "settings": self.settings,
                "checkpoint_every": int(self.opts["checkpoint_every"])}

    def train_all(self, pairs: dict[str, list[dict]]) -> dict:
        """Every topic's training run (a checkpoint folder per saved step), trained or read back.

        A finished run is trained again only when a checkpoint it still has to be measured at is gone.
        """
        from vgbench.toolkit import chat

        trained = self.runs.train(
            {t: (self._train_key(t, ps), [{"messages": chat(p["prompt"]), "chosen": p["support"],
                                           "rejected": p["oppose"]} for p in ps]) for t, ps in pairs.items()},
            label=f"{self.label}: training", evaluation_key=self._measure_key)
        for run in trained.values():
            self.counts["trained" if run.ran else "reused"] += 1
            self.seconds["train_step"] += run.result["step_seconds"]
        return trained

    def _measure_key(self, train_key: dict | None, step: int) -> dict:
        o = self.opts
        return {**self._base_key(), "trained": fingerprint(train_key, 24) if train_key else None, "step": step,
                "questions": [q["id"] for q in self.questions], "samples": int(o["samples"]), "seed": self.context.seed,
                "max_new_tokens": int(o["max_new_tokens"]), "temperature": float(o["temperature"]),
                "judge": self.judge.identity}

    def measure_all(self, points: list[tuple[dict | None, int]]) -> list[dict]:
        """Replies and stances on every topic at each (training run key or None for the base model, step)."""
        from vgbench.toolkit import chat

        o = self.opts
        job = {"model_path": self.model.path, "lora": self.settings["lora"], "context": self.context.for_worker(),
               "judge": str(o["judge"]), "generate_batch_size": int(o["generate_batch_size"]),
               "judge_batch_size": int(o["judge_batch_size"]),
               "chats": [chat(self.questions[k]["question"]) for k, _ in self.replies],
               "items": [{"topic": self.value_set.value(self.questions[k]["value"]),
                          "question": self.questions[k]["question"]} for k, _ in self.replies],
               "max_new_tokens": int(o["max_new_tokens"]), "temperature": float(o["temperature"]),
               "seed": self.context.seed}
        steps = [Step(self._measure_key(key, step),
                      {**job, "checkpoint": str(self.runs.weights(key, step)) if key else None}, 2 * len(self.replies))
                 for key, step in points]
        stored = self.steps.run(measure_point, steps, label=f"{self.label}: measuring")
        self.counts["reused"] += stored.reused
        self.counts["measured"] += len(stored.ran)
        for m in stored:
            self.seconds["generate"].append(m["seconds"]["generate"] / len(self.replies))
            self.seconds["judge"].append(m["seconds"]["judge"] / len(self.replies))
        return [self._with_stances(m, step) for m, (_, step) in zip(stored, points)]

    def _with_stances(self, stored: dict, step: int) -> dict:
        """The stored measurement with per-reply stance probabilities and the topics the judge gave no stance on."""
        from .stance import stance_probabilities

        probs = stance_probabilities(np.array([[np.nan if x is None else x for x in row] for row in stored["logprobs"]]))
        unusable = {}
        for j in self.topics:
            mine = [r for r, (k, _) in enumerate(self.replies) if self.questions[k]["value"] == j]
            missing = int((~np.isfinite(probs[mine]).all(axis=1)).sum())
            if missing * 2 > len(mine):
                unusable[j] = f"the judge gave no finite stance for {missing} of {len(mine)} replies"
        return {"step": step, "probs": probs, "unusable": unusable}

    def per_question(self, measurement: dict) -> np.ndarray:
        """[n_questions, 3]: each question's stance distribution averaged over its replies with a finite stance."""
        out = np.full((len(self.questions), len(STANCES)), np.nan)
        probs = measurement["probs"]
        for k in range(len(self.questions)):
            rows = probs[[r for r, (q, _) in enumerate(self.replies) if q == k]]
            rows = rows[np.isfinite(rows).all(axis=1)]
            if len(rows):
                out[k] = rows.mean(axis=0)
        return out

    def cost(self) -> dict:
        """Measured seconds per unit of work (wall clock, this machine), from the stored steps."""
        return {f"{k}_seconds" + ("" if k == "train_step" else "_per_reply"): as_float(np.mean(v)) if v else None
                for k, v in self.seconds.items()}


def measure_point(job: dict) -> dict:
    """Sampled replies of the base model or one checkpoint on every topic, and their stance log-probs (a build step)."""
    from vgbench.toolkit import TransformersBackend, get_backend, load_trained

    from .stance import make_stance_judge

    context, batch = job["context"], job["generate_batch_size"]
    if job["checkpoint"] is None:
        backend = get_backend(job["model_path"], context.device, batch)
    else:
        backend = TransformersBackend(*load_trained(job["model_path"], job["checkpoint"], job["lora"], context.device), batch)
    started = time.perf_counter()
    replies = backend.generate(job["chats"], max_new_tokens=job["max_new_tokens"], temperature=job["temperature"],
                               seed=job["seed"], progress=job["progress"])
    generated = time.perf_counter()
    judge = make_stance_judge(job["judge"], context, job["judge_batch_size"])
    logp = judge.stance_logprobs([{**item, "reply": r} for item, r in zip(job["items"], replies)], progress=job["progress"])
    return {"replies": replies, "logprobs": [[as_float(x) for x in row] for row in logp],
            "seconds": {"generate": round(generated - started, 3), "judge": round(time.perf_counter() - generated, 3)}}


def _records(task: str, value_set: ValueSet, opts: dict) -> tuple[list[str], list[dict], dict[str, list[dict]]]:
    """Wanted topic ids, their first ``n_questions`` eval questions, and their train pairs (``limit_pairs``)."""
    wanted = selected_values(value_set, opts["values"])
    subset = value_set.subset(wanted)
    questions = [q for q in load_records("topics", value_set.name, value_ids=wanted, record_kind="question", split="eval")
                 if q.get("question")]
    require_values("topics", subset, questions, f"task {task} (eval questions)")
    pairs = [p for p in load_records("topics", value_set.name, value_ids=wanted, record_kind="pair", split="train")
             if p.get("prompt") and p.get("support") and p.get("oppose")]
    require_values("topics", subset, pairs, f"task {task} (train pairs with prompt, support and oppose)")
    n_q, n_p = int(opts["n_questions"]), int(opts["limit_pairs"])
    questions = [q for j in wanted for q in [q for q in questions if q["value"] == j][: n_q or None]]
    by_topic = {j: [p for p in pairs if p["value"] == j][: n_p or None] for j in wanted}
    return wanted, questions, by_topic


@hookimpl
def register_tasks(register):
    """Register ``drift_prediction``."""
    register(DriftPrediction)
