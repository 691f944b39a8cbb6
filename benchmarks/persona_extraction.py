"""Persona-vector extraction speed and memory on the embedded model (one run; prints ratios, asserts nothing).

Compares, over the same 64 prompt+reply texts:
  reference  one unbatched forward per example with output_hidden_states=True (LM head included),
             as in the public persona_vectors code;
  vgbench    vgbench.models.activations.mean_reply_activations (batched, no LM head, masked means);
  plain      a batched forward of the decoder without hidden states (this CPU's compute limit).
Then the whole pipeline for N values: replies generated one at a time + reference extraction
versus vgbench's batched generation with activations recorded during it (what ``persona`` runs), and
versus batched generation + a teacher-forced extraction pass. Each method runs in its own process so that its
peak RSS is its own. Run it on a quiet machine: other jobs on the cores distort every number.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _texts(n):
    from vgbench.data.records import load_records

    recs = load_records("scenarios", "constraints9", split="train")[:n]
    return [(r["user_message"], r["action_follow"]) for r in recs]


def _setup(batch_size=8):
    from vgbench.api import RunContext
    from vgbench.models.backend import get_backend

    model = RunContext().subject_model()
    return get_backend(model.path, "cpu", batch_size)


def run_method(method: str, n: int, values: int) -> dict:
    """Time one method in this process."""
    import torch

    from vgbench.models.activations import generate_with_reply_activations, mean_reply_activations
    from vgbench.models.backend import chat

    backend = _setup()
    pairs = _texts(n)
    prompts = [chat(u) for u, _ in pairs]
    replies = [r for _, r in pairs]
    tokens = sum(len(backend.tok(backend.prompt_text(p) + r)["input_ids"]) for p, r in zip(prompts, replies))
    start = time.perf_counter()
    if method == "vgbench":
        mean_reply_activations(backend, prompts, replies)
    elif method == "reference":
        with torch.inference_mode():
            for p, r in zip(prompts, replies):
                ids = backend.tok(backend.prompt_text(p) + r, return_tensors="pt", add_special_tokens=False)
                out = backend.model(**ids, output_hidden_states=True)
                n_p = len(backend.tok(backend.prompt_text(p), add_special_tokens=False)["input_ids"])
                [h[:, n_p:].mean(dim=1) for h in out.hidden_states]
    elif method == "plain":
        enc = [backend.tok(backend.prompt_text(p) + r, add_special_tokens=False)["input_ids"] for p, r in zip(prompts, replies)]
        order = sorted(range(len(enc)), key=lambda i: -len(enc[i]))
        with torch.inference_mode():
            for s in range(0, len(order), 8):
                batch = [enc[i] for i in order[s:s + 8]]
                w = max(map(len, batch))
                ids = torch.tensor([b + [backend.tok.pad_token_id] * (w - len(b)) for b in batch])
                mask = torch.tensor([[1] * len(b) + [0] * (w - len(b)) for b in batch])
                backend.model.base_model(input_ids=ids, attention_mask=mask)
    elif method.startswith("pipeline_"):
        from vgbench_representations.persona_vectors import PersonaSettings, value_prompts
        from vgbench.value_sets import resolve_value_set

        vs = resolve_value_set("constraints9")
        s = PersonaSettings(questions="conflictscope")
        chats = []
        for v in vs.ids[:values]:
            inst, qs = value_prompts(vs, v, s)
            chats += [chat(q, system) for pro, anti in inst for system in (pro, anti) for q in qs]
        start = time.perf_counter()
        if method == "pipeline_vgbench":
            generate_with_reply_activations(backend, chats, s.max_new_tokens)
        elif method == "pipeline_teacher_forced":
            gen = backend.generate(chats, s.max_new_tokens)
            mean_reply_activations(backend, chats, gen)
        else:
            one = type(backend)(backend.model, backend.tok, batch_size=1)
            gen = [one.generate([c], s.max_new_tokens)[0] for c in chats]
            with torch.inference_mode():
                for c, r in zip(chats, gen):
                    ids = backend.tok(backend.prompt_text(c) + r, return_tensors="pt", add_special_tokens=False)
                    backend.model(**ids, output_hidden_states=True)
        tokens = len(chats)
    elapsed = time.perf_counter() - start
    return {"method": method, "seconds": elapsed, "units": tokens,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main():
    """Run every method in a subprocess and print the ratios."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--values", type=int, default=2, help="values in the whole-pipeline comparison (9 = all of constraints9)")
    ap.add_argument("--method")
    args = ap.parse_args()
    if args.method:
        print(json.dumps(run_method(args.method, args.n, args.values)))
        return
    res = {}
    for m in ("plain", "vgbench", "reference", "pipeline_vgbench", "pipeline_teacher_forced", "pipeline_reference"):
        out = subprocess.run([sys.executable, __file__, "--method", m, "--n", str(args.n), "--values", str(args.values)],
                             capture_output=True, text=True, check=True)
        res[m] = json.loads(out.stdout.strip().splitlines()[-1])
        r = res[m]
        print(f"{m:<20} {r['seconds']:7.1f} s  peak RSS {r['peak_rss_mb']:6.0f} MB")
    tok = res["vgbench"]["units"]
    print(f"\nextraction over {args.n} texts ({tok} tokens):")
    print(f"  vgbench / plain batched forward throughput: {res['plain']['seconds'] / res['vgbench']['seconds']:.2f}  (target ≥ 0.80)")
    print(f"  vgbench vs reference speed-up:             {res['reference']['seconds'] / res['vgbench']['seconds']:.2f}x (target ≥ 1.5x)")
    print(f"whole pipeline ({args.values} values, {res['pipeline_vgbench']['units']} replies), reference / vgbench: "
          f"{res['pipeline_reference']['seconds'] / res['pipeline_vgbench']['seconds']:.2f}x (target ≥ 3x)")
    print(f"  with a teacher-forced extraction pass instead of recording during generation: "
          f"{res['pipeline_reference']['seconds'] / res['pipeline_teacher_forced']['seconds']:.2f}x")


if __name__ == "__main__":
    main()
