"""Report figures besides maps: ground-truth heatmaps (alone or side by side), a table of numbers as a heatmap,
drift trajectories and forest plots (matplotlib, Agg canvas)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

#: ``GroundTruth.extra`` keys under which a task may keep drift trajectories (see :func:`drift_trajectories`).
TRAJECTORY_KEYS = ("trajectories", "drift_trajectories")


def _save(fig, stem: Path, dpi: int) -> list[Path]:
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.svg"]
    for path in paths:
        fig.savefig(path, dpi=dpi)
    return paths


def _plain(text: str) -> str:
    return str(text).replace("$", r"\$")


def plot_heatmap(matrix: np.ndarray, labels: list[str], stem: Path, title: str, *, cell_meaning: str = "",
                 dpi: int = 100) -> list[Path]:
    """Write ``stem.png``/``stem.svg``: the matrix (row = value acted on, column = value measured), NaN grey."""
    from matplotlib.figure import Figure

    m = np.asarray(matrix, float)
    size = min(4 + 0.45 * len(labels), 14)
    fig = Figure(figsize=(size + 1.5, size), dpi=dpi)
    ax = fig.add_subplot()
    image = _draw_heatmap(ax, m, labels, _symmetric_limit([m]), title)
    fig.colorbar(image, ax=ax, shrink=0.8, label=_plain(cell_meaning[:60]) if cell_meaning else None)
    fig.tight_layout()
    return _save(fig, stem, dpi)


def plot_heatmaps(matrices: list[np.ndarray], labels: list[str], titles: list[str], stem: Path, title: str, *,
                  cell_meaning: str = "", dpi: int = 100) -> list[Path]:
    """Write ``stem.png``/``stem.svg``: matrices over the same values side by side (e.g. one task under several
    subject models), drawn like :func:`plot_heatmap` on one colour scale with one colour bar."""
    from matplotlib.figure import Figure

    ms = [np.asarray(m, float) for m in matrices]
    size = min(4 + 0.45 * len(labels), 14)
    fig = Figure(figsize=(size * len(ms) + 1.5, size + 0.4), dpi=dpi, layout="constrained")
    axes = fig.subplots(1, len(ms), squeeze=False)[0]
    limit = _symmetric_limit(ms)
    images = [_draw_heatmap(ax, m, labels, limit, panel) for ax, m, panel in zip(axes, ms, titles, strict=True)]
    fig.colorbar(images[-1], ax=list(axes), shrink=0.8, label=_plain(cell_meaning[:60]) if cell_meaning else None)
    fig.suptitle(_plain(title), fontsize=10)
    return _save(fig, stem, dpi)


def plot_grid_heatmap(grid: np.ndarray, row_labels: list[str], column_labels: list[str], stem: Path, title: str, *,
                      center: float = 0.0, max_spread: float | None = None, label: str = "",
                      dpi: int = 100) -> list[Path]:
    """Write ``stem.png``/``stem.svg``: a rows × columns table of numbers (e.g. value × environment) as a heatmap
    on a diverging scale centred at ``center`` (at most ``max_spread`` either side: colours beyond it saturate),
    each cell's number written in it, NaN grey and marked "—"."""
    import textwrap

    from matplotlib import colormaps
    from matplotlib.figure import Figure

    g = np.asarray(grid, float)
    finite = g[np.isfinite(g)]
    spread = float(np.max(np.abs(finite - center))) if finite.size else 1.0
    spread = min(spread, max_spread) if max_spread else spread
    spread = spread or 1.0
    fig = Figure(figsize=(3.5 + 1.1 * len(column_labels), 1.5 + 0.4 * len(row_labels)), dpi=dpi,
                 layout="constrained")
    ax = fig.add_subplot()
    cmap = colormaps["RdBu"].copy()
    cmap.set_bad("#cccccc")
    image = ax.imshow(np.ma.masked_invalid(g), cmap=cmap, vmin=center - spread, vmax=center + spread, aspect="auto")
    for (r, c), x in np.ndenumerate(g):
        dark = np.isfinite(x) and abs(x - center) > 0.6 * spread
        ax.text(c, r, f"{x:.2f}" if np.isfinite(x) else "—", ha="center", va="center", fontsize=7,
                color="white" if dark else "black")
    ax.set_xticks(range(len(column_labels)), [_plain(x) for x in column_labels], rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(row_labels)), [_plain(x if len(x) <= 28 else x[:27] + "…") for x in row_labels],
                  fontsize=7)
    ax.set_title(_plain(textwrap.fill(title, 60)), fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8, label=_plain(label) if label else None)
    return _save(fig, stem, dpi)


