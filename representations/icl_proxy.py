"""``icl_proxy``: value i's training pairs shown in context, and how far that moves the model on value j.

Row i's prompt for a scenario s of value j: k demonstration turns (user = one of value i's first k train-split
user messages, in file order; assistant = its ``action_follow``), then s's user message. a(i, j) is the mean
forced-choice P(follow) of j's eval scenarios under that prompt (``action_follow`` against ``action_ignore``, the
measure ``prompt_steering`` uses), a(∅, j) the same without demonstrations, and

    P(i, j) = (a(i, j) − a(∅, j)) / (1 − a(∅, j)),

the tasks' normalised shift: an in-context proxy for fine-tuning on value i's pairs (the pairs
``dpo_generalization`` trains on), measured on j, so P ≠ Pᵀ.

Scored scenarios are always the eval split, never a demonstration. For j = i this needs no extra rule: in the
shipped scenario files a value's train and eval splits are disjoint (checked on constraints9: none of the 24 train
pairs of any value shares an id or a user message with an eval scenario), so row i's demonstrations are never among
the scenarios scored in column i; :meth:`IclProxy.plan` checks this on whatever data it is given and refuses overlap.

Each row and the baseline is one cached step (``context.steps("icl_proxy")``), so a killed run resumes and
``vgbench evaluate --executor ray`` fans the rows out like a task build.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vgbench import Option, Representation, RepresentationMetadata, RunContext, ValueSet, hookimpl
from vgbench.toolkit import DataError, Step, data_fingerprint, first_per_value, load_reply_pairs, require_values


@dataclass(frozen=True)
class Plan:
    """What a run shows and scores: each value's demonstration records (value-set order) and the eval scenarios."""

    demonstrations: tuple[tuple[dict, ...], ...]
    scenarios: tuple[dict, ...]


def demonstration_turns(records) -> list[dict]:
    """User/assistant turns, one pair per record: its user message, then its ``action_follow``."""
    return [turn for r in records for turn in ({"role": "user", "content": str(r["user_message"])},
                                               {"role": "assistant", "content": str(r["action_follow"])})]


def icl_prompt(demonstrations, scenario: dict) -> list[dict]:
    """The chat a scenario is scored after: the demonstration turns, then the scenario's user message."""
    from vgbench.toolkit import chat

    return chat(str(scenario["user_message"]), turns=demonstration_turns(demonstrations))


def row_preferences(job: dict) -> dict:
    """P(follow) of every scenario after one row's demonstrations, and the tokens run (one step; any executor)."""
    from vgbench.toolkit import forced_choice, get_backend

    backend = get_backend(job["model_path"], job["device"], job["batch_size"])
    turns = demonstration_turns(job["demonstrations"])
    # the demonstrations open every prompt of the row: the backend runs them once and reuses their keys and values
    p = forced_choice(backend, job["scenarios"], turns=turns, progress=job["progress"])["p_follow"]
    return {"p_follow": p.tolist(), "tokens": backend.tokens_run}


