"""GPU smoke check: vgbench's hot paths on random-weight Llama-shaped models in bf16 (nothing is downloaded).

For each shape (1B: Llama-3.2-1B's layer shapes; 7B: Llama-2-7B's), on one GPU:
  forced choice   ``forced_choice`` (chat text → tokens → decoder → LM head on reply positions) in tokens/s,
                  against a plain batched decoder forward over the same token rows (target ≥ 0.8 of it);
  steering        ``steered_reply_logprobs`` through nnsight at the middle layer, tokens/s;
  persona         teacher-forced mean reply activations at every layer, and generation with the reply
                  activations recorded, tokens/s, with the fraction of the bf16 FLOP limit;
  DPO step        one trl ``DPOTrainer`` step (vgbench's settings: LoRA r 8, bf16 autocast) against the plain
                  work it needs (policy forward+backward, reference forward; target within 3×).
The FLOP limit is measured first (an 8192³ bf16 matrix product), and the datasheet figure printed beside it.
Text is random words of a made-up word-level tokenizer, so no hub is needed. Each part is guarded: a failure is
printed and the next part runs. One run; prints figures, asserts nothing. Meant to fit in 8 minutes on one H200:

    python benchmarks/gpu_smoke.py                     # both shapes
    python benchmarks/gpu_smoke.py --shapes tiny --device cpu --dtype float32   # smoke run of the script
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from persona_extraction_gpu import BF16_PEAK_TFLOPS, SHAPES, decoder_flops  # noqa: E402  (one set of shapes, FLOPs and peaks)

SPECIAL = ["<pad>", "<s>", "</s>", "<unk>", "system", "user", "assistant"]
CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }} {{ m['content'] }} {% endfor %}"
                 "{% if add_generation_prompt %}assistant {% endif %}")


def word_tokenizer(vocab_size: int, folder: Path):
    """A word-level tokenizer over ``w<k>`` words with a chat template, saved to ``folder`` (trl loads it there)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIAL)}
    vocab.update({f"w{k}": k for k in range(len(SPECIAL), vocab_size)})
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                  unk_token="<unk>")
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(folder)
    return tok


def random_text(rng, vocab_size: int, n_words: int) -> str:
    """``n_words`` random words of the made-up vocabulary (one token each)."""
    return " ".join(f"w{k}" for k in rng.integers(len(SPECIAL), vocab_size, n_words))