def _symmetric_limit(matrices: list[np.ndarray]) -> float:
    """The largest finite |cell| of the matrices (the colour scale runs from minus it to it), 1 when none."""
    finite = np.concatenate([m[np.isfinite(m)] for m in matrices])
    return float(np.max(np.abs(finite))) if finite.size else 1.0


def _draw_heatmap(ax, m: np.ndarray, labels: list[str], vmax: float, title: str):
    """One heatmap on ``ax`` (scale -vmax..vmax, NaN grey, values labelled on both axes); returns the image."""
    from matplotlib import colormaps

    n = len(labels)
    cmap = colormaps["RdBu_r"].copy()
    cmap.set_bad("#cccccc")
    image = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, vmin=-vmax or -1, vmax=vmax or 1)
    short = [_plain(label if len(label) <= 28 else label[:27] + "…") for label in labels]
    ax.set_xticks(range(n), short, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(n), short, fontsize=7)
    ax.set_xlabel("value measured (j)")
    ax.set_ylabel("value acted on (i)")
    ax.set_title(_plain(title), fontsize=10)
    return image


def drift_trajectories(extra: dict) -> list[dict]:
    """Trajectories a task kept in ``extra``: dicts with ``trained_on``, ``measured``, ``steps``, ``mean``
    and optional ``ci_low``/``ci_high`` (same length as ``steps``); anything else is ignored."""
    raw = next((extra.get(k) for k in TRAJECTORY_KEYS if isinstance(extra.get(k), list)), None) if extra else None
    out = []
    for t in raw or []:
        if not isinstance(t, dict) or not {"trained_on", "measured", "steps", "mean"} <= set(t):
            continue
        try:
            steps, mean = np.asarray(t["steps"], float), np.asarray(t["mean"], float)
            low = np.asarray(t["ci_low"], float) if t.get("ci_low") is not None else None
            high = np.asarray(t["ci_high"], float) if t.get("ci_high") is not None else None
        except (TypeError, ValueError):
            continue
        shapes = [x.shape for x in (mean, low, high) if x is not None]
        if steps.ndim != 1 or any(shape != steps.shape for shape in shapes):
            continue
        out.append({"trained_on": str(t["trained_on"]), "measured": str(t["measured"]), "steps": steps,
                    "mean": mean, "ci_low": low, "ci_high": high})
    return out


