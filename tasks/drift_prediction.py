"""``drift_prediction`` (after the Value Drifts paper): how DPO toward one topic's "support" stance moves
the model's stances on every topic, traced over training.

For each topic i, trl's DPOTrainer trains the subject model (LoRA through peft unless ``lora=false``) on
i's ``train`` preference pairs: prompt = the pair's prompt as a one-turn chat, chosen = ``support``,
rejected = ``oppose``. The trainable weights are saved every ``checkpoint_every`` optimizer steps and
after the last step. At every checkpoint, and at step 0 (the untrained model, measured once for all
runs), the model answers each topic j's first ``n_questions`` eval questions ``samples`` times
(temperature ``temperature``, ``max_new_tokens``, seeded). A stance judge (the untrained subject model,
``vgbench.models.stance``) reads each reply with a classification prompt stating what "support" means
for topic j (the value set's description) and gives the log-probabilities of the labels support /
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
- A run whose loss or weights become non-finite stops; its row is NaN (``extra["diverged"]``). A topic at
  a step where the judge gave no finite stance for over half the replies is NaN (``extra["unusable"]``).

Defaults, sized by cost for vprism11 on the embedded model (about 1 hour on 2 free CPU cores; measured
per-unit costs in the README): one epoch over each topic's 24 pairs in batches of 2 = 12 steps (learning
rate 2e-4 with LoRA, beta 0.1, as ``dpo_generalization``), ``checkpoint_every=4`` (steps 0, 4, 8, 12:
four points per trajectory), ``n_questions=5`` (the fewest that give a t-interval with 4 degrees of
freedom and halves of 2 and 3), ``samples=2``, ``max_new_tokens=40``, temperature 0.7. That is
1 + 11 × 3 = 34 measurements of 11 × 5 × 2 = 110 replies, each generated and judged (~1.35 s of one core
per reply), plus 132 training steps (~6 s each).
"""

from __future__ import annotations

import math
import shutil
import time

import numpy as np

from vgbench import GroundTruth, RunContext, Task, ValueSet, hookimpl
from vgbench.data.records import data_fingerprint, load_records, require_values
from vgbench.fingerprint import fingerprint
from vgbench.provenance import provenance
from vgbench.scoring import SPLIT_HALF
from vgbench.steps import StepCache
from vgbench.task_helpers import selected_values, split_half_indices, typed_options
from vgbench.training.dpo import TRAINING_OPTIONS

STANCES = ("support", "neutral", "oppose")


def t_interval(values) -> tuple[float, float]:
    """95% t-interval of the mean of the finite ``values`` (the mean itself when fewer than 2 or no spread)."""
    from scipy import stats

    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan
    mean, sem = float(x.mean()), float(stats.sem(x)) if x.size > 1 else 0.0
    if sem == 0.0:
        return mean, mean
    low, high = stats.t.interval(0.95, x.size - 1, loc=mean, scale=sem)
    return float(low), float(high)


def drift_time(steps, per_question: list) -> float:
    """η: (first step inside the 95% CI of the extremum) / last step; ``per_question[k]`` = values at ``steps[k]``."""
    means = np.array([_nanmean(q) for q in per_question])
    if not np.isfinite(means).all() or steps[-1] <= 0:
        return math.nan
    extremum = int(np.argmax(np.abs(means - means[0])))
    low, high = t_interval(per_question[extremum])
    first = next(k for k, m in enumerate(means) if low <= m <= high or k == extremum)
    return float(steps[first]) / float(steps[-1])


