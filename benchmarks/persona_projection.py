"""``persona_projection`` speed on the embedded model for constraints9, warm persona (one run; prints, asserts nothing).

Times, in one process with the model loaded beforehand: the persona source's encode (cold when its cache is
empty in this VGBENCH_HOME, then warm), then ``persona_projection`` with the persona cache warm (its teacher-forced
pass over the training pairs runs: the figure the issue asks for, ≤ 2 min on 2 cores), then again fully warm.
Prints each time and the ratio of the warm-persona projection to the persona encodes. Last, the projection's
pass over the training pairs two ways: the shared-prefix pair pass it uses (each prompt once, its keys and values
reused by both replies), the same pass through the projection's layer only (the blocks above never run: how the
projection runs it), and teacher-forcing each reply with its prompt separately; their ratios.

``--tiny`` uses tiny persona settings (1 instruction pair, 1 question, 4 tokens, 1 candidate layer): the
projection's own pass is then the default one over every training pair, but the persona vectors are not the
default ones. Without it a cold persona cache takes 10+ minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY = {"n_instructions": 1, "n_questions": 1, "max_new_tokens": 4, "n_heldout": 1, "n_candidate_layers": 1}


def timed(label: str, encode) -> float:
    """Run ``encode()`` and print how long it took."""
    start = time.perf_counter()
    encode()
    seconds = time.perf_counter() - start
    print(f"{label:<52} {seconds:8.1f} s", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny persona settings (a cold persona cache is quick)")
    parser.add_argument("--persona", default="persona_conflictscope", choices=("persona", "persona_conflictscope"))
    parser.add_argument("--pairs", type=int, default=0, help="compare the two pair passes on the first N pairs (0 = all)")
    parser.add_argument("--compare-only", action="store_true", help="only the pair-pass comparison")
    parser.add_argument("--layer", type=int, default=11, help="the layer the projection stops at in the comparison "
                        "(11: what persona_conflictscope selects on the embedded model)")
    args = parser.parse_args()

    from vgbench.api import RunContext
    from vgbench.evaluation import make_representation
    from vgbench.models.backend import get_backend
    from vgbench.value_sets import resolve_value_set

    context = RunContext()
    if args.compare_only:
        compare_pair_passes(context, args.pairs, args.layer)
        return
    value_set = resolve_value_set("constraints9")
    persona_opts = TINY if args.tiny else {}
    get_backend(context.subject_model().path, None, 8)  # the model load is not part of any figure
    persona = make_representation(args.persona, persona_opts)
    projection = make_representation("persona_projection", {"persona": args.persona,
                                                            **{f"persona_{k}": v for k, v in persona_opts.items()}})
    settings = "tiny" if args.tiny else "default"
    print(f"constraints9, embedded model, persona source {args.persona} ({settings} settings),"
          f" {os.cpu_count()} CPUs, VGBENCH_HOME cache {context.cache_dir}")
    first = timed(f"{args.persona} encode (first: cold if not cached)", lambda: persona.encode(value_set, context))
    warm = timed(f"{args.persona} encode (warm)", lambda: persona.encode(value_set, context))
    pairs = timed("persona_projection encode (warm persona)", lambda: projection.encode(value_set, context))
    timed("persona_projection encode (all warm)", lambda: projection.encode(value_set, context))
    print(f"warm-persona projection / first persona encode: {pairs / first:.2f}; / warm persona encode: "
          f"{pairs / max(warm, 1e-9):.1f}")
    compare_pair_passes(context, args.pairs, args.layer)


def compare_pair_passes(context, limit: int = 0, layer: int = 11) -> None:
    """Time the shared-prefix pair pass (all blocks, and only the blocks up to ``layer``, as the projection runs
    it) against teacher-forcing every reply separately, same pairs, same batch."""
    from vgbench.data.records import load_records
    from vgbench.models.activations import mean_reply_activations, reply_pair_activations
    from vgbench.models.backend import chat, get_backend

    backend = get_backend(context.subject_model().path, None, 8)
    pairs = [r for r in load_records("scenarios", "constraints9", split="train")
             if r.get("action_follow") and r.get("action_ignore")][: limit or None]
    prompts = [chat(r["user_message"]) for r in pairs]
    chosen, rejected = [r["action_follow"] for r in pairs], [r["action_ignore"] for r in pairs]
    shared = timed(f"pair pass, shared prefix ({len(pairs)} pairs)",
                   lambda: reply_pair_activations(backend, prompts, chosen, rejected))
    through = timed(f"pair pass, shared prefix, blocks through layer {layer} + 1",
                    lambda: reply_pair_activations(backend, prompts, chosen, rejected, up_to_layer=layer))
    separate = timed(f"pair pass, each reply separately ({2 * len(pairs)} sequences)",
                     lambda: mean_reply_activations(backend, prompts + prompts, chosen + rejected))
    print(f"separate / shared prefix: {separate / shared:.2f}x; shared prefix, all blocks / through layer {layer}: "
          f"{shared / through:.2f}x")


if __name__ == "__main__":
    main()
