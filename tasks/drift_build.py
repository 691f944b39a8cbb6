"""What both of ``drift_prediction``'s measures share: the cached DPO runs of one build and their measured checkpoints."""

from __future__ import annotations

import numpy as np

from vgbench.toolkit import DPORuns, data_fingerprint

from .drift_stats import as_float


class DriftBuild:
    """What both measures share: the cached training runs of one build, checkpoint by checkpoint."""

    def __init__(self, task, context, model, settings, value_set, topics):
        self.task, self.context, self.model, self.settings = task, context, model, settings
        self.opts, self.value_set, self.topics = task.options, value_set, topics
        self.data_hash = data_fingerprint("topics", value_set.name)
        self.label = f"{task.name} on {value_set.name}"
        self.steps = context.steps(task.name)
        self.runs = DPORuns(self.steps, model.path, settings, checkpoint_every=int(self.opts["checkpoint_every"]))
        self.counts = {"trained": 0, "measured": 0, "reused": 0}
        self.seconds: dict[str, list[float]] = {"train_step_seconds": []}

    def _base_key(self) -> dict:
        return {"task": self.task.name, "version": self.task.version, "model": self.model.weights_hash,
                "data": self.data_hash}

    def _train_key(self, topic: str, pairs: list[dict]) -> dict:
        return {**self._base_key(), "topic": topic, "pairs": [p["id"] for p in pairs], "settings": self.settings,
                "checkpoint_every": int(self.opts["checkpoint_every"])}

    def measure_key(self, train_key: dict | None, step: int) -> dict:
        """The key of the step that measures the base model (None, step 0) or a run's checkpoint."""
        raise NotImplementedError

    def train_all(self, pairs: dict[str, list[dict]]) -> dict:
        """Every topic's training run (a checkpoint folder per saved step), trained or read back.

        A finished run is trained again only when a checkpoint it still has to be measured at is gone.
        """
        from vgbench.toolkit import chat

        trained = self.runs.train(
            {t: (self._train_key(t, ps), [{"messages": chat(p["prompt"]), "chosen": p["support"],
                                           "rejected": p["oppose"]} for p in ps]) for t, ps in pairs.items()},
            label=f"{self.label}: training", evaluation_key=self.measure_key)
        for run in trained.values():
            self.counts["trained" if run.ran else "reused"] += 1
            self.seconds["train_step_seconds"] += run.result["step_seconds"]
        return trained

    def measure_all(self, points: list[tuple[dict | None, int]]) -> list[dict]:
        """One measurement per (run key or None for the base model, step), in order; every one a cached step."""
        raise NotImplementedError

    def measured_runs(self, trained: dict) -> tuple[dict, dict]:
        """The base model and every checkpoint of the finished runs, measured: (base measurement,
        {topic: [measurement per step, base first]})."""
        ok = [t for t in self.topics if trained[t].result["status"] == "ok"]
        points = [(None, 0)] + [(trained[t].key, s) for t in ok for s in trained[t].result["checkpoints"]]
        measured = iter(self.measure_all(points))
        base = next(measured)
        return base, {t: [base] + [next(measured) for _ in trained[t].result["checkpoints"]] for t in ok}

    def run_steps(self, job, steps: list, label: str):
        """Run measurement steps, counting the reused and the new ones."""
        stored = self.steps.run(job, steps, label=f"{self.label}: {label}")
        self.counts["reused"] += stored.reused
        self.counts["measured"] += len(stored.ran)
        return stored

    def training_extra(self, trained: dict) -> dict:
        training = {t: {**r.result, "folder": str(self.runs.folder(r.key))} for t, r in trained.items()}
        return {"training": training, "diverged": {i: t["reason"] for i, t in training.items() if t["status"] != "ok"}}

    def cost(self) -> dict:
        """Measured seconds per unit of work (wall clock, this machine), from the stored steps."""
        return {k: as_float(np.mean(v)) if v else None for k, v in self.seconds.items()}
