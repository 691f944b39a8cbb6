"""How the candidate transfer views behave on the shipped task matrices (the evidence behind ``transfer``).

For every shipped ground truth with split-half replicates, each candidate way of removing a row's level is
applied to both halves of every split; the script prints the split-half agreement (Spearman over off-diagonal
cells, Spearman–Brown corrected), the share of off-diagonal cells the candidate leaves defined, and how a row's
spread follows its level (why scale matters, not just the mean). It reads no representation and no score: the
choice is made on the tasks' own replicates. Run: ``python benchmarks/transfer_views.py [--json OUT]``.
"""

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import rankdata, spearmanr

from vgbench.ground_truth import load_ground_truth_file
from vgbench.provenance import provenance
from vgbench.scoring import offdiagonal_spearman
from vgbench.views import transfer_view

SHIPPED = Path(__file__).resolve().parent.parent / "tasks" / "ground_truth"


def _off(m: np.ndarray) -> np.ndarray:
    m = np.array(m, float)
    m[np.eye(len(m), dtype=bool)] = np.nan
    return m


def row_centre(m):
    """Each row's off-diagonal mean removed."""
    x = _off(m)
    return x - np.nanmean(x, axis=1, keepdims=True)


def double_centre(m):
    """Row and column off-diagonal means removed, alternating until stable."""
    x = _off(m)
    for _ in range(200):
        x = x - np.nanmean(x, axis=1, keepdims=True)
        x = x - np.nanmean(x, axis=0, keepdims=True)
    return x


def row_ranks(m):
    """Each row's off-diagonal cells replaced by their ranks within the row."""
    x = _off(m)
    return np.array([np.where(np.isfinite(r), rankdata(np.nan_to_num(r, nan=np.inf)), np.nan) for r in x])


def by_own_cell(m):
    """Each row divided by its own-value (diagonal) cell; undefined where that cell is not positive."""
    x = np.array(m, float)
    d = np.diag(x).copy()
    return _off(np.where(d[:, None] > 0, x / np.where(d[:, None] > 0, d[:, None], 1.0), np.nan))


CANDIDATES = {"raw": _off, "row_centre": row_centre, "row_z (chosen)": transfer_view, "row_ranks": row_ranks,
              "double_centre": double_centre, "divide_by_own_cell": by_own_cell}


def split_half_ceiling(replicates, fn) -> float:
    """Mean split-half ρ of the transformed halves, Spearman–Brown corrected."""
    rhos = [offdiagonal_spearman(fn(replicates[k]), fn(replicates[k + 1]))[0] for k in range(0, len(replicates) - 1, 2)]
    r = float(np.nanmean(rhos))
    return 2 * r / (1 + r)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the table with provenance here")
    args = parser.parse_args()
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for path in sorted(SHIPPED.glob("*/*/*.json")):
            gt = load_ground_truth_file(path)
            off = _off(gt.matrix)
            level, spread = np.nanmean(off, axis=1), np.nanstd(off, axis=1)
            print(f"{gt.task} ({gt.value_set}): row spread vs |row level| Spearman "
                  f"{spearmanr(np.abs(level), spread).statistic:.2f}")
            for name, fn in CANDIDATES.items():
                defined = float(np.mean(np.isfinite(fn(gt.matrix)[~np.eye(len(off), dtype=bool)])))
                ceiling = split_half_ceiling(gt.replicates, fn)
                rows.append({"task": gt.task, "candidate": name, "split_half_ceiling": ceiling, "defined": defined})
                print(f"    {name:20s} split-half ceiling {ceiling:6.3f}   cells defined {defined:.2f}")
    print("mean ceiling over tasks:")
    for name in CANDIDATES:
        print(f"    {name:20s} {np.mean([r['split_half_ceiling'] for r in rows if r['candidate'] == name]):6.3f}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "provenance": provenance()}, indent=1))


if __name__ == "__main__":
    main()