class IclProxy(Representation):
    """Normalised P(follow) shift on value j's eval scenarios after value i's first k training pairs in context."""

    metadata = RepresentationMetadata(
        name="icl_proxy",
        version="2",
        description="In-context proxy for fine-tuning: value i's first k train pairs as demonstrations, then the "
                    "normalised shift of forced-choice P(follow) on value j's eval scenarios against none.",
        output="matrix",
        uses_subject_model=True,
        reads_training_data=True,
        options=(
            Option("k", int, 4, "Demonstrations per row: value i's first k train pairs (user message, then "
                   "action_follow), in file order.", minimum=1, maximum=1000),
            Option("limit_eval", int, 0, "Eval scenarios per value (the first N); 0 = all.",
                   minimum=0, maximum=100000),
            Option("batch_size", int, 8, "Prompts per forward pass.", minimum=1, maximum=4096),
        ),
    )

    def plan(self, value_set: ValueSet) -> Plan:
        """Each value's first k train pairs and the eval scenarios to score; bad data is one error."""
        k, limit = self.options["k"], self.options["limit_eval"]
        train = load_reply_pairs(value_set.name, value_ids=value_set.ids, split="train")
        require_values("scenarios", value_set, train, "icl_proxy (train split, with action_follow and action_ignore)")
        evaluation = load_reply_pairs(value_set.name, value_ids=value_set.ids, split="eval")
        require_values("scenarios", value_set, evaluation, "icl_proxy (eval split, with action_follow and "
                                                           "action_ignore)")
        demonstrations = []
        for v in value_set.ids:
            mine = [r for r in train if r["value"] == v]
            if len(mine) < k:
                raise DataError(f"-o k={k}: value {v!r} of {value_set.name!r} has only {len(mine)} train pairs "
                                f"with both replies; pass -o k={len(mine)} or less, or add train pairs to its "
                                f"scenarios file ({v}.jsonl)")
            demonstrations.append(tuple(mine[:k]))
        scenarios = tuple(first_per_value(evaluation, limit) if limit else evaluation)
        _refuse_overlap(demonstrations, scenarios)
        return Plan(tuple(demonstrations), scenarios)

    def matrix(self, value_set: ValueSet, context: RunContext):
        """P(i, j) from one cached step per row and one for the baseline, with the plan and the cost in ``extra``."""
        from vgbench.toolkit import normalised_shift

        plan = self.plan(value_set)  # bad data fails before any model is loaded
        model = context.subject_model()
        ids = [s["id"] for s in plan.scenarios]
        base_key = {"representation": self.name, "version": self.version, "model": model.weights_hash,
                    "data": data_fingerprint("scenarios", value_set.name), "scenarios": ids,
                    "prompt": "k user/action_follow turns, then the scenario's user message"}
        job = {"model_path": model.path, "device": context.device, "batch_size": self.options["batch_size"],
               "scenarios": list(plan.scenarios)}
        rows = ((),) + plan.demonstrations
        steps = [Step({**base_key, "demonstrations": [r["id"] for r in demos]}, {**job, "demonstrations": list(demos)},
                      2 * len(ids)) for demos in rows]
        results = context.steps(self.name).run(row_preferences, steps,
                                               label=f"{self.name} on {value_set.name} (k={self.options['k']})")
        p = np.array([r["p_follow"] for r in results], dtype=float)  # [1 + n_values, n_scenarios]
        columns = [[c for c, s in enumerate(plan.scenarios) if s["value"] == v] for v in value_set.ids]
        rates = np.stack([p[:, c].mean(axis=1) for c in columns], axis=1)  # [1 + n_values, n_values]
        extra = {"k": self.options["k"],
                 "demonstrations": {v: [r["id"] for r in d] for v, d in zip(value_set.ids, plan.demonstrations)},
                 "base_rate": dict(zip(value_set.ids, rates[0].tolist())),
                 "n_eval_scenarios": {v: len(c) for v, c in zip(value_set.ids, columns)},
                 "cost": {"steps": len(steps), "sequences": len(steps) * len(ids),
                          "tokens": int(sum(r["tokens"] for r in results))}}
        return normalised_shift(rates[1:], rates[0]), extra

    def training_data(self, value_set: ValueSet, context: RunContext) -> dict:
        """The train-split scenarios it read: value set, split, and the hash of the scenario files."""
        from vgbench.toolkit import train_split_read

        return train_split_read(value_set.name)


def _refuse_overlap(demonstrations, scenarios) -> None:
    """One error when a scored scenario is also shown as a demonstration (same id or same user message)."""
    shown = {r["id"] for demos in demonstrations for r in demos}
    messages = {str(r["user_message"]) for demos in demonstrations for r in demos}
    for s in scenarios:
        if s["id"] in shown or str(s["user_message"]) in messages:
            raise DataError(f"scenario {s['id']!r} of value {s['value']!r} is both in the eval split and among the "
                            "demonstrations (a train pair with the same id or user message); give each scenario one "
                            "split in its scenarios file")


@hookimpl
def register_representations(register):
    """Register ``icl_proxy``."""
    register(IclProxy)
