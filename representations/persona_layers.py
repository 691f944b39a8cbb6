"""Layer selection for persona vectors by a dose–response curve: steer at each candidate layer with
``alpha × (that layer's mean activation norm) × unit(v)`` for a grid of alphas, measure the effect on the
preference for the value and the damage to the model's own replies, pick the strongest coherent setting.
Every (layer, alpha) cell is a cached step."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from vgbench import ValueSet
from vgbench.toolkit import StepCache, VgbenchError, data_fingerprint, fingerprint, load_reply_pairs

#: A comma-separated list of positive numbers (``-o alphas=0.5,1,2``).
ALPHAS_PATTERN = r"\s*\d+(\.\d+)?\s*(,\s*\d+(\.\d+)?\s*)*"
NO_COHERENT = "no coherent setting"


def parse_alphas(text: str) -> list[float]:
    """The alphas of ``-o alphas``, sorted and de-duplicated; zero or a bad list is one error."""
    try:
        alphas = sorted({float(a) for a in str(text).split(",")})
    except ValueError:
        alphas = []
    if not alphas or alphas[0] <= 0 or alphas[-1] > 100:
        raise VgbenchError(f"-o alphas={text}: must be a comma-separated list of numbers above 0 and at most 100 "
                           "(fractions of the layer's mean activation norm), e.g. alphas=0.0625,0.125,0.25,0.5,1")
    return alphas


def candidate_layers(n_layers: int, k: int) -> list[int]:
    """``k`` decoder layers spread over the middle of the network (hidden-states indexing)."""
    return sorted({int(round(f * n_layers)) for f in np.linspace(0.2, 0.8, k)} - {0})


def choose_setting(rows: list[dict], max_coherence_drop: float) -> tuple[dict, str]:
    """The row with the largest effect among the coherent ones (``coherence >= -max_coherence_drop``), and "";
    when none is coherent, the best layer at the smallest alpha, and :data:`NO_COHERENT`."""
    coherent = [r for r in rows if r["coherence"] >= -max_coherence_drop]
    if coherent:
        return max(coherent, key=lambda r: r["effect"]), ""
    smallest = min(r["alpha"] for r in rows)
    return max((r for r in rows if r["alpha"] == smallest), key=lambda r: r["effect"]), NO_COHERENT


def heldout_scenarios(value_set: ValueSet, n_heldout: int) -> dict[str, list[dict]]:
    """Each value's first ``n_heldout`` eval scenarios with both replies; a value without any is one error."""
    scenarios = load_reply_pairs(value_set.name, split="eval")
    by_value = {v: [r for r in scenarios if r["value"] == v][:n_heldout] for v in value_set.ids}
    missing = [v for v, rs in by_value.items() if not rs]
    if missing:
        raise VgbenchError(f"layer selection needs eval scenarios with both replies; {', '.join(missing)} have none. "
                           "Add them or pass -o layer=N")
    return by_value