def plot_drift(trajectories: list[dict], names: dict[str, str], stem: Path, title: str, *,
               dpi: int = 100) -> list[Path]:
    """One panel per trained-on value: the measured values' trajectories over training steps with their CIs."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    trained = list(dict.fromkeys(t["trained_on"] for t in trajectories))
    measured = list(dict.fromkeys(t["measured"] for t in trajectories))
    cols = math.ceil(math.sqrt(len(trained)))
    rows = math.ceil(len(trained) / cols)
    width = 4 * cols + 3.5  # the right 3.5 inches hold the legend
    fig = Figure(figsize=(width, 3 * rows + 0.6), dpi=dpi)
    palette = colormaps["tab20"]
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    for k, value in enumerate(trained):
        ax = axes[k // cols][k % cols]
        for t in (t for t in trajectories if t["trained_on"] == value):
            color = palette(measured.index(t["measured"]) % 20)
            ax.plot(t["steps"], t["mean"], color=color, lw=1.2, label=_plain(names.get(t["measured"], t["measured"])))
            if t["ci_low"] is not None and t["ci_high"] is not None:
                ax.fill_between(t["steps"], t["ci_low"], t["ci_high"], color=color, alpha=0.15, lw=0)
        ax.set_title(_plain(f"trained on: {names.get(value, value)}"), fontsize=8)
        ax.tick_params(labelsize=7)
    for k in range(len(trained), rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    legend = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend), loc="center right", fontsize=7, title="measured", title_fontsize=7)
    fig.suptitle(_plain(title), fontsize=10)
    fig.supxlabel("training step", fontsize=8)
    fig.supylabel("support", fontsize=8)
    fig.subplots_adjust(right=1 - 3.6 / width)
    return _save(fig, stem, dpi)


def forest_caption(task: str, view: str, model: str) -> str:
    """What a forest plot draws, for its caption and alt text."""
    return (f"Forest plot of {task}, {view} view, subject model {model}: ρ (point) and 95% CI (bar) per "
            "representation; shaded: the null band; dashed: the ceiling; dotted: the predictor bound (√ceiling)")


def plot_forest(points: list[dict], stem: Path, title: str, *, null_band: tuple[float, float] | None = None,
                ceiling: float | None = None, bound: float | None = None, not_valid: str | None = None,
                dpi: int = 100) -> list[Path]:
    """Write ``stem.png``/``stem.svg``: one row per representation, its ρ as a point and its 95 % CI as a
    horizontal bar; the null band shaded, the ceiling and the predictor bound as vertical lines (legend).

    ``points``: dicts with ``label``, ``rho`` and optional ``ci_low``/``ci_high`` and ``status`` (ρ None: no
    point or bar; the row says "undefined" or "not scored"). ``not_valid``: the reason the task's validity gate failed; the title says so.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    n = max(len(points), 1)
    fig = Figure(figsize=(7.5, 2.2 + 0.38 * n + (0.25 if not_valid else 0)), dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    handles = []
    if null_band is not None:
        ax.axvspan(null_band[0], null_band[1], color="#bbbbbb", alpha=0.5, lw=0)
        handles.append(Patch(color="#bbbbbb", alpha=0.5, label="null band (95% of relabelings)"))
    ax.axvline(0.0, color="#888888", lw=0.6)
    if ceiling is not None:
        ax.axvline(ceiling, color="#d62728", ls="--", lw=1.2)
        handles.append(Line2D([], [], color="#d62728", ls="--", label=f"ceiling {ceiling:.2f}"))
    if bound is not None:
        ax.axvline(bound, color="#9467bd", ls=":", lw=1.5)
        handles.append(Line2D([], [], color="#9467bd", ls=":", label=f"predictor bound {bound:.2f}"))
    color = "#999999" if not_valid else "#1f77b4"
    for k, p in enumerate(points):
        y = n - 1 - k
        if p.get("rho") is None:
            why = "undefined" if str(p.get("status", "")).startswith("undefined") else "not scored"
            ax.text(0.0, y, why, va="center", ha="center", fontsize=7, color="#666666")
            continue
        if p.get("ci_low") is not None and p.get("ci_high") is not None:
            ax.plot([p["ci_low"], p["ci_high"]], [y, y], color=color, lw=2)
        ax.plot([p["rho"]], [y], "o", color=color, ms=6)
    handles.insert(0, Line2D([], [], color=color, marker="o", lw=2, label="ρ with 95% CI"))
    ax.set_yticks(range(n), [_plain(p["label"])[:40] for p in reversed(points)] or [""], fontsize=8)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel("Spearman ρ with the task's matrix", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    full = title + (f"\nnot valid on this model: {not_valid}" if not_valid else "")
    ax.set_title(_plain(full), fontsize=9, color="#b00000" if not_valid else "black")
    fig.legend(handles=handles, fontsize=7, loc="outside lower center", ncol=min(len(handles), 4), frameon=False)
    return _save(fig, stem, dpi)