class DriftPrediction(Task):
    """DPO toward each topic's support stance, with stances on every topic traced over checkpoints."""

    name = "drift_prediction"
    description = "Drift of the support stance on topic j over DPO training toward topic i's support stance."
    version = "1"
    cell_meaning = "change in P(support) on topic j from step 0 to the end of DPO toward topic i's support stance"
    default_options = {**TRAINING_OPTIONS, "values": "", "limit_pairs": 0, "checkpoint_every": 4, "n_questions": 5,
                       "samples": 2, "max_new_tokens": 40, "temperature": 0.7, "n_splits": 4, "judge": "subject",
                       "generate_batch_size": 16, "judge_batch_size": 8}

    def build(self, value_set: ValueSet, context: RunContext) -> GroundTruth:
        """Train one run per topic, measure every checkpoint on all topics; every run and measurement is a step."""
        from vgbench.models.stance import make_stance_judge
        from vgbench.training.checkpoints import checkpoint_steps
        from vgbench.training.dpo import training_settings

        opts = typed_options(self.default_options, context.options, {"batch_size": 1, "lora_r": 1, "max_length": 1, "checkpoint_every": 1, "samples": 2, "max_new_tokens": 1,
               "n_splits": 1, "generate_batch_size": 1, "judge_batch_size": 1})
        topics, questions, pairs = _records(self.name, value_set, opts)
        model = context.subject_model()
        settings = training_settings(**{k: opts[k] for k in TRAINING_OPTIONS}, seed=context.seed, device=context.device)
        judge = make_stance_judge(str(opts["judge"]), context, int(opts["judge_batch_size"]))
        run = _Runs(self, context, model, settings, opts, judge, value_set, topics, questions)
        n_steps = {t: run.total_steps(len(pairs[t])) for t in topics}
        n_measurements = 1 + sum(len(checkpoint_steps(n, int(opts["checkpoint_every"]))) for n in n_steps.values())
        run.advance = context.tracker(sum(n_steps.values()) + 2 * n_measurements * len(run.replies),
                                      f"{self.name} on {value_set.name}")

        base = run.measure(None, 0)
        rows, training = {}, {}
        for topic in topics:
            key, result = run.train(topic, pairs[topic])
            training[topic] = result
            if result["status"] == "ok":
                rows[topic] = [base] + [run.measure(key, s) for s in result["checkpoints"]]
        groups = {j: [k for k, q in enumerate(questions) if q["value"] == j] for j in topics}
        summary = _summarise(topics, groups, {i: [(m["step"], run.per_question(m), m["unusable"]) for m in ms]
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
                   "drift_time": summary["drift_time"],
                   "base_stance": {j: dict(zip(STANCES, map(_float, _nanmean(base_q[groups[j]])))) for j in topics},
                   "training": training, "diverged": {i: t["reason"] for i, t in training.items() if t["status"] != "ok"},
                   "unusable": summary["unusable"], "base_unusable": base["unusable"], "cost": run.cost(),
                   "steps": run.counts},
        )


def _summarise(topics: list[str], groups: dict[str, list[int]], runs: dict[str, list]) -> dict:
    """Matrix function, trajectories, stance distributions, drift times and unusable cells of the finished runs.

    ``runs[i]``: per measured step of run i, ``(step, per-question stances [n_questions, 3], unusable topics)``.
    """
    unusable: dict[str, dict[str, str]] = {}
    for i, ms in runs.items():
        for step, _, bad in ms:
            for j, reason in bad.items():
                unusable.setdefault(i, {}).setdefault(j, f"at step {step}: {reason}")

    def matrix(idx) -> np.ndarray:
        keep = set(idx)
        out = np.full((len(topics), len(topics)), np.nan)
        for a, i in enumerate(topics):
            for b, j in enumerate(topics):
                if i in runs and j not in unusable.get(i, {}):
                    sel = [k for k in groups[j] if k in keep]
                    out[a, b] = _nanmean(runs[i][-1][1][sel, 0]) - _nanmean(runs[i][0][1][sel, 0])
        return out

    trajectories, stance, times = [], [], {s: {} for s in STANCES}
    for i, ms in runs.items():
        steps = [step for step, _, _ in ms]
        for j in topics:
            per_step = [q[groups[j]] for _, q, _ in ms]  # [n_questions_j, 3] per step
            bad = j in unusable.get(i, {})
            ci = [t_interval(q[:, 0]) if not bad else (None, None) for q in per_step]
            trajectories.append({"trained_on": i, "measured": j, "steps": steps,
                                 "mean": [None if bad else _float(_nanmean(q[:, 0])) for q in per_step],
                                 "ci_low": [_float(c[0]) for c in ci], "ci_high": [_float(c[1]) for c in ci]})
            stance.append({"trained_on": i, "measured": j, "steps": steps,
                           **{s: [None if bad else _float(_nanmean(q[:, k])) for q in per_step] for k, s in enumerate(STANCES)}})
            for k, s in enumerate(STANCES):
                times[s].setdefault(i, {})[j] = None if bad else _float(drift_time(steps, [q[:, k] for q in per_step]))
    return {"matrix": matrix, "trajectories": trajectories, "stance": stance, "drift_time": times, "unusable": unusable}


