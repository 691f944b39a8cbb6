"""Forced-choice evaluation speed on the embedded model (one run; prints tokens/s and ratios, asserts nothing).

Over the same eval scenarios of constraints9, a DPO-trained policy's preference between the two replies:
  today      each reply scored on its own (prompt + reply, so every prompt runs twice) with the LoRA adapter
             left unmerged (the path before issue 12);
  vgbench    ``forced_choice``: the prompt once, its keys and values shared by both replies (and the start all
             prompts share, the chat template's header, once for the call), LoRA merged;
  plain      a plain batched forward of the causal LM (decoder and LM head) over exactly the tokens vgbench
             processes (the shared start once, each prompt's rest + its first reply, and the second reply
             alone): this CPU's limit.
The adapter is a fresh, untrained LoRA with the training settings' rank and targets (its cost is what matters;
its B matrices are set to small random values so it is not a no-op). Paths alternate for ``--repeats`` rounds;
the fastest round of each is reported. Targets (issue 12): vgbench ≥ 0.8 of plain tokens/s, ≥ 1.5× today.
Run it on a quiet machine: ``HF_HUB_OFFLINE=1 python benchmarks/forced_choice.py [--n 32] [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def policies(path: str):
    """(unmerged LoRA policy, the same policy merged), both on the CPU in eval mode."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from vgbench.training.dpo import TRAINING_OPTIONS

    defaults = {o.name: o.default for o in TRAINING_OPTIONS}
    config = lambda: LoraConfig(r=defaults["lora_r"], lora_alpha=defaults["lora_alpha"],  # noqa: E731
                                target_modules="all-linear", lora_dropout=0.0, task_type="CAUSAL_LM")
    torch.manual_seed(0)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(path), config())
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 1e-3)
    unmerged = peft_model.get_base_model().eval()
    merged_copy = get_peft_model(AutoModelForCausalLM.from_pretrained(path), config())
    merged_copy.load_state_dict(peft_model.state_dict())
    return unmerged, merged_copy.merge_and_unload().eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="Eval scenarios.")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import torch

    from vgbench.api import RunContext
    from vgbench.data.records import load_records
    from vgbench.models.backend import TransformersBackend, chat, common_prefix_length, right_padded
    from vgbench.models.preference import forced_choice

    model = RunContext().subject_model()
    scenarios = load_records("scenarios", "constraints9", split="eval")[: args.n]
    unmerged, merged = policies(model.path)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model.path)
    tok.pad_token = tok.pad_token or tok.eos_token
    today, new = TransformersBackend(unmerged, tok, args.batch_size), TransformersBackend(merged, tok, args.batch_size)
    prompts = [tok(new.prompt_text(chat(s["user_message"])), add_special_tokens=False)["input_ids"] for s in scenarios]
    follow = [tok(s["action_follow"], add_special_tokens=False)["input_ids"] for s in scenarios]
    ignore = [tok(s["action_ignore"], add_special_tokens=False)["input_ids"] for s in scenarios]
    # vgbench runs the start every prompt shares (the chat template's header) once, then each prompt's rest
    n_shared = common_prefix_length(prompts)
    n_shared = n_shared if n_shared >= new.min_shared_prefix else 0
    plain_rows = ([prompts[0][:n_shared]] if n_shared else []) + [p[n_shared:] + f for p, f in zip(prompts, follow)] \
        + ignore
    tokens = sum(map(len, plain_rows))
    prompt_tokens = sum(map(len, prompts))
    today_tokens = 2 * prompt_tokens + sum(map(len, follow)) + sum(map(len, ignore))

    def run_today():
        both = today.reply_logprobs([chat(s["user_message"]) for s in scenarios] * 2,
                                    [s["action_follow"] for s in scenarios] + [s["action_ignore"] for s in scenarios])
        return both

    def run_plain():
        order = sorted(range(len(plain_rows)), key=lambda k: -len(plain_rows[k]))
        with torch.inference_mode():
            for start in range(0, len(order), args.batch_size):
                ids, mask = right_padded([plain_rows[k] for k in order[start:start + args.batch_size]], tok.pad_token_id)
                merged(input_ids=ids, attention_mask=mask)

    paths = {"today": run_today, "vgbench": lambda: forced_choice(new, scenarios), "plain": run_plain}
    best = {}
    for _ in range(args.repeats):
        for name, fn in paths.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    print(f"{len(scenarios)} scenarios, {tokens} tokens processed by vgbench's path (prompts {prompt_tokens}, their "
          f"shared first {n_shared} run once), {today_tokens} by today's; torch threads {torch.get_num_threads()}")
    for name, seconds in best.items():
        print(f"  {name:8s} {seconds:7.2f} s   {tokens / seconds:8.1f} tokens/s (vgbench's token count)")
    print(f"vgbench / plain tokens/s: {best['plain'] / best['vgbench']:.2f} (target ≥ 0.8); "
          f"speed-up over today: {best['today'] / best['vgbench']:.2f}x (target ≥ 1.5x)")


if __name__ == "__main__":
    main()
