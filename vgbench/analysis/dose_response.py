"""The dose–response curve a persona-family representation chose its steering layer from: read from a result's
``extra`` (``layer_curve``, or ``persona_layer_curve`` for a predictor built on persona vectors) and drawn."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: ``extra`` keys that may hold a curve: rows {layer, alpha, coef, effect, coherence, coherent}.
CURVE_KEYS = ("layer_curve", "persona_layer_curve")
ROW_KEYS = ("layer", "alpha", "coef", "effect", "coherence", "coherent")
TABLE_HEADERS = ("layer", "alpha", "coef", "effect", "coherence (nats/token)", "coherent", "chosen")


@dataclass(frozen=True)
class DoseCurve:
    """The grid of (layer, alpha) settings with their effect and coherence, and the setting that was chosen."""

    rows: tuple[dict, ...]
    layer: int | None
    alpha: float | None
    note: str = ""

    def is_chosen(self, row: dict) -> bool:
        """Whether ``row`` is the chosen setting."""
        return row["layer"] == self.layer and row["alpha"] == self.alpha


def dose_curve(extra: dict) -> DoseCurve | None:
    """The curve kept in ``extra``, or None (none kept, or one stored before curves had alphas: {layer: effect})."""
    for key in CURVE_KEYS:
        rows = (extra or {}).get(key)
        if isinstance(rows, list) and rows and all(isinstance(r, dict) and set(ROW_KEYS) <= set(r) for r in rows):
            prefix = key[: -len("layer_curve")]  # "" or "persona_"
            return DoseCurve(tuple(rows), extra.get("layer"), extra.get(prefix + "alpha"),
                             str(extra.get(prefix + "layer_selection_note", "")))
    return None


def plot_dose_response(curve: DoseCurve, stem: Path, title: str, *, dpi: int = 100) -> list[Path]:
    """Write ``stem.png``/``stem.svg``: effect against alpha (log scale), one line per layer; filled markers are
    coherent settings, hollow ones are not; the chosen setting is ringed."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from .plots import _plain, _save

    fig = Figure(figsize=(7.0, 4.2), dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    layers = sorted({r["layer"] for r in curve.rows})
    palette = colormaps["viridis"]
    for k, layer in enumerate(layers):
        color = palette(k / max(len(layers) - 1, 1))
        rows = sorted((r for r in curve.rows if r["layer"] == layer), key=lambda r: r["alpha"])
        ax.plot([r["alpha"] for r in rows], [r["effect"] for r in rows], color=color, lw=1.3, label=f"layer {layer}")
        for r in rows:
            ax.plot([r["alpha"]], [r["effect"]], "o", ms=6, color=color, mfc=color if r["coherent"] else "white")
    chosen = [r for r in curve.rows if curve.is_chosen(r)]
    for r in chosen:
        ax.plot([r["alpha"]], [r["effect"]], "o", ms=15, mfc="none", mec="#d62728", mew=2)
    ax.axhline(0.0, color="#888888", lw=0.6)
    ax.set_xscale("log", base=2)
    alphas = sorted({r["alpha"] for r in curve.rows})
    ax.set_xticks(alphas, [f"{a:g}" for a in alphas])
    ax.minorticks_off()
    ax.set_xlabel("alpha (steering length / the layer's mean activation norm)", fontsize=8)
    ax.set_ylabel("effect: P(follow | +v) − P(follow | −v)", fontsize=8)
    ax.tick_params(labelsize=7)
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], marker="o", color="#444444", lw=0, label="coherent"),
                Line2D([], [], marker="o", color="#444444", mfc="white", lw=0, label="not coherent")]
    if chosen:
        handles.append(Line2D([], [], marker="o", ms=11, mfc="none", mec="#d62728", mew=2, lw=0, label="chosen"))
    ax.legend(handles=handles, fontsize=7, loc="best")
    ax.set_title(_plain(title + (f" ({curve.note})" if curve.note else "")), fontsize=9)
    return _save(fig, stem, dpi)


def table_rows(curve: DoseCurve) -> list[list[str]]:
    """One row of text per setting, by layer then alpha."""
    rows = sorted(curve.rows, key=lambda r: (r["layer"], r["alpha"]))
    return [[str(r["layer"]), f"{r['alpha']:g}", f"{r['coef']:.1f}", f"{r['effect']:+.4f}", f"{r['coherence']:+.3f}",
             "yes" if r["coherent"] else "no", "◀" if curve.is_chosen(r) else ""] for r in rows]