def _nanmean(x, axis=0):
    """Mean over the finite entries (NaN, without a warning, where there are none)."""
    x = np.asarray(x, float)
    finite = np.isfinite(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite, x, 0.0).sum(axis=axis) / finite.sum(axis=axis)


class _Runs:
    """Runs (or reads back) the cached training runs and stance measurements of one build."""

    def __init__(self, task, context, model, settings, opts, judge, value_set, topics, questions):
        self.task, self.context, self.model, self.settings, self.opts = task, context, model, settings, opts
        self.judge, self.value_set, self.topics, self.questions = judge, value_set, topics, questions
        self.data_hash = data_fingerprint("topics", value_set.name)
        self.root = context.cache_dir / "tasks" / task.name
        self.steps = StepCache(self.root)
        self.counts = {"trained": 0, "measured": 0, "reused": 0}
        self.advance = lambda n: None
        self.replies = [(k, s) for k in range(len(questions)) for s in range(int(opts["samples"]))]
        self.seconds: dict[str, list[float]] = {"train_step": [], "generate": [], "judge": []}

    def total_steps(self, n_pairs: int) -> int:
        """Optimizer steps of one training run (as the Trainer counts them)."""
        if self.settings["max_steps"] > 0:
            return self.settings["max_steps"]
        return math.ceil(self.settings["epochs"] * math.ceil(n_pairs / self.settings["batch_size"]))

    def _base_key(self) -> dict:
        return {"task": self.task.name, "version": self.task.version, "model": self.model.weights_hash,
                "data": self.data_hash}

    def train(self, topic: str, pairs: list[dict]) -> tuple[dict, dict]:
        """The cached training run of one topic, with a checkpoint folder per saved step."""
        from vgbench.training.checkpoints import checkpoint_dir

        key = {**self._base_key(), "topic": topic, "pairs": [p["id"] for p in pairs], "settings": self.settings,
               "checkpoint_every": int(self.opts["checkpoint_every"])}
        folder = self.root / "trained" / fingerprint(key, 24)
        stored = self.steps.load(key)
        if stored is not None:
            needed = [s for s in stored["checkpoints"]
                      if not checkpoint_dir(folder, s).is_dir() and not self.steps.has(self._measure_key(key, s))]
            if not needed:
                self.counts["reused"] += 1
                self.advance(self.total_steps(len(pairs)))
                self.seconds["train_step"] += stored["step_seconds"]
                return key, {**stored, "folder": str(folder)}
            self.steps.path(key).unlink()
        result = self.steps.run(key, lambda: self._train(folder, pairs))
        self.counts["trained"] += 1
        self.seconds["train_step"] += result["step_seconds"]
        return key, {**result, "folder": str(folder)}

    def _train(self, folder, pairs: list[dict]) -> dict:
        import torch

        from vgbench.models.backend import chat
        from vgbench.training.checkpoints import checkpoint_callback
        from vgbench.training.dpo import make_trainer

        shutil.rmtree(folder, ignore_errors=True)
        examples = [{"messages": chat(p["prompt"]), "chosen": p["support"], "rejected": p["oppose"]} for p in pairs]
        trainer, step_log = make_trainer(self.model.path, examples, self.settings, folder / "trainer", self.advance)
        saver = checkpoint_callback(folder, int(self.opts["checkpoint_every"]))
        trainer.add_callback(saver)
        trainer.train()
        reason = step_log.reason or saver.reason
        if reason is None and not all(torch.isfinite(p).all() for p in trainer.model.parameters() if p.requires_grad):
            reason = f"trainable weights became non-finite by step {trainer.state.global_step}"
        self.advance(max(self.total_steps(len(pairs)) - trainer.state.global_step, 0))  # a diverged run stops early
        shutil.rmtree(folder / "trainer", ignore_errors=True)
        if reason is not None:
            shutil.rmtree(folder, ignore_errors=True)
        return {"status": "ok" if reason is None else "diverged", "reason": reason, "n_pairs": len(pairs),
                "steps": trainer.state.global_step, "checkpoints": saver.saved if reason is None else [],
                "loss": [_float(r["loss"]) for r in step_log.rows],
                "reward_margin": [_float(r["reward_margin"]) for r in step_log.rows],
                "step_seconds": step_log.step_seconds}

    def _measure_key(self, train_key: dict | None, step: int) -> dict:
        o = self.opts
        return {**self._base_key(), "trained": fingerprint(train_key, 24) if train_key else None, "step": step,
                "questions": [q["id"] for q in self.questions], "samples": int(o["samples"]), "seed": self.context.seed,
                "max_new_tokens": int(o["max_new_tokens"]), "temperature": float(o["temperature"]),
                "judge": self.judge.identity}

    def measure(self, train_key: dict | None, step: int) -> dict:
        """Replies and stance log-probs of the base model (``train_key`` None) or a checkpoint, on every topic."""
        key = self._measure_key(train_key, step)
        stored = self.steps.load(key)
        if stored is None:
            stored = self.steps.store(key, self._measure(train_key, step))
            self.counts["measured"] += 1
        else:
            self.counts["reused"] += 1
            self.advance(2 * len(self.replies))
        self.seconds["generate"].append(stored["seconds"]["generate"] / len(self.replies))
        self.seconds["judge"].append(stored["seconds"]["judge"] / len(self.replies))
        return self._with_stances(stored, step)

    def _measure(self, train_key: dict | None, step: int) -> dict:
        from vgbench.models.backend import TransformersBackend, chat, get_backend
        from vgbench.training.checkpoints import checkpoint_dir
        from vgbench.training.dpo import load_trained

        batch, device = int(self.opts["generate_batch_size"]), self.context.device
        if train_key is None:
            backend = get_backend(self.model.path, device, batch)
        else:
            folder = checkpoint_dir(self.root / "trained" / fingerprint(train_key, 24), step)
            backend = TransformersBackend(*load_trained(self.model.path, str(folder), self.settings["lora"], device), batch)
        started = time.perf_counter()
        replies = backend.generate([chat(self.questions[k]["question"]) for k, _ in self.replies],
                                   max_new_tokens=int(self.opts["max_new_tokens"]),
                                   temperature=float(self.opts["temperature"]), seed=self.context.seed,
                                   progress=self.advance)
        generated = time.perf_counter()
        items = [{"topic": self.value_set.value(self.questions[k]["value"]), "question": self.questions[k]["question"],
                  "reply": r} for (k, _), r in zip(self.replies, replies)]
        logp = self.judge.stance_logprobs(items, progress=self.advance)
        return {"replies": replies, "logprobs": [[_float(x) for x in row] for row in logp],
                "seconds": {"generate": round(generated - started, 3), "judge": round(time.perf_counter() - generated, 3)}}

    def _with_stances(self, stored: dict, step: int) -> dict:
        """The stored measurement with per-reply stance probabilities and the topics the judge gave no stance on."""
        from vgbench.models.stance import stance_probabilities

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
        return {f"{k}_seconds" + ("" if k == "train_step" else "_per_reply"): _float(np.mean(v)) if v else None
                for k, v in self.seconds.items()}


def _float(x) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


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
