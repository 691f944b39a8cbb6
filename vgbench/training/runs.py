"""DPO training runs as cached build steps, shared by the tasks that train the subject model.

A run is one step of a task's step runner: its key is the task's, its input the preference pairs
(``{"messages", "chosen", "rejected"}``), optionally held-out pairs for the stopping rule and settings of its
own (a run's own seed). The weights go to ``<steps folder>/trained/<key fingerprint>``
(with ``checkpoint_every``: one checkpoint folder per saved step inside it). A run whose loss or weights
become non-finite stops early, saves nothing and is stored with status ``diverged``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

from ..fingerprint import fingerprint
from .dpo import optimizer_steps
from ..steps import Step, StepRunner


class TrainedRun(NamedTuple):
    """A finished run: its step key, its stored result, and whether it trained now (not read back)."""

    key: dict
    result: dict
    ran: bool


class RunSpec(NamedTuple):
    """What one run trains on: its step key, its pairs, the pairs held out for the stopping rule (none: no rule),
    and its settings when they differ from the build's (e.g. a replicate run's own seed)."""

    key: dict
    pairs: list[dict]
    held_out: Sequence[dict] = ()
    settings: dict | None = None


class DPORuns:
    """The cached DPO runs of one build: ``train`` runs the missing ones together on the context's executor."""

    def __init__(self, runner: StepRunner, model_path: str, settings: dict, checkpoint_every: int = 0):
        self.runner, self.model_path, self.settings = runner, str(model_path), settings
        self.checkpoint_every = int(checkpoint_every)

    def folder(self, key: dict) -> Path:
        """Where the run with this key saves its weights (or its checkpoint folders)."""
        return self.runner.root / "trained" / fingerprint(key, 24)

    def weights(self, key: dict, step: int | None = None) -> Path:
        """The trained weights of a run: the final ones, or (``checkpoint_every`` runs) those saved at ``step``."""
        from .checkpoints import checkpoint_dir

        return self.folder(key) if step is None else checkpoint_dir(self.folder(key), step)

    def units(self, n_pairs: int) -> int:
        """Optimizer steps of one run on ``n_pairs`` pairs (its progress units; at most, with a stopping rule)."""
        return optimizer_steps(self.settings, n_pairs)

    def train(self, runs: dict, *, label: str,
              evaluation_key: Callable[[dict, int | None], dict] | None = None) -> dict:
        """Every named run (a :class:`RunSpec`, or a tuple ``(key, pairs[, held_out[, settings]])``), trained or read
        back: ``{name: TrainedRun}``.

        ``evaluation_key(run key, checkpoint step or None)`` names the step that reads a run's weights: a
        stored run whose weights are gone is trained again only while that step is not stored yet.
        """
        specs = [RunSpec(*run) for run in runs.values()]
        steps = [Step(spec.key, {"model_path": self.model_path, "examples": spec.pairs, "held_out": list(spec.held_out),
                                 "settings": spec.settings or self.settings, "folder": str(self.folder(spec.key)),
                                 "checkpoint_every": self.checkpoint_every},
                      optimizer_steps(spec.settings or self.settings, len(spec.pairs)))
                 for spec in specs]

        def stale(key: dict, result: dict) -> bool:
            return evaluation_key is not None and any(
                not self.weights(key, step).is_dir() and not self.runner.has(evaluation_key(key, step))
                for step in self.measured_at(result))

        results = self.runner.run(train_with_checkpoints if self.checkpoint_every else train_final, steps,
                                  label=label, stale=stale)
        return {name: TrainedRun(step.key, result, i in results.ran)
                for i, (name, step, result) in enumerate(zip(runs, steps, results))}

    def measured_at(self, result: dict) -> list[int | None]:
        """The weights a finished run has to be evaluated with: its checkpoints, or its final weights (None)."""
        if self.checkpoint_every:
            return list(result["checkpoints"])
        return [None] if result["status"] == "ok" else []


def train_final(job: dict) -> dict:
    """One DPO run that saves its final weights: ``train_dpo``'s result (a build step; runs on any executor)."""
    from . import dpo

    return dpo.train_dpo(job["model_path"], job["examples"], Path(job["folder"]), job["settings"], job["progress"],
                         held_out=job.get("held_out") or ())


def train_with_checkpoints(job: dict) -> dict:
    """One DPO run saving a checkpoint every ``checkpoint_every`` steps and after the last (a build step)."""
    from . import dpo
    from .checkpoints import checkpoint_callback

    folder = Path(job["folder"])
    shutil.rmtree(folder, ignore_errors=True)
    trainer, step_log = dpo.make_trainer(job["model_path"], job["examples"], job["settings"], folder / "trainer",
                                         job["progress"])
    saver = checkpoint_callback(folder, job["checkpoint_every"])
    trainer.add_callback(saver)
    trainer.train()
    reason = dpo.divergence(trainer, step_log.reason or saver.reason)
    shutil.rmtree(folder / "trainer", ignore_errors=True)
    if reason is not None:
        shutil.rmtree(folder, ignore_errors=True)
    return {"status": "ok" if reason is None else "diverged", "reason": reason, "n_pairs": len(job["examples"]),
            "steps": trainer.state.global_step, "checkpoints": saver.saved if reason is None else [],
            "loss": [dpo.finite_or_none(r["loss"]) for r in step_log.rows],
            "reward_margin": [dpo.finite_or_none(r["reward_margin"]) for r in step_log.rows],
            "step_seconds": step_log.step_seconds}
