"""Checks on what a representation returns: vectors [n, d] or a predicted matrix [n, n] in value-set order."""

from __future__ import annotations

import numpy as np

from .errors import VgbenchError
from .types import ValueSet


def checked_vectors(rep: str, vectors, value_set: ValueSet) -> np.ndarray:
    """``vectors`` as a finite float array of shape [n, d], or one error naming the representation."""
    vecs = np.asarray(vectors, dtype=float)
    if vecs.ndim != 2 or vecs.shape[0] != len(value_set):
        raise VgbenchError(
            f"representation {rep!r} returned shape {vecs.shape}; expected ({len(value_set)}, d): one row per value "
            f"of {value_set.name!r}, in value-set order"
        )
    if not np.all(np.isfinite(vecs)):
        raise VgbenchError(f"representation {rep!r} returned non-finite vectors (NaN or inf); "
                           "return finite numbers in every row")
    return vecs


def checked_matrix(rep: str, predicted, value_set: ValueSet) -> np.ndarray:
    """``predicted`` (an array in value-set order, or a DataFrame labelled with the value ids in that order) as a
    finite n×n float array, or one error naming the representation, the problem and the fix."""
    ids, n = value_set.ids, len(value_set)
    where = f"representation {rep!r} (output: matrix)"
    if _is_data_frame(predicted):
        rows, cols = [str(x) for x in predicted.index], [str(x) for x in predicted.columns]
        for axis, labels in (("index", rows), ("columns", cols)):
            if labels != ids:
                what = ("the value ids in another order" if sorted(labels) == sorted(ids)
                        else f"labels other than the value ids ({_first_unknown(labels, ids)})")
                raise VgbenchError(f"{where} returned a DataFrame whose {axis} holds {what}; label both axes with "
                                   f"the ids of {value_set.name!r} in value-set order: {', '.join(ids)}")
        predicted = predicted.to_numpy()
    try:
        m = np.asarray(predicted, dtype=float)
    except (TypeError, ValueError):
        raise VgbenchError(f"{where} returned {type(predicted).__name__}, not numbers; return an {n}×{n} array "
                           "or a DataFrame labelled with the value ids") from None
    if m.shape != (n, n):
        raise VgbenchError(f"{where} returned shape {m.shape}; expected ({n}, {n}): rows and columns are the values "
                           f"of {value_set.name!r} in value-set order")
    if not np.all(np.isfinite(m)):
        bad = np.argwhere(~np.isfinite(m))[0]
        raise VgbenchError(f"{where} returned a non-finite cell (NaN or inf) at ({ids[bad[0]]}, {ids[bad[1]]}); "
                           "return a finite number in every cell (the diagonal is not scored: any finite value "
                           "will do)")
    return m


def _is_data_frame(obj) -> bool:
    """A pandas DataFrame, recognised without importing pandas."""
    return type(obj).__name__ == "DataFrame" and hasattr(obj, "index") and hasattr(obj, "columns")


def _first_unknown(labels: list[str], ids: list[str]) -> str:
    unknown = [x for x in labels if x not in ids]
    if unknown:
        return f"e.g. {unknown[0]!r}"
    return f"{len(labels)} labels for {len(ids)} values"


#: The declaration fields of a representation (``RepresentationMetadata.declaration()``), as stored everywhere.
DECLARATION_KEYS = ("output", "uses_subject_model", "reads_training_data")


def sees_text(declaration: dict | None) -> str:
    """What a predictor sees, in words: "—", "subject model", "training data", both, or "?" when not declared."""
    if not declaration:
        return "?"
    seen = [what for key, what in (("uses_subject_model", "subject model"), ("reads_training_data", "training data"))
            if declaration.get(key)]
    return " + ".join(seen) if seen else "—"