def select_layer(backend, model_hash: str, value_set: ValueSet, differences: np.ndarray, s, data_hash: str,
                 cache_dir: Path, advance: Callable[[int], None]) -> tuple[dict, list[dict], str]:
    """The chosen (layer, alpha) row, the whole grid of rows and a note (:data:`NO_COHERENT` or "").

    Row = {layer, alpha, coef, effect, coherence, coherent}: ``coef`` = alpha × the layer's mean activation
    norm over the held-out prompts' tokens, the length of the steering vector added; ``effect`` = mean over
    values of P(follow | +coef·unit(v)) − P(follow | −coef·unit(v)) on each value's first ``n_heldout`` eval
    scenarios; ``coherence`` = mean per-token log-prob of the model's own unsteered greedy reply to those
    prompts under +steering minus unsteered (0 = unharmed, negative = less coherent).
    """
    from vgbench.toolkit import chat, mean_token_norms, steered_preference, steered_reply_logprobs

    by_value = heldout_scenarios(value_set, s.n_heldout)
    alphas = parse_alphas(s.alphas)
    layers = candidate_layers(differences.shape[1] - 1, s.n_candidate_layers)
    prompts = {v: [chat(r["user_message"]) for r in rs] for v, rs in by_value.items()}
    every_prompt = [p for v in value_set.ids for p in prompts[v]]
    units = differences / np.maximum(np.linalg.norm(differences, axis=2, keepdims=True), 1e-12)
    base = {"model": model_hash, "data": data_hash, "scenarios": data_fingerprint("scenarios", value_set.name),
            "values": list(value_set.ids), "n_heldout": s.n_heldout}
    steps = StepCache(cache_dir / "layer_selection" / model_hash[:16])
    norms = steps.run({**base, "step": "mean activation norms"},
                      lambda: mean_token_norms(backend, every_prompt).tolist())
    reply_key = {**base, "step": "unsteered greedy replies", "max_new_tokens": s.max_new_tokens}
    replies = _lazy(lambda: steps.run(reply_key, lambda: _replies_by_value(backend, prompts, s.max_new_tokens)))
    unsteered = _lazy(lambda: steps.run({**reply_key, "step": "unsteered reply log-probs"}, lambda: {
        v: _mean_logprob(steered_reply_logprobs(backend, prompts[v], replies()[v], 1, units[0, 1], 0.0))
        for v in value_set.ids}))

    def cell(layer: int, alpha: float) -> dict:
        coef = alpha * norms[layer]
        effects, drops = [], []
        for i, v in enumerate(value_set.ids):
            vector = units[i, layer]
            plus = steered_preference(backend, by_value[v], layer, vector, coef)
            minus = steered_preference(backend, by_value[v], layer, vector, -coef)
            effects.append(float(np.mean(plus - minus)))
            steered = steered_reply_logprobs(backend, prompts[v], replies()[v], layer, vector, coef)
            drops.append(_mean_logprob(steered) - unsteered()[v])
            advance(5 * len(by_value[v]))
        return {"effect": float(np.mean(effects)), "coherence": float(np.mean(drops))}

    differences_hash = fingerprint(np.round(differences, 5).tolist())

    def measured(layer: int, alpha: float) -> dict:
        key = {**base, "step": "dose", "differences": differences_hash, "layer": layer, "alpha": alpha,
               "max_new_tokens": s.max_new_tokens}
        return {"coef": alpha * norms[layer], **steps.run(key, lambda: cell(layer, alpha))}

    def skipped(n_cells: int) -> None:
        advance(5 * sum(len(rs) for rs in by_value.values()) * n_cells)

    rows = sweep(layers, alphas, measured, s.max_coherence_drop, skipped)
    chosen, note = choose_setting(rows, s.max_coherence_drop)
    return chosen, rows, note


def sweep(layers: list[int], alphas: list[float], measure: Callable[[int, float], dict], max_coherence_drop: float,
          skipped: Callable[[int], None] = lambda n: None) -> list[dict]:
    """Rows {layer, alpha, coherent, **measure(layer, alpha)} over the grid, each layer's alphas in ascending order
    and stopping at a layer's first incoherent alpha (``skipped(n)`` told how many cells that leaves out).

    The larger alphas at that layer are left out because they could not be chosen: steering harder only made the
    model's own replies less likely, at every layer and for random and persona directions alike, in every
    measurement on the embedded model (see the alphas comment in ``PersonaSettings``); so the curve ends one cell
    past the coherence cliff, which it still shows.
    """
    rows = []
    for layer in layers:
        for k, alpha in enumerate(sorted(alphas)):
            row = measure(layer, alpha)
            rows.append({"layer": layer, "alpha": alpha, **row, "coherent": row["coherence"] >= -max_coherence_drop})
            if not rows[-1]["coherent"]:
                skipped(len(alphas) - k - 1)
                break
    return rows


def selection_work(value_set: ValueSet, s, n_layers: int) -> int:
    """Progress units of a cold selection: 5 sequences per held-out scenario per (layer, alpha) cell."""
    cells = len(candidate_layers(n_layers, s.n_candidate_layers)) * len(parse_alphas(s.alphas))
    return 5 * s.n_heldout * len(value_set) * cells


def _lazy(compute: Callable[[], object]) -> Callable[[], object]:
    """``compute()`` run on the first call only (a warm cache never generates or scores the replies)."""
    memo = []
    return lambda: memo[0] if memo else memo.append(compute()) or memo[0]


def _replies_by_value(backend, prompts: dict[str, list], max_new_tokens: int) -> dict[str, list[str]]:
    ids = list(prompts)
    replies = backend.generate([p for v in ids for p in prompts[v]], max_new_tokens=max_new_tokens, temperature=0.0)
    out, k = {}, 0
    for v in ids:
        out[v], k = replies[k: k + len(prompts[v])], k + len(prompts[v])
    return out


def _mean_logprob(scores) -> float:
    """Mean over replies of each reply's mean per-token log-prob."""
    return float(np.mean([s.mean for s in scores]))
