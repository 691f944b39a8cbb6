"""Value maps: MDS of cosine dissimilarities (of a matrix predictor: of its symmetrised matrix), silhouette against
categories next to random vectors (random matrices), the plot."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

N_RANDOM = 1000
#: What a map of a matrix predictor shows, for titles, captions and the report.
SYMMETRISED_NOTE = "matrix predictor: MDS of its symmetrised matrix (M + Mᵀ)/2"


@dataclass(frozen=True)
class ValueMap:
    """2-D positions of values and how well their vectors cluster by category."""

    value_ids: tuple[str, ...]
    labels: tuple[str, ...]
    categories: tuple[str, ...]
    coords: np.ndarray
    silhouette: float | None
    random_percentile: float | None
    random_silhouettes: np.ndarray
    #: "vectors" (cosine dissimilarity) or "matrix" (a matrix predictor's symmetrised matrix).
    output: str = "vectors"

    def summary(self) -> dict:
        """Plain-JSON numbers for tables and pages (a matrix predictor's map also says it is symmetrised)."""
        null = self.random_silhouettes
        said = {"output": "matrix", "note": SYMMETRISED_NOTE} if self.output == "matrix" else {}
        return {**said,
            "silhouette": self.silhouette,
            "random_percentile": self.random_percentile,
            "n_random": int(len(null)),
            "random_mean": float(np.mean(null)) if len(null) else None,
            "random_95th": float(np.percentile(null, 95)) if len(null) else None,
        }


def cosine_similarity(vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity between the rows of ``vectors``."""
    v = np.asarray(vectors, float)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    unit = v / np.where(norms == 0, 1.0, norms)
    return unit @ np.swapaxes(unit, -1, -2)


def cosine_dissimilarity(similarity: np.ndarray) -> np.ndarray:
    """1 − cos, made symmetric with a zero diagonal and clipped to [0, 2] (what MDS and silhouette need)."""
    s = np.asarray(similarity, float)
    d = 1.0 - (s + np.swapaxes(s, -1, -2)) / 2.0
    d = np.clip(d, 0.0, 2.0)
    idx = np.arange(d.shape[-1])
    d[..., idx, idx] = 0.0
    return d


def matrix_dissimilarity(matrix: np.ndarray) -> np.ndarray:
    """A matrix predictor's dissimilarity: S = (M + Mᵀ)/2, then max off-diagonal S − S with a zero diagonal.

    The map cannot draw a direction, so it shows the symmetric part; subtracting from the largest off-diagonal
    similarity keeps every distance ≥ 0 and makes the map the same under any positive rescaling or shift of M.
    """
    m = np.asarray(matrix, float)
    s = (m + np.swapaxes(m, -1, -2)) / 2.0
    n = s.shape[-1]
    off = ~np.eye(n, dtype=bool)
    top = np.max(s[..., off], axis=-1)[..., None, None] if n > 1 else np.zeros(s.shape[:-2] + (1, 1))
    d = top - s
    idx = np.arange(n)
    d[..., idx, idx] = 0.0
    return np.clip(d, 0.0, None)


def mds_2d(dissimilarity: np.ndarray, seed: int = 0) -> np.ndarray:
    """Metric MDS of a precomputed dissimilarity matrix to two dimensions (scikit-learn)."""
    from sklearn.manifold import MDS

    params = inspect.signature(MDS).parameters
    if "metric_mds" in params:  # scikit-learn ≥ 1.8 renamed `dissimilarity` to `metric`
        mds = MDS(n_components=2, metric="precomputed", init="classical_mds", random_state=seed)
    else:
        mds = MDS(n_components=2, dissimilarity="precomputed", n_init=4, random_state=seed)
    return np.asarray(mds.fit_transform(np.asarray(dissimilarity, float)), float)


def _silhouette_defined(categories) -> bool:
    n_labels = len(set(categories))
    return 2 <= n_labels <= len(categories) - 1


def category_silhouette(dissimilarity: np.ndarray, categories) -> float | None:
    """Silhouette score of the categories under a precomputed dissimilarity (None with < 2 or n categories)."""
    from sklearn.metrics import silhouette_score

    if not _silhouette_defined(categories):
        return None
    return float(silhouette_score(np.asarray(dissimilarity, float), list(categories), metric="precomputed"))


def random_silhouettes(n: int, dim: int, categories, n_draws: int = N_RANDOM, seed: int = 0,
                       output: str = "vectors") -> np.ndarray:
    """Silhouette scores of the categories for ``n_draws`` sets of random Gaussian vectors of shape [n, dim]
    (``output="matrix"``: random Gaussian n×n matrices through :func:`matrix_dissimilarity`)."""
    if not _silhouette_defined(categories):
        return np.zeros(0)
    if output == "matrix":
        return _random_matrix_silhouettes(int(n), tuple(categories), int(n_draws), int(seed)).copy()
    return _random_silhouettes(int(n), int(dim), tuple(categories), int(n_draws), int(seed)).copy()


@lru_cache(maxsize=8)
def _random_matrix_silhouettes(n: int, categories: tuple, n_draws: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty(n_draws)
    chunk = max(1, min(n_draws, 2_000_000 // max(n * n, 1)))
    for start in range(0, n_draws, chunk):
        count = min(chunk, n_draws - start)
        dis = matrix_dissimilarity(rng.standard_normal((count, n, n)))
        for k in range(count):
            out[start + k] = category_silhouette(dis[k], categories)
    return out


@lru_cache(maxsize=32)  # a report draws many maps of one value set at one dimension: one null serves all
def _random_silhouettes(n: int, dim: int, categories: tuple, n_draws: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty(n_draws)
    chunk = max(1, min(n_draws, 2_000_000 // max(n * dim, 1)))
    for start in range(0, n_draws, chunk):
        count = min(chunk, n_draws - start)
        dis = cosine_dissimilarity(cosine_similarity(rng.standard_normal((count, n, dim))))
        for k in range(count):
            out[start + k] = category_silhouette(dis[k], categories)
    return out


def random_percentile(score: float | None, null: np.ndarray) -> float | None:
    """Percentile (0–100) of ``score`` within the random silhouettes (ties count half)."""
    from scipy.stats import percentileofscore

    if score is None or len(null) == 0:
        return None
    return float(percentileofscore(null, score, kind="mean"))


def value_map(similarity: np.ndarray, value_ids, labels, categories, dim: int, *,
              n_random: int = N_RANDOM, seed: int = 0, output: str = "vectors") -> ValueMap:
    """MDS positions, category silhouette and its percentile among random vectors of the same shape; a matrix
    predictor's (``output="matrix"``) from its symmetrised matrix, against random matrices."""
    dis = matrix_dissimilarity(similarity) if output == "matrix" else cosine_dissimilarity(similarity)
    sil = category_silhouette(dis, categories)
    null = random_silhouettes(len(value_ids), int(dim), categories, n_random, seed, output)
    return ValueMap(tuple(value_ids), tuple(labels), tuple(categories), mds_2d(dis, seed), sil,
                    random_percentile(sil, null), null, output)


def map_of_vectors(vectors: np.ndarray, value_set, *, n_random: int = N_RANDOM, seed: int = 0) -> ValueMap:
    """:func:`value_map` for one vector per value of ``value_set``."""
    vectors = np.asarray(vectors, float)
    return value_map(cosine_similarity(vectors), value_set.ids, [v.name for v in value_set.values],
                     value_set.categories, vectors.shape[1], n_random=n_random, seed=seed)


def _plain(text: str) -> str:
    """Keep matplotlib from reading ``$…$`` in a label as mathtext."""
    return str(text).replace("$", r"\$")


def plot_value_map(vmap: ValueMap, stem: Path, title: str, *, width_px: int = 900, height_px: int = 700,
                   dpi: int = 100) -> list[Path]:
    """Write ``stem.png`` (width_px × height_px) and ``stem.svg``: values placed by MDS, coloured by category."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure  # no pyplot: the Agg canvas, no global backend state

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    ax = fig.add_subplot()
    palette = colormaps["tab10"]
    cats = list(dict.fromkeys(vmap.categories))
    xy = vmap.coords
    for k, cat in enumerate(cats):
        idx = [i for i, c in enumerate(vmap.categories) if c == cat]
        ax.scatter(xy[idx, 0], xy[idx, 1], color=palette(k % 10), s=60, label=_plain(cat), zorder=2)
        for i in idx:
            ax.annotate(_plain(vmap.labels[i]), xy[i], xytext=(5, 4), textcoords="offset points",
                        fontsize=8, color=palette(k % 10))
    span = np.ptp(xy, axis=0) if len(xy) else np.ones(2)
    pad = 0.15 * np.where(span > 0, span, 1.0)
    ax.set_xlim(xy[:, 0].min() - pad[0], xy[:, 0].max() + 3 * pad[0])
    ax.set_ylim(xy[:, 1].min() - pad[1], xy[:, 1].max() + pad[1])
    ax.set_xticks([])
    ax.set_yticks([])
    matrix = vmap.output == "matrix"
    ax.set_xlabel("MDS 1 (symmetrised predicted matrix)" if matrix else "MDS 1 (cosine dissimilarity)")
    ax.set_ylabel("MDS 2")
    sil = "undefined" if vmap.silhouette is None else f"{vmap.silhouette:.3f}"
    pct = "" if vmap.random_percentile is None else (
        f", {vmap.random_percentile:.1f}th percentile of {len(vmap.random_silhouettes)} random"
        + (" matrices" if matrix else ""))
    said = f"\n{_plain(SYMMETRISED_NOTE)}" if matrix else ""
    ax.set_title(f"{_plain(title)}{said}\nsilhouette vs categories {sil}{pct}", fontsize=10)
    ax.legend(loc="best", fontsize=8, title="category", title_fontsize=8)
    fig.tight_layout()
    paths = [stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.svg"]
    for path in paths:
        fig.savefig(path, dpi=dpi)
    return paths
