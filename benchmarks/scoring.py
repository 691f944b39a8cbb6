"""Permutation p speed: exact over every relabeling at 9 values, 10,000 random relabelings at 200 values.

Targets (issue 11): exact p for n = 9 (72 pairs, 362,880 relabelings) under 2 s, and 200 values with 10,000
relabelings under 2 s. For each case the vectorised test runs beside a plain loop that relabels and calls
``offdiagonal_spearman`` once per relabeling (the former path), over as many relabelings as fit in a few
seconds; the script prints both rates and their ratio, measured in this one run. Asserts nothing.
Run: ``python benchmarks/scoring.py``.
"""

import time

import numpy as np

from vgbench.scoring import offdiagonal_spearman, permutation_test_rho

LOOP_SECONDS = 3.0


def loop_rate(sim: np.ndarray, gt: np.ndarray, seed: int = 0) -> float:
    """Relabelings per second of the one-at-a-time loop."""
    rng = np.random.default_rng(seed)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < LOOP_SECONDS:
        order = rng.permutation(len(gt))
        offdiagonal_spearman(sim[np.ix_(order, order)], gt)
        done += 1
    return done / (time.perf_counter() - start)


def case(n: int, seed: int = 0) -> None:
    """Time the vectorised test on random n×n matrices and compare with the loop's rate."""
    rng = np.random.default_rng(seed)
    vecs = rng.normal(size=(n, 16))
    sim = vecs @ vecs.T
    gt = rng.normal(size=(n, n))
    start = time.perf_counter()
    test = permutation_test_rho(sim, gt, seed)
    seconds = time.perf_counter() - start
    rate = test["p_resamples"] / seconds
    loop = loop_rate(sim, gt, seed)
    print(f"n = {n:3d} ({n * (n - 1)} pairs), {test['p_method']}, {test['p_resamples']} relabelings: "
          f"{seconds:.2f} s (target < 2 s); {rate:,.0f} relabelings/s vs {loop:,.0f}/s one at a time: "
          f"{rate / loop:.1f}x")


if __name__ == "__main__":
    case(9)
    case(200)
