"""What the two environment tasks share: which environments a build uses, which renderings fit the model's context,
and the build step that runs forced choice with every scenario rendered in one environment."""

from __future__ import annotations

import sys

from vgbench import Option
import numpy as np

from vgbench.toolkit import Environment, VgbenchError, fingerprint, split_half_indices

BASELINE = "chat"
ENVIRONMENTS_OPTION = Option(
    "environments", str, "",
    "Comma-separated environment names (or .yaml files) to evaluate in, besides chat (always in: the baseline); "
    "empty = every registered and user environment (`vgbench list environments`).")


def chosen_environments(option: str) -> list[Environment]:
    """The environments of ``-o environments`` (chat first; empty = every known one), each resolved (did-you-mean)."""
    from vgbench.toolkit import environment_names, resolve_environment

    names = [n.strip() for n in option.split(",") if n.strip()] if option.strip() else environment_names()
    envs = [resolve_environment(BASELINE)] + [resolve_environment(n) for n in dict.fromkeys(names) if n != BASELINE]
    seen: dict[str, str] = {}
    for env in envs:
        if env.name in seen:
            raise VgbenchError(f"-o environments: {env.name!r} is named twice ({seen[env.name]} and "
                               f"{env.path or 'registered'}); list each environment once")
        seen[env.name] = env.path or "registered"
    if len(envs) < 2:
        raise VgbenchError("-o environments: no environment besides chat; name at least one "
                           "(see `vgbench list environments`)")
    return envs


def environment_key(environment: Environment) -> str:
    """A short fingerprint of what an environment renders (its file's content, not its path)."""
    return fingerprint(environment.to_json(), 16)


def context_length(model_path: str) -> int:
    """The model's context length in tokens (its config's ``max_position_embeddings``)."""
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(model_path).max_position_embeddings)


def fitting_scenarios(model_path: str, environments: list[Environment],
                      scenarios: list[dict]) -> tuple[dict[str, list[dict]], dict[str, list[str]]]:
    """Per environment, the scenarios whose rendering fits the model's context, and the ids of those skipped (one
    ``warning:`` line per environment naming them)."""
    from vgbench.toolkit import rendered_length
    from transformers import AutoTokenizer

    tokenizer, limit = AutoTokenizer.from_pretrained(model_path), context_length(model_path)
    kept, skipped = {}, {}
    for env in environments:
        lengths = {s["id"]: rendered_length(tokenizer, env, s) for s in scenarios}
        kept[env.name] = [s for s in scenarios if lengths[s["id"]] <= limit]
        skipped[env.name] = [s["id"] for s in scenarios if lengths[s["id"]] > limit]
        if skipped[env.name]:
            over = ", ".join(f"{k} ({lengths[k]} tokens)" for k in skipped[env.name][:5])
            more = f" and {len(skipped[env.name]) - 5} more" if len(skipped[env.name]) > 5 else ""
            print(f"warning: environment {env.name!r}: {len(skipped[env.name])} scenario(s) render longer than the "
                  f"model's context of {limit} tokens and are skipped: {over}{more}", file=sys.stderr)
    return kept, skipped


def environment_preferences(job: dict) -> list[float]:
    """Forced-choice P(follow) of the base model (``weights`` None) or a trained one on the job's scenarios, each
    rendered in the job's environment (one build step; runs on any executor)."""
    from vgbench.toolkit import environment_forced_choice, policy_backend

    if not job["scenarios"]:  # every rendering was over the context length
        return []
    backend = policy_backend(job["model_path"], job["weights"], job.get("lora", False), job["device"],
                             job["batch_size"])
    return environment_forced_choice(backend, job["environment"], job["scenarios"],
                                     progress=job["progress"])["p_follow"].tolist()


def split_halves_by_value(cells: dict[str, list[str]], n_splits: int, seed: int) -> list[dict[str, list[int]]]:
    """``n_splits`` random halvings of every value's scenarios (``cells``: value → ids), each half as the positions it
    keeps in every value's list: half A, half B, half A, ..."""
    offsets = np.cumsum([0] + [len(ids) for ids in cells.values()])
    groups = {j: list(range(offsets[n], offsets[n + 1])) for n, j in enumerate(cells)}
    out = []
    for half_a, half_b in split_half_indices(groups, n_splits, seed):
        for half in (set(half_a), set(half_b)):
            out.append({j: [k - groups[j][0] for k in groups[j] if k in half] for j in cells})
    return out
