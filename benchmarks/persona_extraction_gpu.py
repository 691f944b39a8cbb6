"""Persona-vector extraction at a real model shape with random weights (nothing is downloaded): tokens/s and
the fraction of the accelerator's dense bf16 FLOP limit. One run; prints numbers, asserts nothing.

Measures vgbench's two ways of taking mean reply activations at every layer:
  teacher_forced  ``mean_token_activations``: one batched decoder forward per batch over prompt + reply;
  generation      ``ReplyActivationRecorder`` hooks while ``generate`` writes the replies (decode steps).
Random token ids stand in for text (no tokenizer is needed), so replies run to the token limit.

    python benchmarks/persona_extraction_gpu.py --shape 7b             # a GPU (bf16)
    python benchmarks/persona_extraction_gpu.py --shape tiny --device cpu --dtype float32 --n 8   # smoke run
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

# Llama-2-7B, Llama-3.2-1B and SmolLM2-135M layer shapes; "tiny" only checks that the script runs.
SHAPES = {
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256),
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32, vocab_size=32000),
    "135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                 num_key_value_heads=3, vocab_size=49152),
    "tiny": dict(hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=4, vocab_size=1000),
}
# Dense bf16 tensor-core peak (TFLOP/s, without sparsity) by device-name fragment.
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0}


def decoder_flops(cfg, token_rows) -> float:
    """Forward FLOPs of the decoder layers (no LM head) over causal sequences of the given lengths."""
    d, f, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    kv = d * cfg.num_key_value_heads // cfg.num_attention_heads
    per_token_matmuls = 2 * layers * (d * d * 2 + 2 * d * kv + 3 * d * f)  # q,o + k,v + gate,up,down
    # per row: the matmuls of every token, then attention's scores and weighted sum over the causal triangle
    return sum(seq * per_token_matmuls + 2 * 2 * layers * d * seq * (seq + 1) / 2 for seq in token_rows)


def main():
    """Build the random-weight model, time both extraction paths, print tokens/s and the FLOP fraction."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from vgbench.models.activations import ReplyActivationRecorder, mean_token_activations
    from vgbench.models.backend import TransformersBackend

    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", choices=sorted(SHAPES), default="7b")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--n", type=int, default=256, help="prompt + reply examples")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--prompt-len", type=int, default=96)
    ap.add_argument("--reply-len", type=int, default=64)
    ap.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak (default: from its name)")
    args = ap.parse_args()

    cfg = LlamaConfig(**SHAPES[args.shape], max_position_embeddings=4096, bos_token_id=1, eos_token_id=2,
                      pad_token_id=0)
    torch.manual_seed(0)
    with torch.device(args.device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=getattr(torch, args.dtype)).eval()
    model.generation_config.eos_token_id = cfg.eos_token_id
    model.generation_config.pad_token_id = cfg.pad_token_id
    tok = SimpleNamespace(pad_token_id=0, eos_token_id=2, all_special_ids=[0, 1, 2])
    backend = TransformersBackend(model, tok, args.batch)
    low = 3  # ids 0..2 are special; random text never ends a reply early
    gen = torch.Generator().manual_seed(0)
    prompts = torch.randint(low, cfg.vocab_size, (args.n, args.prompt_len), generator=gen)
    replies = torch.randint(low, cfg.vocab_size, (args.n, args.reply_len), generator=gen)
    encoded = [(p.tolist(), r.tolist()) for p, r in zip(prompts, replies)]

    def synced() -> float:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter()

    mean_token_activations(backend, encoded[: args.batch])  # warm-up (kernels, allocator)
    start = synced()
    mean_token_activations(backend, encoded)
    forced_s = synced() - start

    recorder = ReplyActivationRecorder(backend, args.n)
    start = synced()
    for s in range(0, args.n, args.batch):
        idx = list(range(s, min(s + args.batch, args.n)))
        with torch.inference_mode(), recorder.batch(idx):
            model.generate(input_ids=prompts[idx].to(args.device), attention_mask=torch.ones_like(prompts[idx]).to(args.device),
                           max_new_tokens=args.reply_len + recorder.extra_tokens, min_new_tokens=args.reply_len + 1,
                           do_sample=False, pad_token_id=0)
    generation_s = synced() - start

    seq = args.prompt_len + args.reply_len
    tokens = args.n * seq
    flops = decoder_flops(cfg, [seq] * args.n)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    peak = args.peak_tflops or next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)
    print(f"{args.shape} shape, {sum(p.numel() for p in model.parameters()) / 1e9:.2f} B params, {args.dtype}, on {name}")
    print(f"teacher-forced extraction: {args.n} × {seq} tokens in {forced_s:.2f} s = {tokens / forced_s:,.0f} tokens/s, "
          f"{flops / forced_s / 1e12:.1f} TFLOP/s" + (f" = {flops / forced_s / 1e12 / peak:.1%} of the bf16 peak ({peak:.0f})" if peak else ""))
    print(f"generation with activations recorded: {args.n} × {args.reply_len} new tokens in {generation_s:.2f} s = "
          f"{args.n * args.reply_len / generation_s:,.0f} new tokens/s (decoding is memory-bound; no FLOP fraction)")
    if args.device.startswith("cuda"):
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