class Clock:
    """Wall seconds with the device's queue drained at both ends."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")

    def now(self) -> float:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
        return time.perf_counter()

    def time(self, fn) -> tuple[float, object]:
        start = self.now()
        out = fn()
        return self.now() - start, out


def measured_bf16_tflops(device: str) -> float | None:
    """Mean TFLOP/s of ten 8192³ bf16 matrix products after three warm-ups (the practical ceiling)."""
    import torch

    if not device.startswith("cuda"):
        return None
    n = 8192
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    clock = Clock(device)
    seconds, _ = clock.time(lambda: [a @ b for _ in range(10)])
    return 10 * 2 * n**3 / seconds / 1e12


def part(name: str, results: dict, fn) -> None:
    """Run one measurement; print and keep its figures, or its error, and go on."""
    print(f"--- {name}", flush=True)
    try:
        figures = fn()
        results[name] = figures
        for k, v in figures.items():
            print(f"    {k}: {v:,.3f}" if isinstance(v, float) else f"    {k}: {v}", flush=True)
    except Exception as exc:  # a smoke check reports every part it can
        results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"    FAILED: {type(exc).__name__}: {exc}", flush=True)
        traceback.print_exc(limit=3)


def run_shape(shape: str, args, ceiling: float | None) -> dict:
    """Every measurement on one random-weight model."""
    import numpy as np
    import torch
    from transformers import LlamaConfig

    from vgbench.models.activations import generate_with_reply_activations, mean_reply_activations
    from vgbench.models.backend import TransformersBackend, chat, right_padded
    from vgbench.models.preference import forced_choice

    clock = Clock(args.device)
    dtype = getattr(torch, args.dtype)
    work = Path(tempfile.mkdtemp(prefix=f"gpu-smoke-{shape}-"))
    cfg = LlamaConfig(**SHAPES[shape], max_position_embeddings=4096, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    tok = word_tokenizer(cfg.vocab_size, work)
    cfg.save_pretrained(work)
    torch.manual_seed(0)
    load_s, model = clock.time(lambda: _random_model(cfg, dtype, args.device))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"== {shape}: {n_params / 1e9:.2f} B parameters, {args.dtype}, built in {load_s:.1f} s", flush=True)
    backend = TransformersBackend(model, tok, args.batch)
    rng = np.random.default_rng(0)
    scenarios = [{"user_message": random_text(rng, cfg.vocab_size, args.prompt_words),
                  "action_follow": random_text(rng, cfg.vocab_size, args.reply_words),
                  "action_ignore": random_text(rng, cfg.vocab_size, args.reply_words)} for _ in range(args.n)]
    fraction = (lambda flops, s: flops / s / 1e12 / ceiling) if ceiling else (lambda flops, s: float("nan"))
    results: dict = {"parameters_billion": n_params / 1e9}

    def forced() -> dict:
        forced_choice(backend, scenarios[: args.batch])  # warm-up: kernels, allocator
        seconds, _ = clock.time(lambda: forced_choice(backend, scenarios))
        prompts = [chat(s["user_message"]) for s in scenarios]
        encoded = backend.encode_pairs(prompts * 2, [s["action_follow"] for s in scenarios] +
                                       [s["action_ignore"] for s in scenarios])
        rows = [p + r for p, r in encoded]
        order = np.argsort([len(r) for r in rows])[::-1]

        def plain() -> None:
            with torch.inference_mode():
                for s in range(0, len(rows), args.batch):
                    ids, mask = right_padded([rows[i] for i in order[s:s + args.batch]], tok.pad_token_id)
                    model.model(input_ids=ids.to(args.device), attention_mask=mask.to(args.device))

        plain_s, _ = clock.time(plain)
        tokens = sum(len(r) for r in rows)
        flops = decoder_flops(cfg, [len(r) for r in rows])
        return {"tokens": tokens, "forced_choice_tokens_per_s": tokens / seconds,
                "plain_forward_tokens_per_s": tokens / plain_s, "ratio_to_plain_forward": plain_s / seconds,
                "forced_choice_fraction_of_bf16_limit": fraction(flops, seconds)}

    def steering() -> dict:
        from vgbench.models.steering import steered_reply_logprobs

        prompts = [chat(s["user_message"]) for s in scenarios]
        replies = [s["action_follow"] for s in scenarios]
        vector = np.random.default_rng(1).normal(size=cfg.hidden_size)
        layer = cfg.num_hidden_layers // 2
        steered_reply_logprobs(backend, prompts[: args.batch], replies[: args.batch], layer, vector, 2.0)
        seconds, _ = clock.time(lambda: steered_reply_logprobs(backend, prompts, replies, layer, vector, 2.0))
        tokens = sum(len(p) + len(r) for p, r in backend.encode_pairs(prompts, replies))
        return {"layer": layer, "steered_scoring_tokens_per_s": tokens / seconds}

    def persona() -> dict:
        prompts = [chat(s["user_message"]) for s in scenarios]
        replies = [s["action_follow"] for s in scenarios]
        mean_reply_activations(backend, prompts[: args.batch], replies[: args.batch])
        forced_s, _ = clock.time(lambda: mean_reply_activations(backend, prompts, replies))
        rows = [len(p) + len(r) for p, r in backend.encode_pairs(prompts, replies)]
        n_gen = min(args.n, 4 * args.batch)
        gen_s, (_, _, reply_ids) = clock.time(
            lambda: generate_with_reply_activations(backend, prompts[:n_gen], args.reply_words))
        new_tokens = sum(len(r) for r in reply_ids)
        return {"teacher_forced_tokens_per_s": sum(rows) / forced_s,
                "teacher_forced_fraction_of_bf16_limit": fraction(decoder_flops(cfg, rows), forced_s),
                "generation_recorded_new_tokens_per_s": new_tokens / gen_s,
                "generation_replies": n_gen, "generation_new_tokens": new_tokens}

    def dpo() -> dict:
        from dpo_step import plain_pass

        from vgbench.training.dpo import make_trainer, training_settings

        pairs = [{"messages": chat(s["user_message"]), "chosen": s["action_follow"], "rejected": s["action_ignore"]}
                 for s in scenarios[: args.dpo_pairs]]
        settings = training_settings(epochs=1, batch_size=args.dpo_pairs, learning_rate=0.0, beta=0.1, lora=True,
                                     lora_r=8, lora_alpha=16, max_steps=1 + args.repeats, max_length=1024, seed=0,
                                     device=args.device)
        trainer, step_log = make_trainer(str(work), pairs, settings, work / "trainer", model=model)
        trainer.train()  # step 1 warms up; the step log syncs the GPU at each step's end
        batch = next(iter(trainer.get_train_dataloader()))
        plain = [plain_pass(trainer.model, batch, bf16=settings["bf16_autocast"]) for _ in range(1 + args.repeats)][1:]
        step = statistics.median(step_log.step_seconds[1:])
        plain_wall = statistics.median(w for w, _ in plain)
        out = {"pairs_per_step": args.dpo_pairs, "input_ids_shape": str(tuple(batch["input_ids"].shape)),
               "dpo_step_s": step, "plain_fwd_bwd_plus_reference_s": plain_wall, "ratio_dpo_to_plain": step / plain_wall}
        return out

    part(f"{shape} forced choice", results, forced)
    part(f"{shape} steering (nnsight)", results, steering)
    part(f"{shape} persona extraction", results, persona)
    part(f"{shape} DPO step (trl)", results, dpo)
    if args.device.startswith("cuda"):
        results["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        print(f"    peak GPU memory: {results['peak_gpu_memory_gib']:.1f} GiB", flush=True)
    return results


def _random_model(cfg, dtype, device: str):
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    model.generation_config.eos_token_id = cfg.eos_token_id
    model.generation_config.pad_token_id = cfg.pad_token_id
    return model.eval()


def main() -> None:
    """Parse arguments, measure the FLOP ceiling, run every shape, print a JSON summary (and write it with --out)."""
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="1b,7b")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--n", type=int, default=256, help="scenarios (each: a prompt and two replies)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--prompt-words", type=int, default=96)
    ap.add_argument("--reply-words", type=int, default=64)
    ap.add_argument("--dpo-pairs", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, help="also write the JSON summary here")
    args = ap.parse_args()
    versions = {m: __import__(m).__version__ for m in ("torch", "transformers", "numpy")}
    for optional in ("trl", "peft", "nnsight", "datasets"):
        try:
            versions[optional] = __import__(optional).__version__
        except Exception as exc:
            versions[optional] = f"missing ({type(exc).__name__})"
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"device: {name}; {json.dumps(versions)}", flush=True)
    ceiling = measured_bf16_tflops(args.device)
    summary = {"device": name, "versions": versions, "measured_bf16_tflops": ceiling,
               "datasheet_dense_bf16_tflops": next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None),
               "settings": {k: v for k, v in vars(args).items() if k != "out"}, "shapes": {}}
    if ceiling:
        print(f"bf16 matrix product (8192³): {ceiling:.0f} TFLOP/s measured (the ceiling used below); "
              f"datasheet dense bf16: {summary['datasheet_dense_bf16_tflops']}", flush=True)
    started = time.perf_counter()
    for shape in args.shapes.split(","):
        summary["shapes"][shape] = run_shape(shape, args, ceiling)
        gc.collect()  # the shape's model is gone with run_shape's frame
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    summary["wall_seconds"] = time.perf_counter() - started
    print(json.dumps(summary, indent=1, default=str))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
