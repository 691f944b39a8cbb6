"""``icl_proxy`` cost on the embedded model for constraints9 (one run; prints times and ratios, asserts nothing).

Part 1 (always): one row's forced choice — the first value's first k train pairs as demonstrations, then ``--n`` eval
scenarios — two ways over the same prompts and replies, alternating for ``--repeats`` rounds (fastest round each):
  per prompt   every prompt run whole (its keys and values shared by its two replies only);
  shared       the demonstrations that open every prompt run once for the call, their keys and values reused
               (what ``icl_proxy`` does); also the largest difference between the two paths' P(follow).
Part 2 (``--encode``): the whole ``icl_proxy`` encode with the given options, one line per finished step. Steps
already in this VGBENCH_HOME's cache are read back, not timed: use a fresh ``VGBENCH_HOME`` (with the converted
model linked in) to time a cold run. The model load is not part of any figure.
Run it on a quiet machine: ``HF_HUB_OFFLINE=1 python benchmarks/icl_proxy.py [--n 32] [--encode]``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def compare_row(rep, value_set, n: int, repeats: int) -> None:
    """Time one row's forced choice with and without the shared demonstration prefix."""
    import numpy as np

    from vgbench.api import RunContext
    from vgbench.models.backend import TransformersBackend, get_backend
    from vgbench.models.preference import forced_choice
    from vgbench_representations.icl_proxy import demonstration_turns

    plan = rep.plan(value_set)
    turns, scenarios = demonstration_turns(plan.demonstrations[0]), list(plan.scenarios[:n])
    loaded = get_backend(RunContext().subject_model().path, None, rep.options["batch_size"])
    best: dict[str, tuple[float, int, np.ndarray]] = {}
    for _ in range(repeats):
        for path in ("per prompt", "shared"):
            backend = TransformersBackend(loaded.model, loaded.tok, rep.options["batch_size"])
            if path == "per prompt":
                backend.min_shared_prefix = 10**9
            started = time.perf_counter()
            p = forced_choice(backend, scenarios, turns=turns)["p_follow"]
            took = time.perf_counter() - started
            if path not in best or took < best[path][0]:
                best[path] = (took, backend.tokens_run, p)
    print(f"one row (k={rep.options['k']} demonstrations of {value_set.ids[0]}), {len(scenarios)} scenarios, "
          f"batch {rep.options['batch_size']}, {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load {os.getloadavg()[0]:.1f}")
    for path, (took, tokens, _) in best.items():
        print(f"  {path:<10} {took:7.2f} s  {tokens:7d} tokens run  {tokens / took:7.0f} tokens/s")
    (t_full, k_full, p_full), (t_shared, k_shared, p_shared) = best["per prompt"], best["shared"]
    print(f"  shared / per prompt: {t_full / t_shared:.2f}x faster, {k_full / k_shared:.2f}x fewer tokens; "
          f"max |ΔP(follow)| = {np.max(np.abs(p_full - p_shared)):.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--option", action="append", default=[], help="icl_proxy option key=value")
    parser.add_argument("--n", type=int, default=32, help="Eval scenarios in the one-row comparison.")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--encode", action="store_true", help="Also time the whole encode.")
    args = parser.parse_args()

    from vgbench.api import RunContext
    from vgbench.evaluation import make_representation
    from vgbench.value_sets import resolve_value_set

    value_set = resolve_value_set("constraints9")
    rep = make_representation("icl_proxy", dict(o.split("=", 1) for o in args.option))
    compare_row(rep, value_set, args.n, args.repeats)
    if not args.encode:
        return
    started = time.perf_counter()

    def progress(total: int, label: str):
        done = [0]

        def advance(k: int) -> None:
            done[0] += k
            print(f"  {label}: {done[0]}/{total} at {time.perf_counter() - started:7.1f} s", flush=True)
        return advance

    result = rep.encode(value_set, RunContext(progress=progress))
    print(f"icl_proxy encode: {time.perf_counter() - started:.1f} s wall, {result.extra['cost']['tokens']} tokens "
          f"run, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
