"""``icl_proxy`` cost on the embedded model for constraints9 (one run; prints, asserts nothing).

Prints the tokens the run feeds the model (from the tokenizer alone, before any forward pass), then times the
encode with the given options, one line per finished step (the baseline, then one row per value), and the total.
The model load is not part of any figure. Steps already in this VGBENCH_HOME's cache are read back, not timed:
use a fresh ``VGBENCH_HOME`` (with the converted model linked in) to time a cold run.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--option", action="append", default=[], help="icl_proxy option key=value")
    args = parser.parse_args()

    from vgbench.api import RunContext
    from vgbench.evaluation import make_representation
    from vgbench.models.backend import get_backend
    from vgbench.value_sets import resolve_value_set
    from vgbench_representations.icl_proxy import tokens_run

    value_set = resolve_value_set("constraints9")
    rep = make_representation("icl_proxy", dict(o.split("=", 1) for o in args.option))
    started = time.perf_counter()

    def progress(total: int, label: str):
        done, per_step = [0], 2 * len(plan.scenarios)

        def advance(n: int) -> None:
            before, done[0] = done[0], done[0] + n
            if done[0] // per_step > before // per_step:
                print(f"  {label}: step {done[0] // per_step} of {total // per_step} done at "
                      f"{time.perf_counter() - started:7.1f} s", flush=True)
        return advance

    context = RunContext(progress=progress)
    backend = get_backend(context.subject_model().path, None, rep.options["batch_size"])
    plan = rep.plan(value_set)
    rows = ((),) + plan.demonstrations
    tokens = [tokens_run(backend, demos, plan.scenarios) for demos in rows]
    print(f"constraints9, embedded model, options {rep.options}, {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load {os.getloadavg()[0]:.1f}")
    print(f"{len(rows)} steps x {len(plan.scenarios)} scenarios; tokens run: baseline {tokens[0]}, rows "
          f"{min(tokens[1:])}..{max(tokens[1:])}, total {sum(tokens)}", flush=True)
    started = time.perf_counter()
    rep.encode(value_set, context)
    print(f"icl_proxy encode: {time.perf_counter() - started:.1f} s wall, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
