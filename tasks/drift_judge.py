"""``drift_prediction -o measure=judge``: sampled replies to each topic's eval questions, read by a stance judge
(for capable judges and endpoints; forced choice is the default on the embedded model)."""

from __future__ import annotations

import time

import numpy as np

from vgbench import GroundTruth, ValueSet
from vgbench.toolkit import (
    SPLIT_HALF,
    Step,
    fingerprint,
    load_records,
    provenance,
    require_values,
    split_half_indices,
)

from .drift_build import DriftBuild
from .drift_stats import STANCES, as_float, nanmean, summarise_drift


class JudgeBuild(DriftBuild):
    """``measure=judge``: sampled replies to each topic's eval questions, read by a stance judge."""

    def ground_truth(self, pairs: dict[str, list[dict]], questions: list[dict]) -> GroundTruth:
        from .stance import make_stance_judge

        topics, opts = self.topics, self.opts
        self.questions = questions
        self.judge = make_stance_judge(str(opts["judge"]), self.context, int(opts["judge_batch_size"]))
        self.replies = [(k, s) for k in range(len(questions)) for s in range(int(opts["samples"]))]
        self.seconds.update(generate_seconds_per_reply=[], judge_seconds_per_reply=[])
        trained = self.train_all(pairs)
        base, rows = self.measured_runs(trained)
        groups = {j: [k for k, q in enumerate(questions) if q["value"] == j] for j in topics}
        summary = summarise_drift(topics, {i: groups for i in rows},
                                  {i: [(m["step"], self.per_question(m), m["unusable"]) for m in ms] for i, ms in rows.items()})
        halves = split_half_indices(groups, int(opts["n_splits"]), self.context.seed)
        replicates = [summary["matrix"](h) for a, b in halves for h in (a, b)]
        base_q = self.per_question(base)
        return GroundTruth(
            task=self.task.name, task_version=self.task.version, value_set=self.value_set.name, value_ids=tuple(topics),
            matrix=summary["matrix"](range(len(questions))), replicates=tuple(replicates), replicate_kind=SPLIT_HALF,
            provenance=provenance(**self.model.provenance(), data_hash=self.data_hash, seed=self.context.seed,
                                  training=self.settings, trainer="trl DPOTrainer", measure="judge",
                                  judge=self.judge.identity, options=opts, backend="transformers",
                                  n_questions={j: len(groups[j]) for j in topics},
                                  n_pairs={i: len(pairs[i]) for i in topics}),
            extra={"trajectories": summary["trajectories"], "stance": summary["stance"],
                   "drift_time": summary["drift_time"], "cell_samples": summary["cell_samples"],
                   "base_stance": {j: dict(zip(STANCES, map(as_float, nanmean(base_q[groups[j]])))) for j in topics},
                   **self.training_extra(trained), "unusable": summary["unusable"], "base_unusable": base["unusable"],
                   "cost": self.cost(), "steps": self.counts},
        )

    def measure_key(self, train_key: dict | None, step: int) -> dict:
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
        steps = [Step(self.measure_key(key, step),
                      {**job, "checkpoint": str(self.runs.weights(key, step)) if key else None}, 2 * len(self.replies))
                 for key, step in points]
        stored = self.run_steps(measure_point, steps, "measuring")
        for m in stored:
            self.seconds["generate_seconds_per_reply"].append(m["seconds"]["generate"] / len(self.replies))
            self.seconds["judge_seconds_per_reply"].append(m["seconds"]["judge"] / len(self.replies))
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


def measure_point(job: dict) -> dict:
    """Sampled replies of the base model or one checkpoint on every topic, and their stance log-probs (a build step)."""
    from vgbench.toolkit import policy_backend

    from .stance import make_stance_judge

    context, batch = job["context"], job["generate_batch_size"]
    backend = policy_backend(job["model_path"], job["checkpoint"], job["lora"], context.device, batch)
    started = time.perf_counter()
    replies = backend.generate(job["chats"], max_new_tokens=job["max_new_tokens"], temperature=job["temperature"],
                               seed=job["seed"], progress=job["progress"])
    generated = time.perf_counter()
    judge = make_stance_judge(job["judge"], context, job["judge_batch_size"])
    logp = judge.stance_logprobs([{**item, "reply": r} for item, r in zip(job["items"], replies)], progress=job["progress"])
    return {"replies": replies, "logprobs": [[as_float(x) for x in row] for row in logp],
            "seconds": {"generate": round(generated - started, 3), "judge": round(time.perf_counter() - generated, 3)}}


def eval_questions(task: str, value_set: ValueSet, topics: list[str], n_questions: int) -> list[dict]:
    """The first ``n_questions`` eval questions of every topic (measure=judge)."""
    questions = [q for q in load_records("topics", value_set.name, value_ids=topics, record_kind="question", split="eval")
                 if q.get("question")]
    require_values("topics", value_set.subset(topics), questions, f"task {task} (eval questions)")
    return [q for j in topics for q in [q for q in questions if q["value"] == j][: n_questions or None]]
